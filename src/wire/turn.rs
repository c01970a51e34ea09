//! The newest turn of a conversation, reduced to a 64-bit signature for the loop breaker
//! (`proxy::loop_breaker`). Only the newest turn counts, never the whole prompt: a stuck agent
//! resends a growing history (and rewords its system prompt) around the same step.
//!
//! The newest turn is what follows the last assistant message, with that message's tool calls:
//! - the tool calls' names and arguments,
//! - the tool results: their first [`RESULT_PREFIX`] bytes (and an Anthropic result's error
//!   flag),
//! - any user message after them, whole.
//!
//! A request with no assistant message yet is its own turn. The messages are found newest first
//! (`wire::skim_back`), so reading a turn costs what the turn weighs, not the whole history.
//! Nothing here keeps text: the parts are fed to a hasher the caller picks (keyed per process,
//! so a hash on a ledger row cannot be checked against guesses elsewhere). Pure: no I/O.

use std::borrow::Cow;
use std::hash::{BuildHasher, Hasher};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::skim_back::newest_first;

/// How much of each tool result counts: enough to tell one error or output from another,
/// little enough that a long output's changing tail (a build's progress) is not what matters.
pub const RESULT_PREFIX: usize = 512;

/// Tool names longer than this are cut in messages.
const NAME_CAP: usize = 64;

/// The newest turn's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub hash: u64,
    /// The first tool call's name when the turn is a tool call's (its result follows).
    pub tool: Option<String>,
}

impl Turn {
    /// What repeated, in words: "tool call `read_file`" or "user message".
    pub fn describe(&self) -> String {
        match &self.tool {
            Some(name) => format!("tool call `{name}`"),
            None => "user message".to_owned(),
        }
    }

    /// The hash as the 8 hex digits messages and the ledger show.
    pub fn short(&self) -> String {
        format!("{:08x}", self.hash >> 32)
    }
}

#[derive(Deserialize)]
struct ChatMessage<'a> {
    #[serde(default, borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ChatToolCall<'a>>>,
}

#[derive(Deserialize)]
struct ChatToolCall<'a> {
    #[serde(default, borrow)]
    function: Option<ChatFunction<'a>>,
}

#[derive(Deserialize)]
struct ChatFunction<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<&'a RawValue>,
}

/// The newest turn of an OpenAI chat `messages` array (Ollama requests are read in their chat
/// translation). `None` when it is not an array of messages.
pub fn of_chat(messages: &str, hasher: &impl BuildHasher) -> Option<Turn> {
    let mut h = hasher.build_hasher();
    let mut tool = None;
    let mut any = false;
    // Backwards to the last assistant message: what follows it is the turn. `tail`: the
    // messages after this one.
    for (tail, item) in newest_first(messages).enumerate() {
        any = true;
        let message: ChatMessage<'_> = serde_json::from_str(item.ok()?).ok()?;
        let role = message.role.as_deref().unwrap_or("");
        if role == "assistant" {
            for call in message.tool_calls.iter().flatten() {
                let Some(function) = &call.function else {
                    continue;
                };
                let name = function.name.as_deref().unwrap_or("");
                tool.get_or_insert_with(|| cap(name));
                part(&mut h, b'c', name.as_bytes());
                part(
                    &mut h,
                    b'a',
                    function.arguments.map_or("", |a| a.get()).as_bytes(),
                );
            }
            if tail == 0 {
                // A prefilled assistant reply is the newest turn itself.
                part(&mut h, b'p', content(&message).as_bytes());
            }
            break;
        }
        let text = content(&message);
        if matches!(role, "tool" | "function") {
            part(&mut h, b'r', prefix(text, RESULT_PREFIX));
        } else {
            part(&mut h, b'u', text.as_bytes());
        }
    }
    if !any {
        return None;
    }
    Some(Turn {
        hash: h.finish(),
        tool,
    })
}

fn content<'a>(message: &ChatMessage<'a>) -> &'a str {
    message.content.map_or("", |c| c.get())
}

#[derive(Deserialize)]
struct ResponsesItem<'a> {
    #[serde(default, borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<&'a RawValue>,
    #[serde(default, borrow)]
    input: Option<&'a RawValue>,
    #[serde(default, borrow)]
    output: Option<&'a RawValue>,
}

/// The newest turn of a Responses API `input` (a string, or a list of items): trailing tool
/// outputs and user messages, and the function calls just before them.
pub fn of_responses(input: &str, hasher: &impl BuildHasher) -> Option<Turn> {
    let mut h = hasher.build_hasher();
    if input.trim_start().starts_with('"') {
        part(&mut h, b'u', input.as_bytes());
        return Some(Turn {
            hash: h.finish(),
            tool: None,
        });
    }
    let mut tool = None;
    let mut in_calls = false;
    let mut tail = 0usize;
    let mut any = false;
    for item in newest_first(input) {
        any = true;
        let item: ResponsesItem<'_> = serde_json::from_str(item.ok()?).ok()?;
        let kind = item.kind.as_deref().unwrap_or("message");
        let call = kind.ends_with("_call") && item.name.is_some() || kind == "function_call";
        let assistant = kind == "message" && item.role.as_deref() == Some("assistant");
        if call {
            in_calls = true;
            let name = item.name.as_deref().unwrap_or("");
            // The first call of the turn, read backwards: keep overwriting.
            tool = Some(cap(name));
            part(&mut h, b'c', name.as_bytes());
            let args = item.arguments.or(item.input).map_or("", |a| a.get());
            part(&mut h, b'a', args.as_bytes());
            continue;
        }
        if in_calls || assistant {
            if assistant && tail == 0 {
                part(
                    &mut h,
                    b'p',
                    item.content.map_or("", |c| c.get()).as_bytes(),
                );
            }
            break;
        }
        if kind == "reasoning" {
            continue;
        }
        tail += 1;
        if kind.ends_with("_output") {
            let output = item.output.map_or("", |o| o.get());
            part(&mut h, b'r', prefix(output, RESULT_PREFIX));
        } else {
            part(
                &mut h,
                b'u',
                item.content.map_or("", |c| c.get()).as_bytes(),
            );
        }
    }
    if !any {
        return None;
    }
    Some(Turn {
        hash: h.finish(),
        tool,
    })
}

#[derive(Deserialize)]
struct AnthropicMessage<'a> {
    #[serde(default, borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct AnthropicBlock<'a> {
    #[serde(default, borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<&'a RawValue>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    input: Option<&'a RawValue>,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default)]
    is_error: Option<bool>,
    #[serde(default, borrow)]
    source: Option<&'a RawValue>,
}

/// The newest turn of an Anthropic Messages `messages` array, read as it came (the request may
/// never be translated): the last assistant message's `tool_use` blocks and what follows it
/// (`tool_result` blocks, with their error flag, and the user's text). Blocks are read by their
/// text, never whole: `cache_control` marks move from turn to turn.
pub fn of_anthropic(messages: &str, hasher: &impl BuildHasher) -> Option<Turn> {
    let mut h = hasher.build_hasher();
    let mut tool = None;
    let mut any = false;
    // `tail`: the messages after this one.
    for (tail, item) in newest_first(messages).enumerate() {
        any = true;
        let message: AnthropicMessage<'_> = serde_json::from_str(item.ok()?).ok()?;
        let content = message.content.map_or("", RawValue::get);
        let blocks: Vec<AnthropicBlock<'_>> = if content.trim_start().starts_with('[') {
            serde_json::from_str(content).ok()?
        } else {
            Vec::new()
        };
        if message.role.as_deref() == Some("assistant") {
            for block in blocks
                .iter()
                .filter(|b| b.kind.as_deref() == Some("tool_use"))
            {
                let name = block.name.as_deref().unwrap_or("");
                tool.get_or_insert_with(|| cap(name));
                part(&mut h, b'c', name.as_bytes());
                part(
                    &mut h,
                    b'a',
                    block.input.map_or("", RawValue::get).as_bytes(),
                );
            }
            if tail == 0 {
                part(&mut h, b'p', content.as_bytes());
            }
            break;
        }
        if blocks.is_empty() {
            part(&mut h, b'u', content.as_bytes());
        }
        for block in &blocks {
            if block.kind.as_deref() == Some("tool_result") {
                let tag = if block.is_error == Some(true) {
                    b'e'
                } else {
                    b'r'
                };
                let result = block.content.map_or("", RawValue::get);
                part(&mut h, tag, prefix(result, RESULT_PREFIX));
            } else {
                let text = block.text.or(block.source).or(block.content);
                part(&mut h, b'u', text.map_or("", RawValue::get).as_bytes());
            }
        }
    }
    if !any {
        return None;
    }
    Some(Turn {
        hash: h.finish(),
        tool,
    })
}

/// One part, tagged and length-prefixed so that parts cannot run into each other.
fn part(h: &mut impl Hasher, tag: u8, bytes: &[u8]) {
    h.write_u8(tag);
    h.write_usize(bytes.len());
    h.write(bytes);
}

fn prefix(text: &str, max: usize) -> &[u8] {
    let bytes = text.as_bytes();
    &bytes[..bytes.len().min(max)]
}

fn cap(name: &str) -> String {
    name.chars().take(NAME_CAP).collect()
}

#[cfg(test)]
#[path = "turn_tests.rs"]
mod tests;
