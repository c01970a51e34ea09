//! Pure conversions between wire formats, streaming state machines included. OpenAI Chat
//! Completions is the hub: every other format is translated to and from it.

pub mod anthropic;
pub mod ollama;
pub mod responses;
