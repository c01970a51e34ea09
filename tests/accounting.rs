//! The accounting corpus (`testdata/accounting/cases.jsonl`, built by `expected.py` there): each
//! case's upstream reply goes through the real binary, whole or streamed, native or translated,
//! after a failed first attempt or not; the ledger must hold the case's tokens exactly and its
//! cost within 1e-9 USD. One `run` session, one mock upstream per provider.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod support;

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::{Value, json};
use support::upstream::{Behavior, MockUpstream};
use support::{RunSession, TestEnv};

const CASES: &str = include_str!("../testdata/accounting/cases.jsonl");

/// The config's `pricing:` overrides; `expected.py` prices the override cases from the same.
const OVERRIDES: &str = "pricing:
  gpt-4.1: {input_per_mtok: 1.0, output_per_mtok: 4.0, cached_input_per_mtok: 0.25}
  gpt-4.1-2025-04-14: {input_per_mtok: 1.5, output_per_mtok: 6.0}
  claude-sonnet-4-5: {input_per_mtok: 2.0, output_per_mtok: 10.0, cached_input_per_mtok: 0.2, cache_write_per_mtok: 2.5, cache_write_1h_per_mtok: 4.0}
";

fn config(
    env: &TestEnv,
    upstreams: &HashMap<String, (String, MockUpstream)>,
) -> std::path::PathBuf {
    let mut text = String::from("providers:\n");
    let mut names: Vec<&String> = upstreams.keys().collect();
    names.sort();
    for name in names {
        let (kind, upstream) = &upstreams[name];
        let base_url = match kind.as_str() {
            "openai" => upstream.base_url(),
            _ => format!("http://{}", upstream.addr),
        };
        writeln!(
            text,
            "  - name: {name}\n    kind: {kind}\n    base_url: {base_url}\n    api_key_env: UPSTREAM_KEY\n    models: [\"never-routed-by-name\"]"
        )
        .unwrap();
    }
    // A failed first attempt is retried at once on the same provider; no breaker opens.
    text.push_str(
        "resilience:\n  max_attempts: 2\n  backoff_ms: 1\n  max_backoff_ms: 1\n  retry_after_cap_ms: 1000\n  breaker_failures: 100000\n",
    );
    text.push_str(OVERRIDES);
    env.write("accounting.yaml", &text)
}

fn sse(events: &[Value]) -> String {
    let mut out: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    out.push_str("data: [DONE]\n\n");
    out
}

fn named(events: &[(&str, Value)]) -> String {
    events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect()
}

/// The upstream's reply for `case`, in its wire format, whole or streamed.
fn upstream_reply(case: &Value) -> Behavior {
    let model = case["model"].as_str().unwrap();
    let usage = &case["usage"];
    let stream = case["stream"].as_bool().unwrap();
    let tier = &case["service_tier"];
    let text = "The answer is forty-two.";
    match case["upstream_format"].as_str().unwrap() {
        "openai" => {
            let mut head = json!({"id": "chatcmpl-acct", "object": "chat.completion", "created": 1_700_000_000, "model": model});
            if !tier.is_null() {
                head["service_tier"] = tier.clone();
            }
            if !stream {
                let mut body = head;
                body["choices"] = json!([{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]);
                body["usage"] = usage.clone();
                return Behavior::Raw {
                    content_type: "application/json",
                    body: body.to_string(),
                };
            }
            head["object"] = json!("chat.completion.chunk");
            let chunk = |choices: Value, usage: Value| {
                let mut c = head.clone();
                c["choices"] = choices;
                c["usage"] = usage;
                c
            };
            let events = [
                chunk(
                    json!([{"index": 0, "delta": {"role": "assistant", "content": "The answer "}, "finish_reason": null}]),
                    Value::Null,
                ),
                chunk(
                    json!([{"index": 0, "delta": {"content": "is forty-two."}, "finish_reason": null}]),
                    Value::Null,
                ),
                chunk(
                    json!([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
                    Value::Null,
                ),
                chunk(json!([]), usage.clone()),
            ];
            Behavior::Raw {
                content_type: "text/event-stream",
                body: sse(&events),
            }
        }
        "anthropic" => {
            if !stream {
                let body = json!({"id": "msg_acct", "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                    "stop_sequence": null, "usage": usage});
                return Behavior::Raw {
                    content_type: "application/json",
                    body: body.to_string(),
                };
            }
            // Anthropic reports the input side at message_start and the running totals again
            // at message_delta.
            let mut start_usage = usage.clone();
            start_usage["output_tokens"] = json!(1);
            let events = [
                (
                    "message_start",
                    json!({"type": "message_start", "message": {"id": "msg_acct", "type": "message",
                    "role": "assistant", "model": model, "content": [], "stop_reason": null,
                    "stop_sequence": null, "usage": start_usage}}),
                ),
                (
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                ),
                (
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
                ),
                (
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0}),
                ),
                (
                    "message_delta",
                    json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": usage}),
                ),
                ("message_stop", json!({"type": "message_stop"})),
            ];
            Behavior::Raw {
                content_type: "text/event-stream",
                body: named(&events),
            }
        }
        "ollama" => {
            let done = json!({"model": model, "created_at": "2026-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": if stream { "" } else { text }},
                "done": true, "done_reason": "stop", "total_duration": 1000,
                "prompt_eval_count": usage["prompt_eval_count"], "eval_count": usage["eval_count"]});
            if !stream {
                return Behavior::Raw {
                    content_type: "application/json",
                    body: done.to_string(),
                };
            }
            let first = json!({"model": model, "created_at": "2026-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": text}, "done": false});
            Behavior::Raw {
                content_type: "application/x-ndjson",
                body: format!("{first}\n{done}\n"),
            }
        }
        other => panic!("unknown upstream format {other}"),
    }
}

/// Sends the case's request as its client would; returns the status and the request id.
async fn send(session: &RunSession, case: &Value) -> (u16, String, String) {
    let provider = case["provider"].as_str().unwrap();
    let model = format!("{provider}/{}", case["model"].as_str().unwrap());
    let stream = case["stream"].as_bool().unwrap();
    let client = support::http_client();
    let req = if case["client"] == "anthropic" {
        let root = &session.env["ANTHROPIC_BASE_URL"];
        client
            .post(format!("{root}/v1/messages"))
            .header("x-api-key", &session.key)
            .header("anthropic-version", "2023-06-01")
            .header("content-type", "application/json")
            .body(
                json!({"model": model, "max_tokens": 64, "stream": stream,
                "messages": [{"role": "user", "content": "What is the answer?"}]})
                .to_string(),
            )
    } else {
        let mut body = json!({"model": model, "stream": stream,
            "messages": [{"role": "user", "content": "What is the answer?"}]});
        if stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        client
            .post(format!("{}/chat/completions", session.base_url))
            .bearer_auth(&session.key)
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let id = resp
        .headers()
        .get("x-smartproxy-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = resp.text().await.unwrap();
    (status, id, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_corpus_case_is_recorded_exactly() {
    let cases: Vec<Value> = CASES
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(cases.len() >= 150, "only {} cases", cases.len());
    let mut upstreams: HashMap<String, (String, MockUpstream)> = HashMap::new();
    for case in &cases {
        let provider = case["provider"].as_str().unwrap().to_owned();
        let kind = case["kind"].as_str().unwrap().to_owned();
        upstreams
            .entry(provider)
            .or_insert_with(|| (kind, MockUpstream::start()));
    }
    let env = TestEnv::new();
    let config = config(&env, &upstreams);
    let session = env.start_run(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--summary",
            "none",
        ],
        &[("UPSTREAM_KEY", "sk-upstream")],
    );

    let mut sent = Vec::new();
    for case in &cases {
        let (_, upstream) = &upstreams[case["provider"].as_str().unwrap()];
        let calls_before = upstream.calls();
        if let Some(status) = case["retry"].as_u64() {
            upstream.push([Behavior::Status {
                status: u16::try_from(status).unwrap(),
                retry_after: Some(0),
            }]);
        }
        upstream.push([upstream_reply(case)]);
        let (status, id, body) = send(&session, case).await;
        let attempts = upstream.calls() - calls_before;
        let want_attempts = if case["retry"].is_null() { 1 } else { 2 };
        assert_eq!(
            (status, attempts),
            (200, want_attempts),
            "case {} ({}): {body}",
            case["id"],
            case["shape"]
        );
        sent.push((case, id));
    }
    let output = session.finish(0);
    assert!(output.status.success(), "{}", support::text(&output.stderr));

    let rows: HashMap<String, HashMap<String, String>> = env
        .requests()
        .into_iter()
        .map(|row| (row["id"].clone(), row))
        .collect();
    let mut failures = String::new();
    for (case, id) in &sent {
        let e = &case["expected"];
        let Some(row) = rows.get(id) else {
            writeln!(
                failures,
                "{:>4} {:<28} no ledger row {id}",
                case["id"].as_str().unwrap(),
                case["shape"].as_str().unwrap()
            )
            .unwrap();
            continue;
        };
        let mut wrong = Vec::new();
        for column in [
            "prompt_tokens",
            "completion_tokens",
            "cached_tokens",
            "cache_write_tokens",
        ] {
            let want = e[column].as_u64().unwrap().to_string();
            if row[column] != want {
                wrong.push(format!("{column} {} != {want}", row[column]));
            }
        }
        let want_cost = e["cost_usd"].as_f64().unwrap();
        match row["cost_usd"].parse::<f64>() {
            Ok(got) if (got - want_cost).abs() <= 1e-9 => {}
            _ => wrong.push(format!("cost {} != {want_cost:.12}", row["cost_usd"])),
        }
        if row["tokens_estimated"] != "0" {
            wrong.push(format!("tokens_estimated {}", row["tokens_estimated"]));
        }
        if !wrong.is_empty() {
            writeln!(
                failures,
                "{:>4} {:<28} {:<10} {:<9} stream={:<5} retry={:<4} {}",
                case["id"].as_str().unwrap(),
                case["shape"].as_str().unwrap(),
                case["provider"].as_str().unwrap(),
                case["client"].as_str().unwrap(),
                case["stream"],
                case["retry"],
                wrong.join("; ")
            )
            .unwrap();
        }
    }
    assert!(
        failures.is_empty(),
        "cases recorded wrong (id, shape, provider, client, stream, retry, what):\n{failures}"
    );
}

/// Whether DeepSeek bills `started_ms` at its off-peak price (LiteLLM 1.109.1: weekdays
/// 00:00-01:00, 04:00-06:00 and from 10:00 UTC; all weekend), written out apart from the
/// product's schedule as a check on it.
fn deepseek_off_peak(started_ms: i64) -> bool {
    use chrono::{Datelike, Timelike};
    let at = chrono::DateTime::from_timestamp_millis(started_ms).unwrap();
    let hour = at.hour();
    at.weekday().number_from_monday() >= 6 || hour < 1 || (4..6).contains(&hour) || hour >= 10
}

/// Prices by prompt size (DashScope's Qwen ranges, unpriced before) and by the hour
/// (DeepSeek's off-peak, billed at the standard price before): each request pays the price of
/// its prompt's range and of the moment it started, and the row says which period it paid.
/// Both sides of the off-peak boundaries are checked with a fixed clock in
/// `pricing::price` and `pricing::hours`.
#[tokio::test(flavor = "multi_thread")]
async fn range_and_off_peak_prices_are_applied_and_the_period_recorded() {
    let reply = |model: &str, prompt: u64, cached: u64, completion: u64| Behavior::Raw {
        content_type: "application/json",
        body: json!({"id": "chatcmpl-acct", "object": "chat.completion", "created": 1,
            "model": model, "choices": [{"index": 0, "message": {"role": "assistant",
            "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached}}})
        .to_string(),
    };
    let (dashscope, deepseek) = (MockUpstream::start(), MockUpstream::start());
    dashscope.push([
        reply("qwen3-coder-plus", 40_000, 10_000, 1_000),
        reply("qwen3-max", 1_000, 0, 100),
    ]);
    deepseek.push([reply("deepseek-v4-pro", 1_000, 400, 100)]);
    let env = TestEnv::new();
    let config = env.write(
        "prices.yaml",
        &format!(
            "providers:\n  - name: dashscope\n    kind: openai\n    base_url: {}\n    api_key_env: UPSTREAM_KEY\n    models: [qwen3-coder-plus, qwen3-max]\n  - name: deepseek\n    kind: openai\n    base_url: {}\n    api_key_env: UPSTREAM_KEY\n    models: [deepseek-v4-pro]\n",
            dashscope.base_url(),
            deepseek.base_url()
        ),
    );
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    for model in ["qwen3-coder-plus", "qwen3-max", "deepseek-v4-pro"] {
        let reply = support::post_chat(
            &session.base_url,
            Some(&session.key),
            support::chat_body(model, false, "hi"),
        )
        .await;
        assert_eq!(reply.status, 200, "{model}: {}", reply.body);
    }
    session.finish(0);
    let rows = env.requests();
    let row = |model: &str| {
        rows.iter()
            .find(|r| r["served_model"] == model)
            .unwrap_or_else(|| panic!("no row for {model}: {rows:?}"))
    };
    let cost = |model: &str| -> f64 {
        let r = row(model);
        r["cost_usd"]
            .parse()
            .unwrap_or_else(|_| panic!("{model} unpriced: {r:?}"))
    };
    let close = |got: f64, want: f64| (got - want).abs() <= 1e-9;
    // 40,000 prompt tokens: the 32k-128k range prices the whole request (USD per million:
    // input 1.8, cached 0.18, output 9).
    let want = (30_000.0 * 1.8 + 10_000.0 * 0.18 + 1_000.0 * 9.0) / 1e6;
    assert!(
        close(cost("qwen3-coder-plus"), want),
        "{}",
        cost("qwen3-coder-plus")
    );
    // 1,000: the first range (input 1.2, output 6).
    let want = (1_000.0 * 1.2 + 100.0 * 6.0) / 1e6;
    assert!(close(cost("qwen3-max"), want), "{}", cost("qwen3-max"));
    assert_eq!(row("qwen3-max")["price_period"], "NULL");

    let r = row("deepseek-v4-pro");
    let off_peak = deepseek_off_peak(r["started_ms"].parse().unwrap());
    let (period, want) = if off_peak {
        (
            "off_peak",
            (600.0 * 0.66 + 400.0 * 0.022 + 100.0 * 1.98) / 1e6,
        )
    } else {
        (
            "standard",
            (600.0 * 1.32 + 400.0 * 0.044 + 100.0 * 3.96) / 1e6,
        )
    };
    assert_eq!(r["price_period"], period, "{r:?}");
    assert!(close(cost("deepseek-v4-pro"), want), "{r:?}");
}
