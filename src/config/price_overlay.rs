//! The price overlay's file in the data dir (`smartproxy prices update` writes it, the proxy
//! and `prices`/`doctor` read it). `pricing` is pure, so its file I/O and the install date
//! (the clock) live here, as methods of [`Overlay`] so callers read `Overlay::load(path)`.

use std::path::{Path, PathBuf};

use crate::pricing::{Overlay, OverlayError};

impl Overlay {
    /// Reads an overlay stored by [`Self::store`]; `Ok(None)` when there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, OverlayError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(OverlayError::Read {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        Self::from_stored(&text, &path.display().to_string()).map(Some)
    }

    /// Writes the overlay to `path`, dated now, atomically: a temp file beside it, then a
    /// rename, so the proxy never reads half a file.
    pub fn store(&self, path: &Path) -> Result<(), OverlayError> {
        let write_error = |source| OverlayError::Write {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write_error)?;
        }
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, self.stored_json(&now))
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                write_error(e)
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn stores_dated_and_loads_back() {
        let text = r#"{"my-new-model": {"litellm_provider": "openai", "mode": "chat",
            "input_cost_per_token": 1e-6, "output_cost_per_token": 4e-6}}"#;
        let overlay = Overlay::from_litellm(text, "prices.json").unwrap();
        assert!(overlay.installed.is_empty());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/prices-overlay.json");
        overlay.store(&path).unwrap();
        let loaded = Overlay::load(&path).unwrap().unwrap();
        assert_eq!(loaded.entries(), overlay.entries());
        assert_eq!(loaded.origin, "prices.json");
        assert!(
            chrono::DateTime::parse_from_rfc3339(&loaded.installed).is_ok(),
            "{:?}",
            loaded.installed
        );
        assert!(
            Overlay::load(&dir.path().join("none.json"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_broken_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices-overlay.json");
        std::fs::write(&path, "{").unwrap();
        let err = Overlay::load(&path).unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
    }
}
