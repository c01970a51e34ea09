//! Validation of the `budget` part of the config: the session, daily and monthly limits, each
//! from its environment variable or the file.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use super::Validator;
use crate::config::every as window;
use crate::config::raw::{RawConfig, RawUnpriced, RawWindow};
use crate::config::{BudgetConfig, ProjectBudget, WindowLimit};

impl Validator<'_> {
    pub(super) fn budget(
        &mut self,
        raw: &RawConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> BudgetConfig {
        let b = &raw.budget;
        let session_usd = self.limit(
            "SMARTPROXY_BUDGET_SESSION_LIMIT_USD",
            "budget.session_usd",
            b.session_usd,
            env,
        );
        let daily_usd = self.limit(
            "SMARTPROXY_BUDGET_DAILY_LIMIT_USD",
            "budget.daily_usd",
            b.daily_usd,
            env,
        );
        let weekly_usd = self.limit(
            "SMARTPROXY_BUDGET_WEEKLY_LIMIT_USD",
            "budget.weekly_usd",
            b.weekly_usd,
            env,
        );
        let windows = self.windows("budget.windows", &b.windows);
        let monthly_usd = self.limit(
            "SMARTPROXY_BUDGET_MONTHLY_LIMIT_USD",
            "budget.monthly_usd",
            b.monthly_usd,
            env,
        );
        let utc_offset_s = match b.timezone.as_deref().map(str::trim) {
            None | Some("local" | "Local" | "") => None,
            Some("utc" | "UTC" | "Z") => Some(0),
            Some(text) => match chrono::FixedOffset::from_str(text) {
                Ok(offset) => Some(offset.local_minus_utc()),
                Err(_) => {
                    self.error(
                        "budget.timezone",
                        format!("`{text}` is not `local`, `utc` or an offset like +05:30"),
                    );
                    None
                }
            },
        };
        let on_exceed = match b.on_exceed.as_deref().map(str::trim) {
            None | Some("fit") => crate::config::OnExceed::Fit,
            Some("refuse") => crate::config::OnExceed::Refuse,
            Some("downgrade") => crate::config::OnExceed::Downgrade,
            Some(other) => {
                self.error(
                    "budget.on_exceed",
                    format!("`{other}` is not `refuse`, `fit` or `downgrade`"),
                );
                crate::config::OnExceed::Fit
            }
        };
        let downgrade_to = b
            .downgrade_to
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned);
        if on_exceed == crate::config::OnExceed::Downgrade && downgrade_to.is_none() {
            self.error(
                "budget.on_exceed",
                "`downgrade` needs `budget.downgrade_to`, the cheaper model or alias to use",
            );
        }
        let unpriced = match &b.unpriced {
            None => crate::config::Unpriced::Refuse,
            Some(RawUnpriced::Word(word)) => match word.trim() {
                "refuse" => crate::config::Unpriced::Refuse,
                "allow" => crate::config::Unpriced::Allow,
                other => {
                    self.error(
                        "budget.unpriced",
                        format!(
                            "`{other}` is not `refuse`, `allow` or `{{price_as: MODEL}}` (a model whose price to use)"
                        ),
                    );
                    crate::config::Unpriced::Refuse
                }
            },
            Some(RawUnpriced::PriceAs(p)) if p.price_as.trim().is_empty() => {
                self.error(
                    "budget.unpriced.price_as",
                    "name the model whose price unpriced models are charged at, e.g. `{price_as: gpt-4o}`",
                );
                crate::config::Unpriced::Refuse
            }
            Some(RawUnpriced::PriceAs(p)) => {
                crate::config::Unpriced::PriceAs(p.price_as.trim().to_owned())
            }
        };
        let check_timeout = match b.check_timeout_ms {
            None => crate::config::BUDGET_CHECK_TIMEOUT,
            Some(0) => {
                self.error(
                    "budget.check_timeout_ms",
                    "must be at least 1 (milliseconds a request waits for a busy ledger)",
                );
                crate::config::BUDGET_CHECK_TIMEOUT
            }
            Some(ms) => Duration::from_millis(ms),
        };
        let offline_grace_usd = match b.offline_grace_usd {
            Some(v) if !v.is_finite() || v < 0.0 => {
                self.error(
                    "budget.offline_grace_usd",
                    "must be an amount in USD of zero or more, e.g. 0.50",
                );
                None
            }
            other => other.filter(|v| *v > 0.0),
        };
        let reservation_expiry = match b.reservation_expiry_s {
            None => crate::config::RESERVATION_EXPIRY,
            Some(0) => {
                self.error(
                    "budget.reservation_expiry_s",
                    "must be at least 1 (seconds a reservation holds; longer than your slowest request)",
                );
                crate::config::RESERVATION_EXPIRY
            }
            Some(s) => Duration::from_secs(s),
        };
        let projects = self.project_budgets(raw);
        BudgetConfig {
            projects,
            offline_grace_usd,
            reservation_expiry,
            session_usd,
            daily_usd,
            weekly_usd,
            monthly_usd,
            windows,
            utc_offset_s,
            count_subscription: b.count_subscription.unwrap_or(false),
            on_exceed,
            downgrade_to,
            unpriced,
            check_timeout,
        }
    }

    /// `budget.projects`: each name a project name, each amount USD of zero or more.
    fn project_budgets(&mut self, raw: &RawConfig) -> BTreeMap<String, ProjectBudget> {
        let mut out = BTreeMap::new();
        for (name, p) in &raw.budget.projects {
            if let Some(problem) = crate::config::project_name_problem(name) {
                self.error(&format!("budget.projects.{name}"), problem);
                continue;
            }
            let mut amount = |field: &str, value: Option<f64>| {
                if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
                    self.error(
                        &format!("budget.projects.{name}.{field}"),
                        "must be an amount in USD of zero or more",
                    );
                }
                value.filter(|v| v.is_finite() && *v > 0.0)
            };
            let (daily_usd, weekly_usd, monthly_usd) = (
                amount("daily_usd", p.daily_usd),
                amount("weekly_usd", p.weekly_usd),
                amount("monthly_usd", p.monthly_usd),
            );
            let budget = ProjectBudget {
                daily_usd,
                weekly_usd,
                monthly_usd,
                windows: self.windows(&format!("budget.projects.{name}.windows"), &p.windows),
            };
            out.insert(name.trim().to_owned(), budget);
        }
        out
    }

    /// Rolling windows under `key`: `every` a duration from a minute to 31 days, `usd` above
    /// zero, no two of one length (they would share a counter).
    pub(super) fn windows(&mut self, key: &str, raw: &[RawWindow]) -> Vec<WindowLimit> {
        let mut out: Vec<WindowLimit> = Vec::new();
        for (i, w) in raw.iter().enumerate() {
            let every_ms = match window::parse_every(&w.every) {
                Some(ms) if (window::MIN_EVERY_MS..=window::MAX_EVERY_MS).contains(&ms) => ms,
                Some(_) => {
                    self.error(
                        &format!("{key}[{i}].every"),
                        format!("`{}` is outside 1m to 31d", w.every.trim()),
                    );
                    continue;
                }
                None => {
                    self.error(
                        &format!("{key}[{i}].every"),
                        format!(
                            "`{}` is not a duration like 5h, 90m, 1h30m or 7d",
                            w.every.trim()
                        ),
                    );
                    continue;
                }
            };
            if !w.usd.is_finite() || w.usd <= 0.0 {
                self.error(
                    &format!("{key}[{i}].usd"),
                    "must be an amount in USD above zero, e.g. 10",
                );
                continue;
            }
            if out.iter().any(|o| o.every_ms == every_ms) {
                self.error(
                    &format!("{key}[{i}].every"),
                    format!(
                        "a second window of {}: give each length one cap",
                        window::every_text(every_ms)
                    ),
                );
                continue;
            }
            out.push(WindowLimit {
                every_ms,
                usd: w.usd,
            });
        }
        out
    }

    /// A limit from its variable or the file; 0 means no limit (the seed's convention).
    pub(super) fn limit(
        &mut self,
        var: &str,
        key: &str,
        configured: Option<f64>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<f64> {
        let value = match env(var).filter(|v| !v.trim().is_empty()) {
            Some(text) => match text.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Some(v),
                _ => {
                    self.env_error(
                        var,
                        format!("`{text}` is not an amount in USD, e.g. 5 or 0.50"),
                    );
                    None
                }
            },
            None => {
                if configured.is_some_and(|v| !v.is_finite() || v < 0.0) {
                    self.error(key, "must be an amount in USD of zero or more");
                }
                configured
            }
        };
        value.filter(|v| *v > 0.0)
    }
}
