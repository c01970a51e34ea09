//! Tests for `price`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

fn base() -> Price {
    Price {
        input_per_mtok: 2.0,
        output_per_mtok: 10.0,
        cached_input_per_mtok: Some(0.5),
        cache_write_per_mtok: Some(2.5),
        cache_write_1h_per_mtok: Some(4.0),
        reasoning_per_mtok: None,
        web_search_per_call: Some(0.01),
        tier: Some(TierPrice {
            above_tokens: 200_000,
            input_per_mtok: Some(4.0),
            output_per_mtok: Some(15.0),
            cached_input_per_mtok: Some(1.0),
            cache_write_per_mtok: None,
            cache_write_1h_per_mtok: None,
            inclusive: false,
        }),
        flex: Some(ServiceTierPrice {
            input_per_mtok: Some(1.0),
            output_per_mtok: Some(5.0),
            ..ServiceTierPrice::default()
        }),
        priority: None,
        ranges: [None; MAX_RANGES],
        off_peak: None,
    }
}

fn t(prompt: u64, completion: u64, cached: u64, written: u64) -> TokenCounts {
    TokenCounts {
        prompt,
        completion,
        cached_prompt: cached,
        cache_write: written,
    }
}

#[test]
fn rules_table() {
    let p = base();
    let d = UsageDetail::default();
    let flex = UsageDetail {
        service_tier: ServiceTier::Flex,
        ..d
    };
    let cases: &[(&str, TokenCounts, UsageDetail, f64)] = &[
        (
            "plain",
            t(1_000, 100, 0, 0),
            d,
            1_000.0 * 2.0 + 100.0 * 10.0,
        ),
        (
            "cached and 5m/1h writes",
            t(1_000, 100, 300, 200),
            UsageDetail {
                cache_write_1h: 50,
                ..d
            },
            500.0 * 2.0 + 300.0 * 0.5 + 150.0 * 2.5 + 50.0 * 4.0 + 100.0 * 10.0,
        ),
        // exactly at the threshold is below it; one more token prices everything above
        (
            "at threshold",
            t(200_000, 10, 0, 0),
            d,
            200_000.0 * 2.0 + 100.0,
        ),
        (
            "above threshold: whole request, writes keep their price",
            t(200_001, 10, 1, 100),
            d,
            199_900.0 * 4.0 + 1.0 * 1.0 + 100.0 * 2.5 + 10.0 * 15.0,
        ),
        (
            "flex",
            t(1_000, 100, 0, 0),
            flex,
            1_000.0 * 1.0 + 100.0 * 5.0,
        ),
        // flex has no long-context price: the standard long-context one applies
        (
            "flex above",
            t(300_000, 100, 0, 0),
            flex,
            300_000.0 * 4.0 + 100.0 * 15.0,
        ),
        // flex has its own output price, so reasoning is billed at it
        (
            "flex reasoning",
            t(1_000, 100, 0, 0),
            UsageDetail {
                reasoning: 40,
                ..flex
            },
            1_000.0 + 100.0 * 5.0,
        ),
        (
            "priority falls back to standard",
            t(1_000, 100, 0, 0),
            UsageDetail {
                service_tier: ServiceTier::Priority,
                ..d
            },
            1_000.0 * 2.0 + 100.0 * 10.0,
        ),
        (
            "web searches",
            t(0, 0, 0, 0),
            UsageDetail {
                web_searches: 3,
                ..d
            },
            0.03 * 1e6,
        ),
    ];
    for (name, tokens, detail, want_micro) in cases {
        let got = p.cost_usd_with(*tokens, *detail);
        assert!(
            close(got, want_micro / 1e6),
            "{name}: {got} != {}",
            want_micro / 1e6
        );
    }
}

#[test]
fn reasoning_rate_and_inclusive_threshold() {
    let p = Price {
        input_per_mtok: 1.0,
        output_per_mtok: 2.0,
        reasoning_per_mtok: Some(8.0),
        tier: Some(TierPrice {
            above_tokens: 100,
            input_per_mtok: Some(3.0),
            inclusive: true,
            ..TierPrice::default()
        }),
        ..Price::default()
    };
    let d = UsageDetail {
        reasoning: 30,
        ..UsageDetail::default()
    };
    // 70 text tokens at 2, 30 reasoning at 8; a 100-token prompt is above when inclusive
    let got = p.cost_usd_with(t(100, 100, 0, 0), d);
    assert!(close(got, (300.0 + 140.0 + 240.0) / 1e6), "{got}");
    // no cache prices: cached and written tokens pay input
    let got = p.cost_usd(t(50, 0, 10, 10));
    assert!(close(got, 50.0 / 1e6), "{got}");
}

/// DashScope `qwen3-coder-plus` (LiteLLM 1.109.1), per million tokens.
fn by_range() -> Price {
    let range = |above: u64, up_to: u64, input: f64, output: f64, cached: f64| {
        Some(RangePrice {
            above_tokens: above,
            up_to_tokens: up_to,
            input_per_mtok: input,
            output_per_mtok: Some(output),
            cached_input_per_mtok: Some(cached),
            cache_write_per_mtok: None,
            reasoning_per_mtok: None,
        })
    };
    Price {
        input_per_mtok: 1.0,
        output_per_mtok: 5.0,
        ranges: [
            range(0, 32_000, 1.0, 5.0, 0.1),
            range(32_000, 128_000, 1.8, 9.0, 0.18),
            range(128_000, 256_000, 3.0, 15.0, 0.3),
            range(256_000, 1_000_000, 6.0, 60.0, 0.6),
        ],
        ..Price::default()
    }
}

#[test]
fn prompt_size_ranges_price_the_whole_request() {
    let p = by_range();
    let cases: &[(&str, TokenCounts, f64)] = &[
        (
            "first range",
            t(1_000, 100, 0, 0),
            1_000.0 * 1.0 + 100.0 * 5.0,
        ),
        // at most the end of a range stays in it; one more token is the next range
        ("at 32k", t(32_000, 100, 0, 0), 32_000.0 * 1.0 + 100.0 * 5.0),
        (
            "above 32k",
            t(32_001, 100, 0, 0),
            32_001.0 * 1.8 + 100.0 * 9.0,
        ),
        (
            "cached tokens count toward the range and pay its cache price",
            t(130_000, 10, 100_000, 0),
            30_000.0 * 3.0 + 100_000.0 * 0.3 + 10.0 * 15.0,
        ),
        // written tokens pay the range's input price, as it has no write price
        ("writes", t(300_000, 0, 0, 1_000), 300_000.0 * 6.0),
        (
            "above every range",
            t(2_000_000, 1, 0, 0),
            2_000_000.0 * 6.0 + 60.0,
        ),
        ("no prompt", t(0, 100, 0, 0), 100.0 * 5.0),
    ];
    for (name, tokens, want_micro) in cases {
        let got = p.cost_usd(*tokens);
        assert!(
            close(got, want_micro / 1e6),
            "{name}: {got} != {}",
            want_micro / 1e6
        );
    }
    // reasoning: the range's own price, else its output price
    let mut p = by_range();
    let d = UsageDetail {
        reasoning: 40,
        ..UsageDetail::default()
    };
    let got = p.cost_usd_with(t(1_000, 100, 0, 0), d);
    assert!(close(got, (1_000.0 + 100.0 * 5.0) / 1e6), "{got}");
    if let Some(r) = p.ranges[0].as_mut() {
        r.reasoning_per_mtok = Some(8.0);
    }
    let got = p.cost_usd_with(t(1_000, 100, 0, 0), d);
    assert!(
        close(got, (1_000.0 + 60.0 * 5.0 + 40.0 * 8.0) / 1e6),
        "{got}"
    );
}

/// DeepSeek `deepseek-v4-pro` (LiteLLM 1.109.1), per million tokens.
fn deepseek() -> Price {
    use crate::pricing::hours::{Hours, Window};
    Price {
        input_per_mtok: 1.32,
        output_per_mtok: 3.96,
        cached_input_per_mtok: Some(0.044),
        cache_write_per_mtok: Some(0.0),
        off_peak: Some(OffPeakPrice {
            input_per_mtok: Some(0.66),
            output_per_mtok: Some(1.98),
            cached_input_per_mtok: Some(0.022),
            cache_write_per_mtok: None,
            reasoning_per_mtok: None,
            hours: Hours::of(&[
                Window::new(0b001_1111, 0, 60),
                Window::new(0b001_1111, 240, 360),
                Window::new(0b001_1111, 600, 0),
                Window::new(0b110_0000, 0, 0),
            ])
            .unwrap(),
        }),
        ..Price::default()
    }
}

#[test]
fn off_peak_prices_apply_by_the_start_time_on_both_sides_of_a_boundary() {
    let p = deepseek();
    // Monday 2026-12-07, 10:00 UTC: off-peak starts.
    let ten = chrono::NaiveDate::from_ymd_opt(2026, 12, 7)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    let tokens = t(1_000, 100, 400, 0);
    let at = |started_ms: Option<i64>| UsageDetail {
        reasoning: 30,
        started_ms,
        ..UsageDetail::default()
    };
    let standard = (600.0 * 1.32 + 400.0 * 0.044 + 100.0 * 3.96) / 1e6;
    let off_peak = (600.0 * 0.66 + 400.0 * 0.022 + 100.0 * 1.98) / 1e6;
    let before = p.cost_usd_with(tokens, at(Some(ten - 1)));
    let after = p.cost_usd_with(tokens, at(Some(ten)));
    assert!(close(before, standard), "{before} != {standard}");
    assert!(close(after, off_peak), "{after} != {off_peak}");
    assert_eq!(p.period(Some(ten - 1)), Some(Period::Standard));
    assert_eq!(p.period(Some(ten)), Some(Period::OffPeak));
    // No start time: the standard price, the upper bound.
    assert!(close(p.cost_usd_with(tokens, at(None)), standard));
    assert_eq!(p.period(None), Some(Period::Standard));
    // A model with one price has no period.
    assert_eq!(base().period(Some(ten)), None);
    // Cache writes keep their own (zero) price; a missing off-peak cache price follows the
    // off-peak input price.
    let mut q = deepseek();
    q.cached_input_per_mtok = None;
    if let Some(o) = q.off_peak.as_mut() {
        o.cached_input_per_mtok = None;
    }
    // (Reasoning tokens, with no price of their own, pay the off-peak output price.)
    let got = q.cost_usd_with(t(1_000, 30, 400, 100), at(Some(ten)));
    assert!(close(got, (900.0 * 0.66 + 30.0 * 1.98) / 1e6), "{got}");
}

#[test]
fn service_tier_names() {
    let cases = [
        ("flex", ServiceTier::Flex),
        ("FLEX", ServiceTier::Flex),
        ("priority", ServiceTier::Priority),
        ("fast", ServiceTier::Priority),
        ("default", ServiceTier::Standard),
        ("auto", ServiceTier::Standard),
        ("batch", ServiceTier::Standard),
        ("", ServiceTier::Standard),
    ];
    for (name, want) in cases {
        assert_eq!(ServiceTier::parse(name), want, "{name}");
    }
}

#[test]
fn override_shapes_deserialize_and_reject_unknown_fields() {
    let yaml = r#"{"input_per_mtok": 3, "output_per_mtok": 15, "cached_input_per_mtok": 0.3,
            "cache_write_per_mtok": 3.75, "cache_write_1h_per_mtok": 6, "reasoning_per_mtok": 20,
            "web_search_per_call": 0.01,
            "tier": {"above_tokens": 200000, "input_per_mtok": 6, "output_per_mtok": 22.5},
            "flex": {"input_per_mtok": 1.5, "output_per_mtok": 7.5,
                     "tier": {"above_tokens": 200000, "input_per_mtok": 3}},
            "priority": {"input_per_mtok": 6, "output_per_mtok": 30}}"#;
    let p: Price = serde_json::from_str(yaml).unwrap();
    assert_eq!(p.cache_write_1h_per_mtok, Some(6.0));
    assert_eq!(p.tier.unwrap().above_tokens, 200_000);
    assert_eq!(p.flex.unwrap().tier.unwrap().input_per_mtok, Some(3.0));
    assert_eq!(p.priority.unwrap().output_per_mtok, Some(30.0));
    assert_eq!(p.all_prices().len(), 7 + 2 + 2 + 1 + 2);
    for bad in [
        r#"{"input_per_mtok": 1, "output_per_mtok": 1, "x": 1}"#,
        r#"{"input_per_mtok": 1, "output_per_mtok": 1, "tier": {"input_per_mtok": 1}}"#,
        r#"{"input_per_mtok": 1, "output_per_mtok": 1, "tier": {"above_tokens": 1, "y": 1}}"#,
        r#"{"input_per_mtok": 1, "output_per_mtok": 1, "flex": {"z": 1}}"#,
        r#"{"input_per_mtok": 1}"#,
    ] {
        assert!(serde_json::from_str::<Price>(bad).is_err(), "{bad}");
    }
}
