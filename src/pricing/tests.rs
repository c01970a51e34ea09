//! Tests for `pricing`: the lookup order and rules, bills, overlays and overrides.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;

use super::entry::per_mtok;
use super::search::{cmp_prefixed, exact};
use super::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

fn book() -> PriceBook {
    let mut overrides = HashMap::new();
    overrides.insert(
        "gpt-4o-mini".to_owned(),
        Price {
            input_per_mtok: 1.0,
            output_per_mtok: 2.0,
            cached_input_per_mtok: None,
            cache_write_per_mtok: None,
            ..Price::default()
        },
    );
    overrides.insert(
        " my-local-model ".to_owned(),
        Price {
            input_per_mtok: 0.0,
            output_per_mtok: 0.0,
            cached_input_per_mtok: None,
            cache_write_per_mtok: None,
            ..Price::default()
        },
    );
    PriceBook::new(overrides)
}

#[test]
fn table_is_sorted_unique_and_sane() {
    let models = entries();
    assert!(models.len() > 800, "only {} models", models.len());
    for pair in models.windows(2) {
        assert!(
            pair[0].name < pair[1].name,
            "{} !< {}",
            pair[0].name,
            pair[1].name
        );
    }
    for entry in models {
        assert!(
            entry.input.is_finite() && entry.input >= 0.0,
            "{}",
            entry.name
        );
        assert!(
            entry.output.is_finite() && entry.output >= 0.0,
            "{}",
            entry.name
        );
        assert_eq!(exact(entry.name), Some(entry));
    }
}

#[test]
fn builtin_lookup_table() {
    let cases: &[(Option<&str>, &str, Option<&str>)] = &[
        // exact
        (None, "gpt-4o-mini", Some("gpt-4o-mini")),
        (None, "claude-sonnet-4-5", Some("claude-sonnet-4-5")),
        (
            None,
            "deepseek/deepseek-chat",
            Some("deepseek/deepseek-chat"),
        ),
        (None, "  gpt-4o-mini\n", Some("gpt-4o-mini")),
        (Some("openai"), "gpt-4o-mini", Some("gpt-4o-mini")),
        // provider prefix
        (
            Some("cerebras"),
            "llama-3.1-8b",
            Some("cerebras/llama-3.1-8b"),
        ),
        (Some("xai"), "grok-4.3", Some("xai/grok-4.3")),
        (
            Some("together"),
            "meta-llama/Meta-Llama-3.1-8B",
            Some("together_ai/meta-llama/Meta-Llama-3.1-8B"),
        ),
        // the provider's own price wins over another provider's entry of the same name
        (
            Some("dashscope"),
            "deepseek-v4-flash",
            Some("dashscope/deepseek-v4-flash"),
        ),
        (
            Some("deepseek"),
            "deepseek-v4-flash",
            Some("deepseek/deepseek-v4-flash"),
        ),
        (None, "deepseek-v4-flash", Some("deepseek-v4-flash")),
        // a leading provider segment stripped
        (None, "openai/gpt-4o", Some("gpt-4o")),
        (
            None,
            "openrouter/deepseek/deepseek-chat",
            Some("deepseek/deepseek-chat"),
        ),
        (
            Some("cerebras"),
            "meta/llama-3.1-8b",
            Some("cerebras/llama-3.1-8b"),
        ),
        // date suffix
        (
            None,
            "claude-sonnet-4-5-20250929",
            Some("claude-sonnet-4-5-20250929"),
        ),
        (
            None,
            "claude-sonnet-4-5-20990101",
            Some("claude-sonnet-4-5"),
        ),
        (
            None,
            "claude-sonnet-4-6-20990101",
            Some("claude-sonnet-4-6"),
        ),
        (
            None,
            "gpt-4o-mini-2024-07-18",
            Some("gpt-4o-mini-2024-07-18"),
        ),
        (None, "gpt-4o-mini-2099-01-01", Some("gpt-4o-mini")),
        (None, "openai/gpt-4o-mini-2099-01-01", Some("gpt-4o-mini")),
        (Some("xai"), "grok-4.3-20990101", Some("xai/grok-4.3")),
        // unknown
        (None, "no-such-model", None),
        (None, "", None),
        (None, "   ", None),
        (None, "/", None),
        (None, "-20250929", None),
        (Some("deepseek"), "gpt-4o-mini-2099-13", None),
        (None, "xai/", None),
    ];
    for (provider, model, want) in cases {
        let got = lookup(*provider, model).map(|e| e.name);
        assert_eq!(got, *want, "lookup({provider:?}, {model:?})");
    }
}

#[test]
fn price_book_table() {
    let book = book();
    let search = builtin("gpt-4o-mini-search-preview").unwrap().price();
    let cases: &[(Option<&str>, &str, Option<Price>)] = &[
        // override beats builtin
        (
            None,
            "gpt-4o-mini",
            Some(Price {
                input_per_mtok: 1.0,
                output_per_mtok: 2.0,
                cached_input_per_mtok: None,
                cache_write_per_mtok: None,
                ..Price::default()
            }),
        ),
        // override keys and names are trimmed
        (
            None,
            "my-local-model",
            Some(Price {
                input_per_mtok: 0.0,
                output_per_mtok: 0.0,
                cached_input_per_mtok: None,
                cache_write_per_mtok: None,
                ..Price::default()
            }),
        ),
        // an override applies to the model's dated versions
        (
            None,
            "gpt-4o-mini-2099-01-01",
            Some(Price {
                input_per_mtok: 1.0,
                output_per_mtok: 2.0,
                ..Price::default()
            }),
        ),
        // ... but not to another model whose name it begins
        (None, "gpt-4o-mini-tts", None),
        (None, "gpt-4o-mini-search-preview", Some(search)),
        (None, "my-local-model-2", None),
        (
            Some("cerebras"),
            "llama-3.1-8b",
            Some(Price {
                input_per_mtok: 0.1,
                output_per_mtok: 0.1,
                cached_input_per_mtok: None,
                cache_write_per_mtok: None,
                ..Price::default()
            }),
        ),
        (None, "unknown-model", None),
    ];
    for (provider, model, want) in cases {
        assert_eq!(
            book.price(*provider, model),
            *want,
            "price({provider:?}, {model:?})"
        );
    }
}

#[test]
fn per_mtok_is_clean() {
    let cases = [
        (5e-7, 0.5),
        (1.5e-6, 1.5),
        (2.85e-6, 2.85),
        (9.9e-7, 0.99),
        (1e-9, 0.001),
        (0.0, 0.0),
    ];
    for (per_token, want) in cases {
        assert_eq!(per_mtok(per_token), want, "{per_token}");
    }
}

#[test]
fn prefixed_compare_agrees_with_building_the_string() {
    let names = [
        "",
        "a",
        "ab",
        "a/",
        "a/b",
        "a/bc",
        "a0",
        "a.b",
        "b",
        "ab/c",
        "a/b/c",
        "deepseek/deepseek-chat",
    ];
    for entry in names {
        for prefix in ["", "a", "ab", "deepseek"] {
            for name in ["", "b", "bc", "b/c", "deepseek-chat"] {
                let built = format!("{prefix}/{name}");
                assert_eq!(
                    cmp_prefixed(entry.as_bytes(), prefix.as_bytes(), name.as_bytes()),
                    entry.cmp(built.as_str()),
                    "{entry:?} vs {built:?}"
                );
            }
        }
    }
}

#[test]
fn cost_table() {
    let book = book();
    let t = |prompt, completion, cached_prompt| TokenCounts {
        prompt,
        completion,
        cached_prompt,
        cache_write: 0,
    };
    let sonnet = builtin("claude-sonnet-4-5").unwrap();
    let cache_read = sonnet.cache_read.unwrap();
    let cache_write = sonnet.cache_write.unwrap();
    assert!(cache_write > sonnet.input);
    let cases: &[(&str, TokenCounts, Option<f64>)] = &[
        // override: 1 USD / 2 USD per Mtok, no cached price -> cached billed as input
        ("gpt-4o-mini", t(1_000_000, 500_000, 0), Some(2.0)),
        ("gpt-4o-mini", t(1_000_000, 0, 400_000), Some(1.0)),
        // zero-priced override is a real zero, not unknown
        ("my-local-model", t(123, 456, 7), Some(0.0)),
        // builtin with a cache-read price
        (
            "claude-sonnet-4-5",
            t(10_000, 2_000, 8_000),
            Some(2_000.0 * sonnet.input + 8_000.0 * cache_read + 2_000.0 * sonnet.output),
        ),
        // cache writes at their own price: 10k prompt = 1k uncached + 6k read + 3k written
        (
            "claude-sonnet-4-5",
            TokenCounts {
                prompt: 10_000,
                completion: 2_000,
                cached_prompt: 6_000,
                cache_write: 3_000,
            },
            Some(
                1_000.0 * sonnet.input
                    + 6_000.0 * cache_read
                    + 3_000.0 * cache_write
                    + 2_000.0 * sonnet.output,
            ),
        ),
        // no cache-write price: written tokens are billed as input
        (
            "gpt-4o-mini",
            TokenCounts {
                prompt: 1_000_000,
                completion: 0,
                cached_prompt: 0,
                cache_write: 500_000,
            },
            Some(1.0),
        ),
        // cached > prompt: uncached part saturates at zero
        (
            "claude-sonnet-4-5",
            t(100, 0, 300),
            Some(300.0 * cache_read),
        ),
        ("claude-sonnet-4-5", TokenCounts::default(), Some(0.0)),
        // unknown model has no cost
        ("unknown-model", t(1, 1, 0), None),
    ];
    for (model, tokens, want) in cases {
        let got = book.cost_usd(None, model, *tokens);
        match (got, want) {
            (Some(g), Some(w)) => assert!(close(g, *w), "{model} {tokens:?}: {g} != {w}"),
            _ => assert_eq!(got, *want, "{model} {tokens:?}"),
        }
    }
    assert_eq!(
        builtin("claude-sonnet-4-5").map(|e| e.price().cached_input_per_mtok),
        Some(Some(0.3))
    );
}

fn flat(input: f64) -> Price {
    Price {
        input_per_mtok: input,
        output_per_mtok: input,
        ..Price::default()
    }
}

#[test]
fn overrides_apply_to_dated_names_longest_and_exact_first() {
    let book = PriceBook::new(HashMap::from([
        ("gpt-4o".to_owned(), flat(1.0)),
        ("openai/gpt-4o".to_owned(), flat(2.0)),
        ("gpt-4o-2024-08-06".to_owned(), flat(3.0)),
        ("claude-sonnet-4-5".to_owned(), flat(4.0)),
    ]));
    let cases: &[(&str, Option<f64>)] = &[
        ("gpt-4o", Some(1.0)),
        // undated override applies to any dated version
        ("gpt-4o-2024-11-20", Some(1.0)),
        ("gpt-4o-20241120", Some(1.0)),
        // the exact dated override beats the undated one
        ("gpt-4o-2024-08-06", Some(3.0)),
        ("openai/gpt-4o-2024-08-06", Some(3.0)),
        // the longest matching name wins
        ("openai/gpt-4o", Some(2.0)),
        ("openai/gpt-4o-2024-11-20", Some(2.0)),
        ("azure/gpt-4o-2024-11-20", Some(1.0)),
        ("claude-sonnet-4-5-20250929", Some(4.0)),
        // a name that merely starts with an override's is another model
        ("gpt-4o-mini", None),
        ("gpt-4o-mini-2024-07-18", None),
        ("gpt-4o-2024", None),
    ];
    for (model, want) in cases {
        let got = book.override_for(model).map(|p| p.input_per_mtok);
        assert_eq!(got, *want, "{model}");
    }
    // the override wins over the built-in entry of the dated name
    assert_eq!(
        book.price(None, "claude-sonnet-4-5-20250929"),
        Some(flat(4.0))
    );
}

#[test]
fn models_priced_by_name_whatever_the_provider_is_called() {
    let cases: &[(Option<&str>, &str, Option<&str>)] = &[
        (
            Some("google"),
            "gemini-2.5-pro",
            Some("gemini/gemini-2.5-pro"),
        ),
        (
            Some("my-gateway"),
            "gemini-2.5-pro",
            Some("gemini/gemini-2.5-pro"),
        ),
        (None, "gemini-2.5-pro", Some("gemini/gemini-2.5-pro")),
        // the maker's entry beats a reseller's listing of the same name
        (
            Some("my-gateway"),
            "google/gemini-2.5-pro",
            Some("gemini/gemini-2.5-pro"),
        ),
        (Some("my-gateway"), "kimi-k3", Some("moonshot/kimi-k3")),
        (Some("fireworks"), "kimi-k3", Some("fireworks_ai/kimi-k3")),
        (Some("my-gateway"), "deepseek-chat", Some("deepseek-chat")),
        (
            Some("deepseek"),
            "deepseek-chat",
            Some("deepseek/deepseek-chat"),
        ),
        // only resellers, at different prices: not guessed
        (Some("my-gateway"), "openai/gpt-oss-120b", None),
    ];
    for (provider, model, want) in cases {
        let got = lookup(*provider, model).map(|e| e.name);
        assert_eq!(got, *want, "lookup({provider:?}, {model:?})");
    }
}

#[test]
fn table_extras_become_prices() {
    let gpt = builtin("gpt-5.4").unwrap().price();
    let tier = gpt.tier.unwrap();
    assert_eq!(tier.above_tokens, 272_000);
    assert_eq!(tier.input_per_mtok, Some(5.0));
    assert!(!tier.inclusive);
    assert_eq!(gpt.flex.unwrap().input_per_mtok, Some(1.25));
    assert_eq!(gpt.priority.unwrap().output_per_mtok, Some(30.0));
    let sonnet = builtin("claude-sonnet-4-5").unwrap().price();
    assert_eq!(sonnet.cache_write_1h_per_mtok, Some(6.0));
    assert_eq!(sonnet.web_search_per_call, Some(0.01));
    assert!(
        lookup(Some("xai"), "grok-4.3")
            .unwrap()
            .price()
            .tier
            .unwrap()
            .inclusive
    );
    // Fireworks: cached input at half the input price where the table has none
    let fw = lookup(
        Some("fireworks"),
        "accounts/fireworks/models/code-llama-13b",
    )
    .unwrap();
    assert_eq!(fw.provider, "fireworks_ai");
    assert_eq!(fw.cache_read, None);
    assert_eq!(
        fw.price().cached_input_per_mtok,
        Some(per_mtok(fw.input * 0.5))
    );
    let flash = builtin("gemini/gemini-2.5-flash").unwrap().price();
    assert!(flash.reasoning_per_mtok.is_some());
}

#[test]
fn lookup_order_is_override_then_overlay_then_builtin() {
    let overlay = Overlay::from_litellm(
        r#"{
                "gpt-4o": {"litellm_provider": "openai", "mode": "chat", "max_input_tokens": 200000,
                    "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6},
                "gpt-4o-mini": {"litellm_provider": "openai", "mode": "chat",
                    "input_cost_per_token": 3e-6, "output_cost_per_token": 4e-6},
                "gemini/gemini-2.5-pro": {"litellm_provider": "gemini", "mode": "chat",
                    "input_cost_per_token": 5e-6, "output_cost_per_token": 6e-6},
                "brand-new-model": {"litellm_provider": "openai", "mode": "chat",
                    "input_cost_per_token": 7e-6, "output_cost_per_token": 8e-6}
            }"#,
        "test.json",
    )
    .unwrap();
    let book = PriceBook::new(HashMap::from([("gpt-4o-mini".to_owned(), flat(9.0))]))
        .with_overlay(Some(Arc::new(overlay)));
    let cases: &[(Option<&str>, &str, Origin, &str, f64)] = &[
        (None, "gpt-4o", Origin::Overlay, "gpt-4o", 1.0),
        (None, "openai/gpt-4o", Origin::Overlay, "gpt-4o", 1.0),
        // the built-in dated entry still wins for its exact name
        (
            None,
            "gpt-4o-2024-08-06",
            Origin::BuiltIn,
            "gpt-4o-2024-08-06",
            2.5,
        ),
        (None, "gpt-4o-2099-01-01", Origin::Overlay, "gpt-4o", 1.0),
        (None, "gpt-4o-mini", Origin::Config, "gpt-4o-mini", 9.0),
        (
            Some("google"),
            "gemini-2.5-pro",
            Origin::Overlay,
            "gemini/gemini-2.5-pro",
            5.0,
        ),
        (
            Some("my-gateway"),
            "gemini-2.5-pro",
            Origin::Overlay,
            "gemini/gemini-2.5-pro",
            5.0,
        ),
        (
            None,
            "brand-new-model",
            Origin::Overlay,
            "brand-new-model",
            7.0,
        ),
        (
            None,
            "claude-sonnet-4-5",
            Origin::BuiltIn,
            "claude-sonnet-4-5",
            3.0,
        ),
    ];
    for (provider, model, origin, name, input) in cases {
        let r = book.resolve(*provider, model).unwrap();
        assert_eq!(
            (r.origin, r.name.as_str(), r.price.input_per_mtok),
            (*origin, *name, *input),
            "{model}"
        );
        assert_eq!(book.price(*provider, model), Some(r.price), "{model}");
    }
    assert_eq!(book.context_window("gpt-4o"), Some(200_000));
    assert!(book.resolve(None, "no-such-model").is_none());
    // the built-in lookup alone does not see the overlay
    assert_eq!(builtin("brand-new-model"), None);
}

#[test]
fn context_window_and_caps() {
    let book = PriceBook::default();
    assert_eq!(book.context_window("gpt-4o-mini"), Some(128_000));
    assert_eq!(book.context_window("no-such-model"), None);
    let sonnet = builtin("claude-sonnet-4-5").unwrap();
    assert!(sonnet.supports(CAP_TOOLS | CAP_VISION | CAP_PROMPT_CACHING));
    assert!(!builtin("ollama/llama2").unwrap().supports(CAP_TOOLS));
}
