//! Tests for `litellm`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

/// The run-time conversion of `model_prices.json` gives exactly the built-in table.
#[test]
fn converting_the_source_of_the_table_gives_the_table() {
    let root: Value = serde_json::from_str(include_str!("model_prices.json")).unwrap();
    let models = root["models"].as_object().unwrap();
    let mut converted = 0;
    for (name, fields) in models {
        let trimmed = trim(fields.as_object().unwrap());
        let Outcome::Priced(c) = convert(&trimmed).unwrap() else {
            assert!(
                super::super::search::exact(name).is_none(),
                "{name} skipped"
            );
            continue;
        };
        let entry =
            super::super::search::exact(name).unwrap_or_else(|| panic!("{name} not built in"));
        assert_eq!(c.price, entry.price(), "{name}");
        assert_eq!(c.provider, entry.provider, "{name}");
        assert_eq!(c.context_window, entry.context_window, "{name}");
        assert_eq!(c.max_output, entry.max_output, "{name}");
        assert_eq!(c.caps, entry.caps, "{name}");
        converted += 1;
    }
    assert_eq!(converted, super::super::entries().len());
}

#[test]
fn trim_keeps_what_the_rules_read() {
    let entry = obj(serde_json::json!({
        "litellm_provider": "openai",
        "mode": "chat",
        "input_cost_per_token": 1e-6,
        "output_cost_per_token": 2e-6,
        "input_cost_per_token_above_200k_tokens_priority": 3e-6,
        "input_cost_per_audio_token": 9e-6,
        "cache_read_input_token_cost": null,
        "supports_vision": true,
        "deprecation_date": "2026-01-01",
    }));
    let kept: Vec<String> = trim(&entry).keys().cloned().collect();
    assert_eq!(
        kept,
        [
            "input_cost_per_token",
            "input_cost_per_token_above_200k_tokens_priority",
            "mode",
            "output_cost_per_token",
            "provider",
            "supports_vision"
        ]
    );
}

#[test]
fn wrong_fields_are_named() {
    let cases = [
        (
            serde_json::json!({"input_cost_per_token": "cheap", "output_cost_per_token": 1e-6}),
            "input_cost_per_token",
        ),
        (
            serde_json::json!({"input_cost_per_token": 1e-6, "output_cost_per_token": -1e-6}),
            "output_cost_per_token",
        ),
        (
            serde_json::json!({"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6, "max_input_tokens": "lots"}),
            "max_input_tokens",
        ),
        (
            serde_json::json!({"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6, "supports_vision": "yes"}),
            "supports_vision",
        ),
        (
            serde_json::json!({"mode": 3, "input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}),
            "mode",
        ),
        // a rate is checked even in an entry that is skipped
        (
            serde_json::json!({"mode": "embedding", "input_cost_per_token": "x"}),
            "input_cost_per_token",
        ),
    ];
    for (entry, key) in cases {
        let err = convert(&trim(&obj(entry.clone()))).unwrap_err();
        assert_eq!(err.key, key, "{entry}");
    }
}

#[test]
fn ranges_and_off_peak_hours() {
    let priced = |entry: Value| match convert(&trim(&obj(entry))).unwrap() {
        Outcome::Priced(c) => c,
        other => panic!("{other:?}"),
    };
    // Priced only by range: listed at the first range's prices; ranges sorted by start.
    let c = priced(serde_json::json!({"mode": "chat", "tiered_pricing": [
        {"input_cost_per_token": 2e-6, "output_cost_per_token": 8e-6, "range": [32000.0, 128000.0]},
        {"input_cost_per_token": 1e-6, "output_cost_per_token": 4e-6, "cache_read_input_token_cost": 1e-7, "range": [0, 32000.0]},
        {"input_cost_per_query": 0.01, "max_results_range": [0, 25]},
    ]}));
    assert_eq!(
        (c.price.input_per_mtok, c.price.output_per_mtok),
        (1.0, 4.0)
    );
    let ranges: Vec<_> = c.price.ranges.iter().flatten().collect();
    assert_eq!(ranges.len(), 2);
    assert_eq!(
        (ranges[0].up_to_tokens, ranges[0].cached_input_per_mtok),
        (32_000, Some(0.1))
    );
    assert_eq!(
        (ranges[1].above_tokens, ranges[1].input_per_mtok),
        (32_000, 2.0)
    );
    // More ranges than smartproxy holds: left out rather than priced wrong.
    let five: Vec<Value> = (0..5)
        .map(|i| serde_json::json!({"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6, "range": [i * 10, i * 10 + 10]}))
        .collect();
    assert_eq!(
        convert(&trim(&obj(serde_json::json!({"tiered_pricing": five})))),
        Ok(Outcome::SeveralThresholds)
    );
    // Off-peak: every-day hours and weekday windows, names or numbers; bad windows passed over.
    let c = priced(
        serde_json::json!({"input_cost_per_token": 2e-6, "output_cost_per_token": 4e-6,
        "off_peak_pricing": {"input_cost_per_token": 1e-6, "hours_utc": "16:30-00:30",
            "windows": [{"hours_utc": ["00:00-00:00", "nonsense"], "weekdays": ["sat", 7]}]}}),
    );
    let o = c.price.off_peak.unwrap();
    assert_eq!((o.input_per_mtok, o.output_per_mtok), (Some(1.0), None));
    let windows: Vec<_> = o.hours.windows().copied().collect();
    assert_eq!(
        windows,
        [
            Window::new(EVERY_DAY, 990, 30),
            Window::new(0b110_0000, 0, 0)
        ]
    );
    // Weekdays on another calendar: the standard price, the upper bound.
    let c = priced(
        serde_json::json!({"input_cost_per_token": 2e-6, "output_cost_per_token": 4e-6,
        "off_peak_pricing": {"input_cost_per_token": 1e-6, "weekday_timezone": "Asia/Shanghai",
            "windows": [{"hours_utc": "00:00-00:00", "weekdays": [6, 7]}]}}),
    );
    assert_eq!(c.price.off_peak, None);
    let err = convert(&trim(&obj(
        serde_json::json!({"input_cost_per_token": 2e-6,
        "output_cost_per_token": 4e-6, "off_peak_pricing": {"input_cost_per_token": "half"}}),
    )))
    .unwrap_err();
    assert_eq!(err.key, "off_peak_pricing.input_cost_per_token");
}

#[test]
fn skipped_entries() {
    for (entry, want) in [
        (
            serde_json::json!({"mode": "embedding", "input_cost_per_token": 1e-7}),
            Outcome::NotPriced,
        ),
        (
            serde_json::json!({"mode": "chat", "input_cost_per_token": 1e-7}),
            Outcome::NotPriced,
        ),
        (
            serde_json::json!({"mode": "image_generation"}),
            Outcome::NotPriced,
        ),
        (
            serde_json::json!({"input_cost_per_token": 1e-7, "output_cost_per_token": 1e-7,
                "input_cost_per_token_above_32k_tokens": 2e-7,
                "input_cost_per_token_above_256k_tokens": 3e-7}),
            Outcome::SeveralThresholds,
        ),
    ] {
        assert_eq!(convert(&trim(&obj(entry.clone()))), Ok(want), "{entry}");
    }
}
