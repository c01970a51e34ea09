use std::hash::BuildHasherDefault;

use super::*;

type Fixed = BuildHasherDefault<std::collections::hash_map::DefaultHasher>;

fn chat(messages: &str) -> Turn {
    of_chat(messages, &Fixed::default()).unwrap_or_else(|| panic!("no turn in {messages}"))
}

fn responses(input: &str) -> Turn {
    of_responses(input, &Fixed::default()).unwrap_or_else(|| panic!("no turn in {input}"))
}

fn tool_turn(history: &str, args: &str, result: &str) -> String {
    format!(
        r#"[{{"role":"system","content":"{history}"}},{{"role":"user","content":"fix it"}},
        {{"role":"assistant","content":null,"tool_calls":[{{"id":"c1","type":"function",
        "function":{{"name":"read_file","arguments":"{args}"}}}}]}},
        {{"role":"tool","tool_call_id":"c1","content":"{result}"}}]"#
    )
}

#[test]
fn only_the_newest_turn_counts_not_the_history() {
    let a = chat(&tool_turn(
        "you are helpful",
        "{\\\"path\\\":\\\"a\\\"}",
        "Error: no such file",
    ));
    let b = chat(&tool_turn(
        "reworded prompt",
        "{\\\"path\\\":\\\"a\\\"}",
        "Error: no such file",
    ));
    assert_eq!(a, b, "a reworded history is the same step");
    assert_eq!(a.tool.as_deref(), Some("read_file"));
    assert_eq!(a.describe(), "tool call `read_file`");
    assert_eq!(a.short().len(), 8);
}

#[test]
fn arguments_and_results_tell_turns_apart() {
    let base = chat(&tool_turn(
        "s",
        "{\\\"path\\\":\\\"a\\\"}",
        "Error: no such file",
    ));
    let other_args = chat(&tool_turn(
        "s",
        "{\\\"path\\\":\\\"b\\\"}",
        "Error: no such file",
    ));
    let other_result = chat(&tool_turn(
        "s",
        "{\\\"path\\\":\\\"a\\\"}",
        "Build 41% done",
    ));
    assert_ne!(base.hash, other_args.hash);
    assert_ne!(base.hash, other_result.hash);
    // Past the prefix a result's tail does not count.
    let long = "x".repeat(RESULT_PREFIX);
    let tail_a = chat(&tool_turn("s", "{}", &format!("{long}1")));
    let tail_b = chat(&tool_turn("s", "{}", &format!("{long}2")));
    assert_eq!(tail_a, tail_b);
}

#[test]
fn a_user_message_is_its_own_turn() {
    let first = chat(r#"[{"role":"user","content":"hello"}]"#);
    assert_eq!(first.tool, None);
    assert_eq!(first.describe(), "user message");
    let later = chat(
        r#"[{"role":"user","content":"x"},{"role":"assistant","content":"y"},
        {"role":"user","content":"hello"}]"#,
    );
    assert_eq!(first.hash, later.hash, "the same newest message");
    let other = chat(r#"[{"role":"user","content":"hello!"}]"#);
    assert_ne!(first.hash, other.hash);
    assert!(of_chat("{}", &Fixed::default()).is_none());
    assert!(of_chat("[]", &Fixed::default()).is_none());
}

#[test]
fn responses_inputs_read_like_chat() {
    let turn = |output: &str| {
        responses(&format!(
            r#"[{{"role":"user","content":"go"}},{{"type":"reasoning","summary":[]}},
            {{"type":"function_call","call_id":"c","name":"shell","arguments":"{{}}"}},
            {{"type":"function_call_output","call_id":"c","output":"{output}"}}]"#
        ))
    };
    let a = turn("exit 1");
    assert_eq!(a.tool.as_deref(), Some("shell"));
    assert_eq!(a, turn("exit 1"));
    assert_ne!(a.hash, turn("exit 0").hash);
    let text = responses(r#""hello""#);
    assert_eq!(text.describe(), "user message");
    assert_ne!(text.hash, responses(r#""hello!""#).hash);
}

fn anthropic(messages: &str) -> Turn {
    of_anthropic(messages, &Fixed::default()).unwrap_or_else(|| panic!("no turn in {messages}"))
}

/// Claude Code's shape: the newest message carries the tool result, a reminder and the prompt
/// cache's breakpoint, which moves to the newest message every turn.
fn anthropic_turn(history: &str, input: &str, result: &str, is_error: bool) -> String {
    format!(
        r#"[{{"role":"user","content":[{{"type":"text","text":"{history}","cache_control":{{"type":"ephemeral"}}}}]}},
        {{"role":"assistant","content":[{{"type":"text","text":"Reading."}},
        {{"type":"tool_use","id":"toolu_1","name":"Read","input":{input}}}]}},
        {{"role":"user","content":[{{"type":"tool_result","tool_use_id":"toolu_1","is_error":{is_error},
        "content":"{result}","cache_control":{{"type":"ephemeral"}}}},{{"type":"text","text":"<reminder>"}}]}}]"#
    )
}

#[test]
fn anthropic_messages_are_read_as_they_came() {
    let a = anthropic(&anthropic_turn(
        "fix it",
        r#"{"path":"a"}"#,
        "no such file",
        true,
    ));
    assert_eq!(a.tool.as_deref(), Some("Read"));
    assert_eq!(
        a,
        anthropic(&anthropic_turn(
            "reworded",
            r#"{"path":"a"}"#,
            "no such file",
            true
        )),
        "a reworded history is the same step"
    );
    let other_input = anthropic(&anthropic_turn(
        "fix it",
        r#"{"path":"b"}"#,
        "no such file",
        true,
    ));
    let other_result = anthropic(&anthropic_turn("fix it", r#"{"path":"a"}"#, "ok", true));
    let not_an_error = anthropic(&anthropic_turn(
        "fix it",
        r#"{"path":"a"}"#,
        "no such file",
        false,
    ));
    assert_ne!(a.hash, other_input.hash);
    assert_ne!(a.hash, other_result.hash);
    assert_ne!(a.hash, not_an_error.hash, "the error flag counts");
    let long = "x".repeat(RESULT_PREFIX);
    assert_eq!(
        anthropic(&anthropic_turn("s", "{}", &format!("{long}1"), false)),
        anthropic(&anthropic_turn("s", "{}", &format!("{long}2"), false)),
        "past the prefix a result's tail does not count"
    );

    let first = anthropic(r#"[{"role":"user","content":"hello"}]"#);
    assert_eq!(first.describe(), "user message");
    let as_block = anthropic(
        r#"[{"role":"user","content":"x"},{"role":"assistant","content":"y"},
        {"role":"user","content":[{"type":"text","text":"hello","cache_control":{"type":"ephemeral"}}]}]"#,
    );
    assert_eq!(as_block.tool, None);
    assert_eq!(
        as_block.hash,
        anthropic(r#"[{"role":"user","content":[{"type":"text","text":"hello"}]}]"#).hash,
        "a block's breakpoint is not its text"
    );
    assert!(of_anthropic("[]", &Fixed::default()).is_none());
    assert!(of_anthropic(r#"{"role":"user"}"#, &Fixed::default()).is_none());
}
