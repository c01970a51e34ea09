//! Tests for the Ollama translators.
