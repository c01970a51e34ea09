//! `/api/tags` and `/api/show` answers describing the models the proxy routes, so Ollama clients
//! that list or probe models before chatting find them. Nothing here is a real file on disk:
//! sizes are 0 and digests are stable hashes of the name, not of content.

use serde_json::{Map, Value, json};

use super::to_json;
use crate::wire::ollama::{ModelDetails, ModelEntry, ShowResponse, TagsResponse};

/// The `/api/tags` JSON for `(model name, provider name)` pairs, each reported as modified at
/// `modified_at` (RFC 3339).
pub fn tags_from_models(models: &[(String, String)], modified_at: &str) -> Vec<u8> {
    let models = models
        .iter()
        .map(|(model, provider)| ModelEntry {
            name: model.clone(),
            model: model.clone(),
            modified_at: modified_at.to_owned(),
            size: 0,
            digest: digest(model, provider),
            details: details(provider),
        })
        .collect();
    to_json(&TagsResponse { models })
}

/// The `/api/show` JSON for `model` served by `provider`: enough for clients that probe it for
/// the context length (`<architecture>.context_length` in `model_info`) and for capabilities.
/// Tool support is claimed because the proxy cannot know and agents refuse models without it.
pub fn show_for_model(model: &str, provider: &str, context_window: Option<u32>) -> Vec<u8> {
    let mut model_info = Map::new();
    model_info.insert("general.architecture".to_owned(), json!(provider));
    model_info.insert("general.basename".to_owned(), json!(model));
    if let Some(window) = context_window {
        model_info.insert(format!("{provider}.context_length"), Value::from(window));
    }
    let show = ShowResponse {
        modelfile: format!(
            "# {model} is served by smartproxy through provider {provider}.\nFROM {model}\n"
        ),
        parameters: String::new(),
        template: "{{ .Prompt }}".to_owned(),
        details: details(provider),
        model_info,
        capabilities: vec!["completion".to_owned(), "tools".to_owned()],
    };
    to_json(&show)
}

fn details(provider: &str) -> ModelDetails {
    ModelDetails {
        parent_model: String::new(),
        format: String::new(),
        family: provider.to_owned(),
        families: vec![provider.to_owned()],
        parameter_size: String::new(),
        quantization_level: String::new(),
    }
}

/// 64 hex digits like a sha256 digest: four FNV-1a hashes of the names with different seeds.
/// Clients use digests as keys and to notice changes, so they must be stable and distinct.
fn digest(model: &str, provider: &str) -> String {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut out = String::with_capacity(64);
    for seed in 0u64..4 {
        let mut hash = 0xcbf2_9ce4_8422_2325_u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for byte in provider.bytes().chain([0]).chain(model.bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
        out.push_str(&format!("{hash:016x}"));
    }
    out
}
