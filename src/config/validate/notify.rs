//! Validation of `notify:`: `desktop`, `off`, or `{desktop: BOOL, webhook: URL or [URL]}`.

use super::Validator;
use crate::config::NotifyConfig;
use crate::config::raw::{RawConfig, RawNotify, RawUrls};

impl Validator<'_> {
    pub(super) fn notify(&mut self, raw: &RawConfig) -> NotifyConfig {
        let Some(notify) = &raw.notify else {
            return NotifyConfig::default();
        };
        let detailed = match notify {
            RawNotify::Word(word) => {
                return match word.trim() {
                    "desktop" => NotifyConfig {
                        desktop: true,
                        webhooks: Vec::new(),
                    },
                    "off" | "none" => NotifyConfig::default(),
                    other => {
                        self.error(
                            "notify",
                            format!(
                                "`{other}` is not `desktop` or `off`; for a webhook write `notify: {{webhook: https://...}}`"
                            ),
                        );
                        NotifyConfig::default()
                    }
                };
            }
            RawNotify::Detailed(detailed) => detailed,
        };
        let urls: Vec<String> = match &detailed.webhook {
            None => Vec::new(),
            Some(RawUrls::One(url)) => vec![url.trim().to_owned()],
            Some(RawUrls::Many(urls)) => urls.iter().map(|u| u.trim().to_owned()).collect(),
        };
        let mut webhooks = Vec::new();
        for url in urls {
            let host = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"));
            if host.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/')) {
                webhooks.push(url);
            } else {
                self.error(
                    "notify.webhook",
                    format!("`{url}` is not an http:// or https:// URL"),
                );
            }
        }
        NotifyConfig {
            desktop: detailed.desktop.unwrap_or(false),
            webhooks,
        }
    }
}
