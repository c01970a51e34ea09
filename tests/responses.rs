//! OpenAI's Responses API (`POST /v1/responses`, what Codex CLI speaks) passed through to
//! OpenAI-compatible providers untouched, whole and streamed event by event, with usage read
//! from the reply (`input_tokens_details.cached_tokens` priced as cache reads) and recorded.
//! Providers without the API (`responses_api: false`, the mock, Anthropic, Ollama) get it
//! translated to chat completions and back, streams event by event; what chat cannot carry is
//! refused naming the field, and every request is a ledger row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::dialects::RESPONSES_CACHED_TOKENS;
use support::upstream::{Behavior, COMPLETION_TOKENS, MockUpstream, PROMPT_TOKENS, REPLY_WORDS};
use support::{TestEnv, text};

async fn post(base_url: &str, key: &str, body: &serde_json::Value) -> (u16, String, String) {
    let resp = support::http_client()
        .post(format!("{base_url}/responses"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn responses_pass_through_to_openai_providers_whole_and_streamed() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: upstream\n    kind: openai\n    base_url: {}\n    api_key_env: UPSTREAM_KEY\n    models: [gpt-4o-mini, gpt-4o]\n  - name: local\n    kind: mock\n    models: [mock]\n",
            upstream.base_url()
        ),
    );
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "instructions": "Answer briefly.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "What is the answer?"}]}],
        "reasoning": {"effort": "low"},
        "store": false,
    });
    let (status, content_type, reply) = post(&session.base_url, &session.key, &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(content_type, "application/json");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(
        reply["output"][0]["content"][0]["text"],
        REPLY_WORDS.concat()
    );
    let sent = &upstream.received()[0];
    assert_eq!(sent.path, "/v1/responses");
    assert_eq!(sent.body, body, "the client's body goes out untouched");

    let mut streamed = body.clone();
    streamed["stream"] = true.into();
    let (status, content_type, events) = post(&session.base_url, &session.key, &streamed).await;
    assert_eq!(status, 200, "{events}");
    assert_eq!(content_type, "text/event-stream");
    let names: Vec<&str> = events
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"response.created"));
    assert_eq!(names.last(), Some(&"response.completed"));
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "response.output_text.delta")
            .count(),
        REPLY_WORDS.len()
    );
    assert!(
        !upstream.received()[1]
            .body
            .as_object()
            .unwrap()
            .contains_key("stream_options"),
        "Responses bodies get no chat-only fields"
    );

    // A model only the mock serves: translated to chat completions and back.
    let (status, _, reply) = post(
        &session.base_url,
        &session.key,
        &serde_json::json!({"model": "mock", "input": "hi"}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["object"], "response");
    assert_eq!(reply["status"], "completed");
    assert!(
        reply["output"][0]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("mock provider"),
        "{reply}"
    );
    // An item chat cannot carry, for a chat provider: a 400 naming the field.
    let (status, _, reply) = post(
        &session.base_url,
        &session.key,
        &serde_json::json!({"model": "mock", "input": [{"type": "item_reference", "id": "msg_1"}]}),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply.contains("input[0].type"), "{reply}");
    // Malformed: a 400 naming the problem.
    let (status, _, reply) = post(
        &session.base_url,
        &session.key,
        &serde_json::json!({"input": "hi"}),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    // A stored response is read from the provider with the Responses API, with its key.
    let resp = support::http_client()
        .get(format!("{}/responses/resp_123", session.base_url))
        .bearer_auth(&session.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let stored: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(stored["id"], "resp_123");
    let sent = upstream.received().last().unwrap().clone();
    assert_eq!(sent.path, "/v1/responses/resp_123");
    assert_eq!(sent.authorization.as_deref(), Some("Bearer k"));
    // Without the session key: refused like every other endpoint.
    let resp = support::http_client()
        .get(format!("{}/responses/resp_123", session.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // Deleting is not passed on.
    let resp = support::http_client()
        .delete(format!("{}/responses/resp_123", session.base_url))
        .bearer_auth(&session.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 501);
    let out = session.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let rows = env.requests();
    assert_eq!(rows.len(), 7, "every request is a row: {rows:?}");
    for row in &rows[..2] {
        assert_eq!(row["endpoint"], "responses", "{row:?}");
        assert_eq!(row["status"], "200", "{row:?}");
        assert_eq!(row["prompt_tokens"], PROMPT_TOKENS.to_string(), "{row:?}");
        assert_eq!(
            row["completion_tokens"],
            COMPLETION_TOKENS.to_string(),
            "{row:?}"
        );
        assert_eq!(
            row["cached_tokens"],
            RESPONSES_CACHED_TOKENS.to_string(),
            "{row:?}"
        );
        assert_eq!(row["tokens_estimated"], "0", "{row:?}");
        // gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per million tokens.
        let uncached = (PROMPT_TOKENS - RESPONSES_CACHED_TOKENS) as f64;
        let want = (uncached * 0.15
            + RESPONSES_CACHED_TOKENS as f64 * 0.075
            + COMPLETION_TOKENS as f64 * 0.60)
            / 1e6;
        let cost: f64 = row["cost_usd"].parse().unwrap();
        assert!((cost - want).abs() < 1e-12, "{cost} vs {want}: {row:?}");
    }
    assert_eq!(rows[1]["stream"], "1");
    assert_eq!(rows[2]["status"], "200");
    assert_eq!(rows[2]["provider"], "local");
    assert_eq!(rows[3]["status"], "400");
    assert_eq!(rows[4]["status"], "400");
    assert_eq!(rows[5]["status"], "401");
    assert_eq!(rows[6]["status"], "501");
}

fn event_names(events: &str) -> Vec<&str> {
    events
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect()
}

/// The `data` of every event named `name`.
fn events_named(events: &str, name: &str) -> Vec<serde_json::Value> {
    events
        .split("\n\n")
        .filter(|e| e.starts_with(&format!("event: {name}\n")))
        .filter_map(|e| e.split_once("\ndata: "))
        .map(|(_, data)| serde_json::from_str(data).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn responses_are_translated_for_providers_without_the_api() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: chatonly\n    kind: openai\n    base_url: {}\n    api_key_env: UPSTREAM_KEY\n    models: [gpt-4o-mini]\n    responses_api: false\n",
            upstream.base_url()
        ),
    );
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let tools = serde_json::json!([
        {"type": "function", "name": "ls", "description": "List a directory.",
         "parameters": {"type": "object", "properties": {"dir": {"type": "string"}}}},
        {"type": "web_search"},
    ]);
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "instructions": "Answer briefly.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "What is the answer?"}]}],
        "tools": tools,
        "max_output_tokens": 300,
        "store": false,
    });

    // Whole: a chat request out, a Responses object back.
    let (status, _, reply) = post(&session.base_url, &session.key, &body).await;
    assert_eq!(status, 200, "{reply}");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["object"], "response");
    assert_eq!(reply["output"][0]["type"], "message");
    assert_eq!(
        reply["output"][0]["content"][0]["text"],
        REPLY_WORDS.concat()
    );
    assert_eq!(reply["usage"]["input_tokens"], PROMPT_TOKENS);
    assert_eq!(reply["usage"]["output_tokens"], COMPLETION_TOKENS);
    let sent = &upstream.received()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.body["messages"],
        serde_json::json!([
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "What is the answer?"},
        ])
    );
    assert_eq!(sent.body["max_tokens"], 300);
    let names: Vec<&str> = sent.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ls"], "the hosted web_search tool is left out");

    // Streamed: typed events written from the chat chunks, usage in `response.completed`.
    let mut streamed = body.clone();
    streamed["stream"] = true.into();
    let (status, content_type, events) = post(&session.base_url, &session.key, &streamed).await;
    assert_eq!(status, 200, "{events}");
    assert_eq!(content_type, "text/event-stream");
    let names = event_names(&events);
    assert_eq!(names[..2], ["response.created", "response.in_progress"]);
    assert_eq!(names.last(), Some(&"response.completed"));
    let deltas: Vec<String> = events_named(&events, "response.output_text.delta")
        .iter()
        .map(|e| e["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(deltas.concat(), REPLY_WORDS.concat());
    let completed = &events_named(&events, "response.completed")[0]["response"];
    assert_eq!(completed["usage"]["input_tokens"], PROMPT_TOKENS);
    assert_eq!(completed["usage"]["output_tokens"], COMPLETION_TOKENS);
    assert_eq!(
        upstream.received()[1].body["stream_options"]["include_usage"],
        true
    );

    // A function call, streamed: its arguments as deltas, the item done with them whole.
    upstream.push([Behavior::ToolCall {
        name: "ls",
        arguments: r#"{"dir":"."}"#,
    }]);
    let (status, _, events) = post(&session.base_url, &session.key, &streamed).await;
    assert_eq!(status, 200, "{events}");
    assert_eq!(
        events_named(&events, "response.function_call_arguments.delta").len(),
        2,
        "{events}"
    );
    let item = &events_named(&events, "response.output_item.done")[0]["item"];
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["name"], "ls");
    assert_eq!(item["call_id"], "call_upstream_1");
    assert_eq!(item["arguments"], r#"{"dir":"."}"#);

    // The tool's output goes back as the conversation chat expects.
    let mut follow_up = body.clone();
    follow_up["input"] = serde_json::json!([
        {"role": "user", "content": "List the directory."},
        {"type": "function_call", "call_id": "call_upstream_1", "name": "ls", "arguments": "{\"dir\":\".\"}"},
        {"type": "function_call_output", "call_id": "call_upstream_1", "output": "a.txt"},
    ]);
    let (status, _, reply) = post(&session.base_url, &session.key, &follow_up).await;
    assert_eq!(status, 200, "{reply}");
    let messages = &upstream.received()[3].body["messages"];
    assert_eq!(messages[2]["role"], "assistant");
    assert_eq!(messages[2]["tool_calls"][0]["id"], "call_upstream_1");
    assert_eq!(
        messages[3],
        serde_json::json!({"role": "tool", "tool_call_id": "call_upstream_1", "content": "a.txt"})
    );

    // What chat cannot carry: 400s naming the field, and the provider never called.
    for (bad, field) in [
        (
            serde_json::json!({"tools": [{"type": "file_search", "vector_store_ids": ["v"]}]}),
            "tools[0].type",
        ),
        (
            serde_json::json!({"previous_response_id": "resp_1"}),
            "previous_response_id",
        ),
        (
            serde_json::json!({"input": [{"type": "computer_call_output", "call_id": "c"}]}),
            "input[0].type",
        ),
    ] {
        let mut request = body.clone();
        for (key, value) in bad.as_object().unwrap() {
            request[key] = value.clone();
        }
        let (status, _, reply) = post(&session.base_url, &session.key, &request).await;
        assert_eq!(status, 400, "{reply}");
        let error: serde_json::Value = serde_json::from_str(&reply).unwrap();
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{reply}"
        );
        assert_eq!(error["error"]["type"], "invalid_request_error");
    }
    assert_eq!(upstream.calls(), 4);
    let out = session.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let rows = env.requests();
    assert_eq!(rows.len(), 7, "every request is a row: {rows:?}");
    for row in &rows[..4] {
        assert_eq!(row["endpoint"], "responses", "{row:?}");
        assert_eq!(row["provider"], "chatonly", "{row:?}");
        assert_eq!(row["status"], "200", "{row:?}");
        assert_eq!(row["prompt_tokens"], PROMPT_TOKENS.to_string(), "{row:?}");
        assert_eq!(row["tokens_estimated"], "0", "{row:?}");
        // gpt-4o-mini: $0.15 input, $0.60 output per million tokens.
        let want = (PROMPT_TOKENS as f64 * 0.15 + COMPLETION_TOKENS as f64 * 0.60) / 1e6;
        let cost: f64 = row["cost_usd"].parse().unwrap();
        assert!((cost - want).abs() < 1e-12, "{cost} vs {want}: {row:?}");
    }
    for row in &rows[4..] {
        assert_eq!(row["status"], "400", "{row:?}");
    }
}
