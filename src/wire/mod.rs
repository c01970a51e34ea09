//! Serde types and codecs for the protocols smartproxy speaks. Pure: no I/O, no clock.

pub mod anthropic;
pub mod anthropic_view;
pub mod depth;
pub mod estimate;
pub mod ollama;
pub mod openai;
mod openai_rewrite;
pub mod reply_check;
pub mod skim;
pub mod skim_back;
pub mod sse;
pub mod turn;
