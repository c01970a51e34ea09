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
