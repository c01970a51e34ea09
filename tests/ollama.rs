//! Ollama both ways: Ollama clients through `/api/chat` and `/api/generate` (NDJSON streams),
//! the discovery endpoints, OpenAI clients served by an Ollama provider, and legacy completions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::upstream::{COMPLETION_TOKENS, MockUpstream, PROMPT_TOKENS, REPLY_WORDS};
use support::{TestEnv, chat_body, post_chat};

async fn post(url: String, body: serde_json::Value) -> support::Reply {
    let resp = support::http_client()
        .post(url)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    support::Reply {
        status,
        headers,
        body: resp.text().await.unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ollama_clients_chat_and_generate_through_the_proxy() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let host = session.env["OLLAMA_HOST"].clone();

    // Ollama streams unless told not to; Ollama clients send no key.
    let chat = serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    let reply = post(format!("{host}/api/chat"), chat.clone()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.headers["content-type"], "application/x-ndjson");
    let lines: Vec<serde_json::Value> = reply
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let text: String = lines
        .iter()
        .filter_map(|l| l["message"]["content"].as_str())
        .collect();
    assert_eq!(text, REPLY_WORDS.concat());
    let last = lines.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["prompt_eval_count"], PROMPT_TOKENS);
    assert_eq!(last["eval_count"], COMPLETION_TOKENS);

    let mut whole = chat.clone();
    whole["stream"] = false.into();
    let reply = post(format!("{host}/api/chat"), whole).await;
    assert_eq!(reply.json()["message"]["content"], REPLY_WORDS.concat());
    assert_eq!(reply.json()["done"], true);

    let generate = serde_json::json!({"model": "gpt-4o-mini", "prompt": "hi", "system": "terse", "stream": false});
    let reply = post(format!("{host}/api/generate"), generate).await;
    assert_eq!(reply.json()["response"], REPLY_WORDS.concat());
    let sent = &upstream.received()[2].body;
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["messages"][1]["content"], "hi");

    // A wrong key is still refused, in Ollama's error shape.
    let resp = support::http_client()
        .post(format!("{host}/api/chat"))
        .bearer_auth("wrong")
        .body(chat.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert!(body["error"].is_string(), "{body}");

    let tags: serde_json::Value = serde_json::from_str(
        &support::http_client()
            .get(format!("{host}/api/tags"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let names: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(names.contains(&"gpt-4o-mini"), "{tags}");
    let show = post(
        format!("{host}/api/show"),
        serde_json::json!({"model": "gpt-4o-mini"}),
    )
    .await;
    assert_eq!(show.status, 200, "{}", show.body);
    let version: serde_json::Value = serde_json::from_str(
        &support::http_client()
            .get(format!("{host}/api/version"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(version["version"].is_string());
    session.finish(0);

    let rows = env.requests();
    let endpoints: Vec<&str> = rows.iter().map(|r| r["endpoint"].as_str()).collect();
    assert_eq!(
        endpoints,
        vec![
            "ollama.chat",
            "ollama.chat",
            "ollama.generate",
            "ollama.chat"
        ]
    );
    assert_eq!(rows[0]["completion_tokens"], COMPLETION_TOKENS.to_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_clients_are_served_by_an_ollama_provider() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        &format!("providers:\n  - name: local\n    kind: ollama\n    base_url: http://{}\n    models: [llama3.2]\n", upstream.addr),
    );
    let session = env.start_run(&["run", "--config", config.to_str().unwrap()], &[]);
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("llama3.2", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json()["choices"][0]["message"]["content"],
        REPLY_WORDS.concat()
    );
    assert_eq!(
        reply.json()["usage"]["completion_tokens"],
        COMPLETION_TOKENS
    );
    let sent = &upstream.received()[0];
    assert_eq!(sent.path, "/api/chat");
    assert_eq!(sent.body["stream"], false);

    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("llama3.2", true, "hi"),
    )
    .await;
    let content: String = reply.streamed_content();
    assert_eq!(content, REPLY_WORDS.concat());
    assert!(reply.body.ends_with("data: [DONE]\n\n"));
    session.finish(0);
    let rows = env.requests();
    assert_eq!(
        rows[1]["prompt_tokens"],
        PROMPT_TOKENS.to_string(),
        "usage from prompt_eval_count"
    );
    assert_eq!(
        rows[1]["completion_tokens"],
        COMPLETION_TOKENS.to_string(),
        "usage from eval_count"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_completions_pass_through_to_openai_targets() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let client = support::http_client();
    let body = serde_json::json!({"model": "gpt-4o-mini", "prompt": "Say hi", "max_tokens": 5});
    let resp = client
        .post(format!("{}/completions", session.base_url))
        .bearer_auth(&session.key)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let json: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(json["choices"][0]["text"], REPLY_WORDS.concat());
    let mut stream = body.clone();
    stream["stream"] = true.into();
    let text = client
        .post(format!("{}/completions", session.base_url))
        .bearer_auth(&session.key)
        .body(stream.to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.ends_with("data: [DONE]\n\n") && !text.contains("\"usage\""),
        "{text}"
    );
    assert_eq!(upstream.received()[1].path, "/v1/completions");
    session.finish(0);
    let rows = env.requests();
    assert!(rows.iter().all(|r| r["endpoint"] == "completions"));
    assert_eq!(rows[1]["completion_tokens"], COMPLETION_TOKENS.to_string());
}
