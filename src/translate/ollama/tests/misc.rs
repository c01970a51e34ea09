//! Error bodies, model listings and the NDJSON line decoder.

use serde_json::json;

use super::{CREATED_AT, check_snapshot, fixture_dir, parse};
use crate::translate::ollama::{
    LineDecoder, error_from_ollama, error_to_ollama, show_for_model, tags_from_models,
};

#[test]
fn provider_errors_reach_ollama_clients_as_plain_messages() {
    let cases: &[(u16, &[u8], &str)] = &[
        (
            429,
            br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
            "Rate limit reached",
        ),
        (400, br#"{"error":"bad model"}"#, "bad model"),
        (400, br#"{"message":"top-level message"}"#, "top-level message"),
        (502, b"<html>Bad Gateway</html>", "provider returned HTTP 502: <html>Bad Gateway</html>"),
        (503, b"", "provider returned HTTP 503 with an empty body"),
        (500, br#"{"detail":"x"}"#, r#"provider returned HTTP 500: {"detail":"x"}"#),
    ];
    for (status, body, message) in cases {
        let out = parse(&error_to_ollama(*status, body));
        assert_eq!(out, json!({"error": message}), "status {status}");
    }
    let long = vec![b'x'; 2000];
    let out = parse(&error_to_ollama(500, &long));
    assert!(out["error"].as_str().unwrap().ends_with("xxx..."));
}

#[test]
fn ollama_errors_reach_openai_clients_in_openai_shape() {
    // (status, Ollama body, message, OpenAI type, OpenAI code)
    type Case = (
        u16,
        &'static [u8],
        &'static str,
        &'static str,
        Option<&'static str>,
    );
    let cases: &[Case] = &[
        (
            404,
            br#"{"error":"model \"llama9\" not found, try pulling it first"}"#,
            "model \"llama9\" not found, try pulling it first",
            "invalid_request_error",
            Some("model_not_found"),
        ),
        (
            400,
            br#"{"error":"invalid options"}"#,
            "invalid options",
            "invalid_request_error",
            None,
        ),
        (
            401,
            br#"{"error":"unauthorized"}"#,
            "unauthorized",
            "authentication_error",
            None,
        ),
        (
            403,
            br#"{"error":"forbidden"}"#,
            "forbidden",
            "permission_error",
            None,
        ),
        (
            429,
            br#"{"error":"busy"}"#,
            "busy",
            "rate_limit_error",
            None,
        ),
        (
            500,
            b"llama runner crashed",
            "provider returned HTTP 500: llama runner crashed",
            "server_error",
            None,
        ),
    ];
    for (status, body, message, kind, code) in cases {
        let out = parse(&error_from_ollama(*status, body));
        assert_eq!(
            out,
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
            "status {status}"
        );
    }
}

#[test]
fn tags_and_show_describe_routed_models() {
    let models = vec![
        ("gpt-4o-mini".to_owned(), "openai".to_owned()),
        ("llama3.2:3b".to_owned(), "local".to_owned()),
    ];
    let dir = fixture_dir("models");
    let tags = parse(&tags_from_models(&models, CREATED_AT));
    check_snapshot(&dir.join("tags.out.json"), &tags).unwrap();
    let digests: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_ne!(digests[0], digests[1]);
    assert!(digests.iter().all(|d| d.len() == 64));
    let show = parse(&show_for_model("gpt-4o-mini", "openai", Some(128_000)));
    check_snapshot(&dir.join("show.out.json"), &show).unwrap();
    let unknown = parse(&show_for_model("m", "p", None));
    assert!(unknown["model_info"].get("p.context_length").is_none());
    assert_eq!(tags_from_models(&[], CREATED_AT), br#"{"models":[]}"#);
}

fn lines_of(pieces: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut decoder = LineDecoder::new();
    let mut out = Vec::new();
    for piece in pieces {
        decoder.push(piece);
        while let Some(line) = decoder.next_line() {
            out.push(line.to_vec());
        }
    }
    out.extend(decoder.finish().map(|l| l.to_vec()));
    assert!(decoder.finish().is_none());
    assert_eq!(decoder.buffered(), 0);
    out
}

#[test]
fn line_decoder_splits_lines_whatever_the_chunking() {
    let stream: &[u8] = b"{\"a\":1}\n\n{\"b\":2}\r\n  \n{\"c\":3}";
    let whole = lines_of(&[stream]);
    let expected: Vec<Vec<u8>> = vec![
        b"{\"a\":1}".to_vec(),
        b"{\"b\":2}".to_vec(),
        b"{\"c\":3}".to_vec(),
    ];
    assert_eq!(whole, expected);
    for split in 1..stream.len() {
        let (a, b) = stream.split_at(split);
        assert_eq!(lines_of(&[a, b]), expected, "split at {split}");
    }
    let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(lines_of(&bytewise), expected);
    assert!(lines_of(&[b"\n\n  \r\n"]).is_empty());
}

#[test]
fn line_decoder_holds_a_partial_line() {
    let mut decoder = LineDecoder::new();
    decoder.push(b"{\"partial\":");
    assert!(decoder.next_line().is_none());
    assert_eq!(decoder.buffered(), 11);
    decoder.push(b"true}\n{\"next\"");
    assert_eq!(decoder.next_line().unwrap().as_ref(), b"{\"partial\":true}");
    assert!(decoder.next_line().is_none());
    assert_eq!(decoder.finish().unwrap().as_ref(), b"{\"next\"");
}
