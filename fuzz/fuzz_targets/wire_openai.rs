//! The OpenAI wire readers on client and provider bytes: request views (the chat view's quick
//! pass, and arrays read newest first, against serde_json's), response, chunk and usage views, the token estimates over them,
//! and the request rewrite (whose output must still be the same JSON request).
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use smartproxy::wire::estimate::{TextTokens, json_text_tokens, text_tokens};
use smartproxy::wire::openai::{
    ChatRequestView, ChunkView, CompletionsView, ResponseView, Rewrite, UsageView, rewrite_request,
};
use smartproxy::wire::{skim, skim_back};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    // The quick pass over an object's members takes only what serde_json takes, and the chat
    // view it gives is the one serde_json gives.
    // (Raw values, not `Value`: serde_json skips a number too large for an f64 as the views do,
    // but refuses to build a `Value` of it.)
    if let Some(members) = skim::members(body) {
        let parsed: BTreeMap<String, &RawValue> = serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("skim took a body serde_json refuses ({e})"));
        for (key, text) in &members {
            if members.iter().filter(|(k, _)| k == key).count() == 1 {
                assert_eq!(parsed.get(*key).map(|v| v.get()), Some(*text), "{key:?}");
            }
        }
    }
    // An array serde_json takes reads the same newest first (`skim_back`, which is only ever
    // given checked arrays).
    if let Ok(parsed) = serde_json::from_slice::<Vec<&RawValue>>(body)
        && let Ok(text) = std::str::from_utf8(body)
    {
        let mut back: Vec<&str> = skim_back::newest_first(text)
            .collect::<Result<_, _>>()
            .unwrap_or_else(|_| panic!("skim_back refused an array serde_json takes"));
        back.reverse();
        let parsed: Vec<&str> = parsed.iter().map(|v| v.get()).collect();
        assert_eq!(back, parsed);
    }
    let by_serde = serde_json::from_slice::<ChatRequestView<'_>>(body);
    match (ChatRequestView::parse(body), &by_serde) {
        (Ok(view), Ok(serde)) => assert_eq!(format!("{view:?}"), format!("{serde:?}")),
        (Ok(view), Err(e)) => panic!("the view took a body serde_json refuses ({e}): {view:?}"),
        _ => {}
    }
    if let Ok(view) = ChatRequestView::parse(body) {
        let _ = (
            view.is_stream(),
            view.wants_stream_usage(),
            view.has_tools(),
        );
        let _ = (view.has_images(), view.wants_json(), view.output_cap());
    }
    if let Ok(view) = CompletionsView::parse(body) {
        let _ = view.max_tokens;
    }
    if let Ok(view) = serde_json::from_slice::<ResponseView>(body) {
        let _ = view.content_tokens();
        if let Some(usage) = &view.usage {
            let _ = usage.cached_tokens();
        }
    }
    if let Ok(view) = serde_json::from_slice::<ChunkView<'_>>(body) {
        let mut counted = TextTokens::default();
        view.count_content(&mut counted);
        let _ = (view.is_usage_only(), counted.tokens());
    }
    // The estimates scan any text, JSON or not, and a stream's pieces count as the whole.
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = json_text_tokens(text);
        let mut pieces = TextTokens::default();
        pieces.push_json(text);
        let whole = text_tokens(text);
        let mut streamed = TextTokens::default();
        let split = text
            .char_indices()
            .nth(usize::from(flags) % 8)
            .map_or(0, |(i, _)| i);
        streamed.push(&text[..split]);
        streamed.push(&text[split..]);
        assert_eq!(
            streamed.tokens(),
            whole,
            "a split changed the estimate of {text:?}"
        );
    }
    let _ = serde_json::from_slice::<UsageView>(body);

    let rewrite = Rewrite {
        model: (flags & 1 != 0).then_some("fuzz-model"),
        add_stream_usage: flags & 2 != 0,
        max_completion_tokens: flags & 4 != 0,
        output_cap: (flags & 8 != 0).then_some(("max_tokens", 7)),
    };
    if let Ok(Some(out)) = rewrite_request(body, rewrite) {
        // A rewritten body that was an object is still one, with what was asked for.
        if let Ok(serde_json::Value::Object(_)) = serde_json::from_slice(body) {
            let value: serde_json::Value = match serde_json::from_slice(&out) {
                Ok(v) => v,
                Err(e) => panic!(
                    "rewrite broke the JSON ({e}): {:?}",
                    String::from_utf8_lossy(&out)
                ),
            };
            if rewrite.add_stream_usage {
                assert_eq!(value["stream_options"]["include_usage"], true);
            }
            if let Some(model) = rewrite.model {
                assert_eq!(value["model"], model);
            }
            if rewrite.output_cap.is_some() {
                // Every cap the rewritten body has is the lowered one.
                for cap in ["max_tokens", "max_completion_tokens", "max_output_tokens"] {
                    if let Some(found) = value.get(cap) {
                        assert_eq!(found, 7, "{value}");
                    }
                }
            }
        }
    }
});
