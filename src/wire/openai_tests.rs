//! Tests for `openai`: the OpenAI wire types read and written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn usage_only() -> Rewrite<'static> {
    Rewrite {
        add_stream_usage: true,
        ..Rewrite::default()
    }
}

/// Fuzzing found it (target wire_openai, input `{}`): the fast path wrote
/// `{"stream_options":{"include_usage":true},}`, a trailing comma, for an empty object.
#[test]
fn stream_usage_is_added_to_an_empty_object_as_valid_json() {
    for body in [&b"{}"[..], b" { \n } "] {
        let out = rewrite_request(body, usage_only()).unwrap().unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"stream_options": {"include_usage": true}})
        );
    }
}

#[test]
fn a_budget_lowers_the_output_cap_under_the_field_given() {
    let fit = |field| Rewrite {
        output_cap: Some((field, 100)),
        ..Rewrite::default()
    };
    let body = br#"{"model":"m","max_tokens":4096,"stream":true}"#;
    let out = rewrite_request(body, fit("max_tokens")).unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["max_tokens"], 100);
    let out = rewrite_request(br#"{"model":"m","input":"x"}"#, fit("max_output_tokens"))
        .unwrap()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["max_output_tokens"], 100);
    // OpenAI's own API takes the lowered cap as max_completion_tokens.
    let both = Rewrite {
        max_completion_tokens: true,
        ..fit("max_tokens")
    };
    let out = rewrite_request(br#"{"model":"o3"}"#, both)
        .unwrap()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["max_completion_tokens"], 100);
    assert!(v.get("max_tokens").is_none());
}

#[test]
fn the_output_cap_is_renamed_only_when_asked_and_never_overrides() {
    let rename = Rewrite {
        max_completion_tokens: true,
        ..Rewrite::default()
    };
    let body = br#"{"model":"o3","max_tokens":64,"messages":[]}"#;
    let out = rewrite_request(body, rename).unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["max_completion_tokens"], 64);
    assert!(v.get("max_tokens").is_none());
    assert_eq!(rewrite_request(body, Rewrite::default()).unwrap(), None);
    // Nothing to rename: untouched.
    let bare = br#"{"model":"o3","messages":[]}"#;
    assert_eq!(rewrite_request(bare, rename).unwrap(), None);
    // Both present: the explicit max_completion_tokens stays, max_tokens is left alone.
    let both = br#"{"model":"o3","max_tokens":64,"max_completion_tokens":9,"messages":[]}"#;
    let v: serde_json::Value =
        serde_json::from_slice(&rewrite_request(both, rename).unwrap().unwrap()).unwrap();
    assert_eq!(v["max_completion_tokens"], 9);
    assert_eq!(v["max_tokens"], 64);
}

#[test]
fn parses_the_fields_the_proxy_needs() {
    let body = br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":50,"extra":{"x":1}}"#;
    let view = ChatRequestView::parse(body).unwrap();
    assert_eq!(view.model, "gpt-4o-mini");
    assert!(view.is_stream());
    assert!(!view.wants_stream_usage());
    assert_eq!(view.output_cap(), Some(50));
    assert!(!view.has_tools() && !view.has_images() && !view.wants_json());
    let body = br#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}],"tools":[{"type":"function"}],"response_format":{"type":"json_object"}}"#;
    let view = ChatRequestView::parse(body).unwrap();
    assert!(view.has_tools() && view.has_images() && view.wants_json());
    let view = ChatRequestView::parse(br#"{"model":"m","messages":[{}],"tools":[ ]}"#).unwrap();
    assert!(!view.has_tools());
}

#[test]
fn rejects_bad_requests_with_a_named_parameter() {
    let cases: &[(&[u8], Option<&str>, &str)] = &[
        (b"{not json", None, "not valid JSON"),
        (
            br#"{"messages":[{"role":"user","content":"x"}]}"#,
            None,
            "missing field `model`",
        ),
        (
            br#"{"model":"","messages":[{"role":"user"}]}"#,
            Some("model"),
            "non-empty",
        ),
        (br#"{"model":"m","messages":{}}"#, Some("messages"), "array"),
        (
            br#"{"model":"m","messages":[ ]}"#,
            Some("messages"),
            "empty",
        ),
        (
            br#"{"model":"m","messages":[],"stream":"yes"}"#,
            None,
            "invalid",
        ),
    ];
    for (body, param, needle) in cases {
        let err = ChatRequestView::parse(body).unwrap_err();
        assert_eq!(err.param, *param, "{err:?}");
        assert!(
            err.message.contains(needle),
            "{} lacks {needle}",
            err.message
        );
    }
}

#[test]
fn stream_null_is_not_streaming() {
    let view = ChatRequestView::parse(br#"{"model":"m","messages":[{}],"stream":null}"#).unwrap();
    assert!(!view.is_stream());
}

#[test]
fn rewrites_model_and_stream_usage_keeping_the_rest() {
    let body = br#"{"model":"m","stream_options":{"other":1},"z":[1]}"#;
    assert_eq!(rewrite_request(body, Rewrite::default()).unwrap(), None);
    let out = rewrite_request(
        body,
        Rewrite {
            model: Some("served"),
            add_stream_usage: true,
            ..Rewrite::default()
        },
    )
    .unwrap()
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["model"], "served");
    assert_eq!(v["stream_options"]["include_usage"], true);
    assert_eq!(v["stream_options"]["other"], 1);
    assert_eq!(v["z"][0], 1);
}

#[test]
fn splices_stream_usage_without_reparsing() {
    let body = br#"  {"model":"m","stream":true,"messages":[{"role":"user","content":"say \"stream_options\""}]}"#;
    let out = rewrite_request(body, usage_only()).unwrap().unwrap();
    assert!(out.starts_with(br#"  {"stream_options":{"include_usage":true},"model""#));
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["stream_options"]["include_usage"], true);
    assert_eq!(v["messages"][0]["content"], "say \"stream_options\"");
    // An explicit `stream_options` (even null or false) takes the parsing path.
    for body in [
        &br#"{"model":"m","stream_options":null}"#[..],
        br#"{"model":"m","stream_options":{"include_usage":false}}"#,
    ] {
        let out = rewrite_request(body, usage_only()).unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(
            out.windows(16)
                .filter(|w| w == b"\"stream_options\"")
                .count(),
            1
        );
    }
}

#[test]
fn reads_usage_from_chunks() {
    let chunk: ChunkView<'_> = serde_json::from_str(
        r#"{"id":"x","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":4}}}"#,
    )
    .unwrap();
    assert!(chunk.is_usage_only());
    assert_eq!(chunk.usage.unwrap().cached_tokens(), 4);
    let chunk: ChunkView<'_> = serde_json::from_str(
        r#"{"choices":[{"index":0,"delta":{"content":"hello"}}],"usage":null}"#,
    )
    .unwrap();
    assert!(!chunk.is_usage_only());
    // The text of the content is counted, not its JSON quotes.
    let mut counted = crate::wire::estimate::TextTokens::default();
    chunk.count_content(&mut counted);
    assert_eq!(
        counted.tokens(),
        crate::wire::estimate::text_tokens("hello")
    );
}

#[test]
fn error_body_has_the_openai_shape() {
    let body = ErrorBody::new("nope", "invalid_request_error", Some("bad"), None).to_json();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["message"], "nope");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["code"], "bad");
    assert!(v["error"]["param"].is_null());
}

#[test]
fn bodies_the_quick_pass_leaves_to_serde_json_are_counted_for_depth() {
    let body = |levels: usize| {
        format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"metadata":{}1{}}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        )
    };
    // Past the quick pass's own limit but within serde_json's: read.
    assert!(ChatRequestView::parse(body(110).as_bytes()).is_ok());
    let deep = ChatRequestView::parse(body(200).as_bytes()).unwrap_err();
    assert!(
        deep.message.contains("nested more than"),
        "{}",
        deep.message
    );
    assert_eq!(deep, RequestError::too_deep());
}
