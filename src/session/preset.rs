//! Which preset a `run` command implies when `--preset` is not given: its program's own, so
//! that `smartproxy run -- codex` works as `smartproxy run --preset codex -- codex` does
//! (Codex reads no base URL from the environment; without its preset's arguments it goes to
//! OpenAI and loops on reconnecting). Pure: names in, a name out.

/// Presets never implied by a program's name: an interpreter runs anything, so its preset is
/// for the shims (`smartproxy shim install python`), which name it.
const NEVER_IMPLIED: &[&str] = &["python"];

/// The preset named like `program` (a path's file name, as typed), among `presets`.
pub fn implied<'a>(program: &str, mut presets: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    if NEVER_IMPLIED.contains(&program) {
        return None;
    }
    presets.find(|name| *name == program)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_program_implies_its_preset() {
        let presets = ["aider", "claude", "codex", "llm", "mytool", "python"];
        let implied = |program| implied(program, presets.iter().copied());
        assert_eq!(implied("codex"), Some("codex"));
        assert_eq!(implied("claude"), Some("claude"));
        assert_eq!(implied("mytool"), Some("mytool"));
        assert_eq!(implied("python"), None);
        assert_eq!(implied("bash"), None);
        assert_eq!(implied("codex-dev"), None);
    }
}
