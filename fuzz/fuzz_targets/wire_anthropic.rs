//! The Anthropic wire types on client and provider bytes: requests, responses, stream events and
//! error bodies. A parsed request serializes back to a request that parses the same. The view
//! routing reads (its quick pass) is the one serde_json reads, and its newest turn is read
//! without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartproxy::wire::anthropic::{ErrorBody, MessagesRequest, MessagesResponse, StreamEvent};
use smartproxy::wire::anthropic_view::MessagesView;

fuzz_target!(|data: &[u8]| {
    let by_serde = serde_json::from_slice::<MessagesView<'_>>(data);
    match (MessagesView::parse(data), &by_serde) {
        (Ok(view), Ok(serde)) => assert_eq!(format!("{view:?}"), format!("{serde:?}")),
        (Ok(view), Err(e)) => panic!("the view took a body serde_json refuses ({e}): {view:?}"),
        _ => {}
    }
    if let Ok(view) = MessagesView::parse(data) {
        let _ = (view.is_stream(), view.has_tools(), view.has_images());
        let _ = view.prompt_bytes();
        let hasher =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
        let _ = smartproxy::wire::turn::of_anthropic(view.messages.get(), &hasher);
    }
    if let Ok(request) = serde_json::from_slice::<MessagesRequest>(data) {
        for message in &request.messages {
            if let smartproxy::wire::anthropic::Content::Blocks(blocks) = &message.content {
                for block in blocks {
                    let _ = block.kind();
                }
            }
        }
        for tool in request.tools.iter().flatten() {
            let _ = tool.server_type();
        }
        if let Some(choice) = &request.tool_choice {
            let _ = choice.disables_parallel_tool_use();
        }
        let out = match serde_json::to_vec(&request) {
            Ok(out) => out,
            Err(e) => panic!("a parsed request does not serialize: {e}"),
        };
        match serde_json::from_slice::<MessagesRequest>(&out) {
            Ok(again) => assert_eq!(
                serde_json::to_value(&again).ok(),
                serde_json::to_value(&request).ok(),
                "the request changed through a round trip"
            ),
            Err(e) => panic!(
                "a serialized request does not parse ({e}): {}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    if let Ok(response) = serde_json::from_slice::<MessagesResponse>(data) {
        let _ = serde_json::to_vec(&response);
    }
    if let Ok(event) = serde_json::from_slice::<StreamEvent>(data) {
        let _ = event.name();
        let _ = serde_json::to_vec(&event);
    }
    if let Ok(error) = serde_json::from_slice::<ErrorBody>(data) {
        let _ = error.to_json();
    }
    if let Some(&b) = data.first() {
        let _ = smartproxy::wire::anthropic::error_type_for_status(u16::from(b) * 3);
    }
});
