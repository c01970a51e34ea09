//! Start-up: `smartproxy run --mock -- true` timed against plain `true`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{Plan, UPSTREAM_KEY};

pub struct Startup {
    pub true_ms: Vec<f64>,
    pub run_ms: Vec<f64>,
    /// The same for the baseline binary (empty without `--baseline`).
    pub baseline_ms: Vec<f64>,
    pub failure: Option<String>,
}

/// `smartproxy run --summary none --mock -- true` against `true` (and the baseline binary's,
/// when given), alternating, after warm-up.
pub fn measure_startup(
    plan: &Plan,
    bin: &Path,
    baseline: Option<&Path>,
    config: &Path,
    tmp: &Path,
) -> anyhow::Result<Startup> {
    // Each side its own ledger: an older baseline refuses one a newer build has migrated.
    let run = |bin: &Path, ledger: &str| {
        let mut cmd = Command::new(bin);
        cmd.args(["run", "--summary", "none", "--mock", "--config"])
            .arg(config)
            .args(["--", "true"])
            .env("SMARTPROXY_DB", tmp.join(ledger))
            .env("SMARTPROXY_LOG_LEVEL", "error")
            .env("BENCH_UPSTREAM_KEY", UPSTREAM_KEY)
            .current_dir(tmp)
            .stdin(Stdio::null());
        cmd
    };
    let plain = || {
        let mut cmd = Command::new("true");
        cmd.current_dir(tmp).stdin(Stdio::null());
        cmd
    };
    let time = |mut cmd: Command| -> anyhow::Result<(f64, Option<String>)> {
        let t = Instant::now();
        let output = cmd.output()?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let failure = (!output.status.success()).then(|| {
            format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )
        });
        Ok((ms, failure))
    };
    let mut startup = Startup {
        true_ms: Vec::new(),
        run_ms: Vec::new(),
        baseline_ms: Vec::new(),
        failure: None,
    };
    for i in 0..plan.startup_warmup + plan.startup_runs {
        let (t_true, _) = time(plain())?;
        let (t_run, failure) = time(run(bin, "startup.db"))?;
        if let Some(f) = failure {
            startup.failure.get_or_insert(f);
        }
        let t_base = match baseline {
            Some(base) => {
                let (t, failure) = time(run(base, "startup-baseline.db"))?;
                if let Some(f) = failure {
                    startup.failure.get_or_insert(format!("baseline: {f}"));
                }
                Some(t)
            }
            None => None,
        };
        if i >= plan.startup_warmup {
            startup.true_ms.push(t_true);
            startup.run_ms.push(t_run);
            startup.baseline_ms.extend(t_base);
        }
    }
    Ok(startup)
}
