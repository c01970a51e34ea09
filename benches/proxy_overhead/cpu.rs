//! CPU time per side, read from /proc/…/schedstat, with smartproxy's ledger writer thread split out.

use std::path::Path;

/// Whose CPU time to read: a whole process (all its threads) or one thread.
#[derive(Clone, Copy)]
pub enum CpuProbe {
    Process(i32),
    Thread(i32, i32),
}

/// CPU time from /proc/…/schedstat (nanoseconds), split out for the ledger writer thread.
#[derive(Clone, Copy, Default)]
pub struct CpuTime {
    total_ns: u64,
    ledger_ns: u64,
}

impl CpuTime {
    pub fn since(self, earlier: Self) -> Self {
        Self {
            total_ns: self.total_ns.saturating_sub(earlier.total_ns),
            ledger_ns: self.ledger_ns.saturating_sub(earlier.ledger_ns),
        }
    }

    pub fn plus(self, other: Self) -> Self {
        Self {
            total_ns: self.total_ns + other.total_ns,
            ledger_ns: self.ledger_ns + other.ledger_ns,
        }
    }

    /// Microseconds per request: (total, ledger writer).
    pub fn per_request_us(self, requests: usize) -> (f64, f64) {
        let n = requests.max(1) as f64;
        (
            self.total_ns as f64 / n / 1e3,
            self.ledger_ns as f64 / n / 1e3,
        )
    }
}

impl CpuProbe {
    /// Best effort: zero when /proc cannot be read.
    pub fn read(self) -> CpuTime {
        let on_cpu = |task: &Path| -> u64 {
            std::fs::read_to_string(task.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        match self {
            Self::Thread(pid, tid) => CpuTime {
                total_ns: on_cpu(Path::new(&format!("/proc/{pid}/task/{tid}"))),
                ledger_ns: 0,
            },
            Self::Process(pid) => {
                let mut time = CpuTime::default();
                let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                    return time;
                };
                for task in tasks.flatten() {
                    let ns = on_cpu(&task.path());
                    time.total_ns += ns;
                    if std::fs::read_to_string(task.path().join("comm"))
                        .is_ok_and(|c| c.trim() == "ledger-writer")
                    {
                        time.ledger_ns += ns;
                    }
                }
                time
            }
        }
    }
}
