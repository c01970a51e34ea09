//! Serde types and codecs for the protocols smartproxy speaks. Pure: no I/O, no clock.

pub mod anthropic;
pub mod ollama;
pub mod openai;
pub mod sse;

/// A rough token count for text or JSON of `bytes` bytes: about four bytes a token, the usual
/// rule of thumb for English text and code. Used only when a provider reports no usage, and for
/// budget reservations, and always marked as an estimate.
pub fn estimate_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}
