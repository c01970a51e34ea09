//! `run`'s cost gates, checked once the command has exited and the ledger is flushed:
//! `--max-cost` (the session spent more than an amount) and `--baseline` (its cost or tokens
//! grew past `--max-ratio` times a stored summary's). Unlike `--budget`, which refuses
//! requests while the command runs, a gate only changes the exit status, for CI.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use super::summary::Figures;
use crate::cli::format;
use crate::ledger::session_parts::KindTotals;

/// Exit status when the session spent more than `--max-cost`.
pub const EXIT_OVER_MAX_COST: u8 = 3;
/// Exit status when the session grew past `--max-ratio` times its `--baseline`.
pub const EXIT_OVER_BASELINE: u8 = 4;

/// A stored summary (`run --summary json`, or `run --save-baseline FILE`), as far as the
/// comparison reads it.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Baseline {
    #[serde(skip)]
    path: PathBuf,
    cost_usd: Option<f64>,
    #[serde(default)]
    simulated_usd: Option<f64>,
    prompt_tokens: u64,
    completion_tokens: u64,
    by_model: Vec<ModelFigures>,
    /// Older summaries have no kinds: then only models are compared.
    #[serde(default)]
    by_kind: Vec<KindTotals>,
}

#[derive(Debug, Clone, Deserialize)]
struct ModelFigures {
    key: String,
    prompt_tokens: u64,
    completion_tokens: u64,
    cost_usd: Option<f64>,
    #[serde(default)]
    simulated_usd: Option<f64>,
}

/// Reads a baseline before the command starts, so a missing or unreadable one fails at once.
pub(super) fn load_baseline(path: &Path) -> anyhow::Result<Baseline> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--baseline {}: cannot read the file", path.display()))?;
    let mut baseline: Baseline = serde_json::from_str(&text).with_context(|| {
        format!(
            "--baseline {}: not a run summary (write one with `smartproxy run --save-baseline {} -- ...` \
             or `--summary json --summary-file`)",
            path.display(),
            path.display()
        )
    })?;
    baseline.path = path.to_path_buf();
    Ok(baseline)
}

/// What one side of a comparison adds up to: spent (simulated included) and tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Size {
    spent_usd: f64,
    tokens: u64,
}

/// `now / before`; growth from nothing is infinite, nothing from nothing is 1.
fn ratio(now: f64, before: f64) -> f64 {
    if before > 0.0 {
        now / before
    } else if now > 0.0 {
        f64::INFINITY
    } else {
        1.0
    }
}

fn times(r: f64) -> String {
    if r.is_finite() {
        format!("x{r:.2}")
    } else {
        "new".to_owned()
    }
}

/// The gates' verdict: the lines to print on stderr and the exit status they ask for.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Verdict {
    pub lines: Vec<String>,
    pub exit_code: Option<u8>,
}

/// Checks `--max-cost` and `--baseline` against the session's figures.
pub(super) fn check(
    figures: &Figures,
    max_cost: Option<f64>,
    baseline: Option<&Baseline>,
    max_ratio: f64,
) -> Verdict {
    let mut verdict = Verdict::default();
    if let Some(baseline) = baseline
        && let Some(lines) = compare(figures, baseline, max_ratio)
    {
        verdict.lines.extend(lines);
        verdict.exit_code = Some(EXIT_OVER_BASELINE);
    }
    let spent = figures.spent_usd();
    if let Some(limit) = max_cost
        && spent > limit
    {
        verdict.lines.push(format!(
            "smartproxy: session cost {} over --max-cost {}",
            format::money(Some(spent)),
            format::money(Some(limit))
        ));
        verdict.exit_code = Some(EXIT_OVER_MAX_COST);
    }
    verdict
}

/// `None` when the session stayed within `max_ratio` of the baseline; else what grew.
fn compare(figures: &Figures, baseline: &Baseline, max_ratio: f64) -> Option<Vec<String>> {
    let now = Size {
        spent_usd: figures.spent_usd(),
        tokens: figures.total.prompt_tokens + figures.total.completion_tokens,
    };
    let before = Size {
        spent_usd: baseline.cost_usd.unwrap_or(0.0) + baseline.simulated_usd.unwrap_or(0.0),
        tokens: baseline.prompt_tokens + baseline.completion_tokens,
    };
    let cost_ratio = ratio(now.spent_usd, before.spent_usd);
    let token_ratio = ratio(now.tokens as f64, before.tokens as f64);
    if cost_ratio <= max_ratio && token_ratio <= max_ratio {
        return None;
    }
    let mut lines = vec![format!(
        "smartproxy: session over --max-ratio {max_ratio} of baseline {}: cost {} vs {} ({}), tokens {} vs {} ({})",
        baseline.path.display(),
        format::money(Some(now.spent_usd)),
        format::money(Some(before.spent_usd)),
        times(cost_ratio),
        now.tokens,
        before.tokens,
        times(token_ratio),
    )];
    let models_now = figures.by_model.iter().map(|m| {
        let size = Size {
            spent_usd: m.cost_usd.unwrap_or(0.0) + m.simulated_usd.unwrap_or(0.0),
            tokens: m.prompt_tokens + m.completion_tokens,
        };
        (m.key.clone(), size)
    });
    let models_before: HashMap<String, Size> = baseline
        .by_model
        .iter()
        .map(|m| {
            let size = Size {
                spent_usd: m.cost_usd.unwrap_or(0.0) + m.simulated_usd.unwrap_or(0.0),
                tokens: m.prompt_tokens + m.completion_tokens,
            };
            (m.key.clone(), size)
        })
        .collect();
    lines.extend(grown("model", models_now, &models_before));
    if !baseline.by_kind.is_empty() {
        let size = |k: &KindTotals| Size {
            spent_usd: k.spent_usd,
            tokens: k.prompt_tokens + k.completion_tokens,
        };
        let kinds_now = figures.kinds.iter().map(|k| (k.kind.clone(), size(k)));
        let kinds_before: HashMap<String, Size> = baseline
            .by_kind
            .iter()
            .map(|k| (k.kind.clone(), size(k)))
            .collect();
        lines.extend(grown("kind", kinds_now, &kinds_before));
    }
    Some(lines)
}

/// A line per group whose cost or tokens grew: `  model gpt-4o: cost $0.01 vs $0.005 (x2.00), ...`.
fn grown(
    what: &str,
    now: impl Iterator<Item = (String, Size)>,
    before: &HashMap<String, Size>,
) -> Vec<String> {
    now.filter_map(|(key, size)| {
        let was = before.get(&key).copied().unwrap_or_default();
        let cost = ratio(size.spent_usd, was.spent_usd);
        let tokens = ratio(size.tokens as f64, was.tokens as f64);
        // Rounding noise in a float sum is not growth.
        (cost > 1.0 + 1e-9 || tokens > 1.0 + 1e-9).then(|| {
            format!(
                "  {what} {key}: cost {} vs {} ({}), tokens {} vs {} ({})",
                format::money(Some(size.spent_usd)),
                format::money(Some(was.spent_usd)),
                times(cost),
                size.tokens,
                was.tokens,
                times(tokens),
            )
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_from_nothing_is_new_and_nothing_from_nothing_is_no_growth() {
        assert_eq!(ratio(2.0, 1.0), 2.0);
        assert!(ratio(1.0, 0.0).is_infinite());
        assert_eq!(ratio(0.0, 0.0), 1.0);
        assert_eq!(times(f64::INFINITY), "new");
        assert_eq!(times(1.5), "x1.50");
    }
}
