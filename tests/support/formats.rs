//! Sessions and requests for the tests that script one reply in every client format: a `run`
//! whose providers are all the mock upstream, one of each kind, and bodies for each API.

use serde_json::{Value, json};

use super::upstream::{Behavior, MockUpstream};
use super::{RunSession, TestEnv, http_client};

/// A `Behavior::Raw` reply: exactly `body`, whatever was asked.
pub fn raw(content_type: &'static str, body: impl Into<String>) -> Behavior {
    Behavior::Raw {
        content_type,
        body: body.into(),
    }
}

/// A `run` session whose providers all are `upstream`: `oa` (OpenAI, serving `models`), `chat`
/// (OpenAI without the Responses API, `gpt-4.1-mini`), `an` (Anthropic, `claude-*`) and `ol`
/// (Ollama, `llama3`).
pub fn start_every_kind(env: &TestEnv, upstream: &MockUpstream, models: &str) -> RunSession {
    let base = upstream.base_url();
    let root = base.trim_end_matches("/v1");
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: oa\n    kind: openai\n    base_url: {base}\n    api_key_env: UPSTREAM_KEY\n    models: [{models}]\n  - name: chat\n    kind: openai\n    base_url: {base}\n    api_key_env: UPSTREAM_KEY\n    responses_api: false\n    models: [gpt-4.1-mini]\n  - name: an\n    kind: anthropic\n    base_url: {root}\n    api_key_env: UPSTREAM_KEY\n    models: [\"claude-*\"]\n  - name: ol\n    kind: ollama\n    base_url: {root}\n    models: [llama3]\n",
        ),
    );
    env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    )
}

/// POSTs `body` to `url` with the session's key in every header a client may send it in;
/// returns the status and body.
pub async fn post(url: String, key: &str, body: &Value) -> (u16, String) {
    let resp = http_client()
        .post(url)
        .bearer_auth(key)
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// An Anthropic Messages request.
pub fn messages_body(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 200, "stream": stream,
        "messages": [{"role": "user", "content": "Tell me something about budgets, please."}]})
}

/// A Responses API request.
pub fn responses_body(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "input": "Tell me something about budgets, please."})
}
