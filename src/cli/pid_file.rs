//! The running daemon's pid file: where it is, what it records and whether its process still
//! lives. The daemon writes it; `daemon status`, `env`, `dash` and `doctor` read it.

use std::path::PathBuf;

use anyhow::Context;

/// What the pid file records.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct PidFile {
    pub(super) pid: u32,
    pub(super) listen: String,
    pub(super) admin_listen: String,
    pub(super) started_ms: i64,
    pub(super) log: Option<String>,
}

fn runtime_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("SMARTPROXY_RUNTIME_DIR") {
        return PathBuf::from(dir);
    }
    directories::ProjectDirs::from("", "", "smartproxy")
        .map(|d| {
            d.runtime_dir()
                .unwrap_or_else(|| d.data_dir())
                .to_path_buf()
        })
        .unwrap_or_else(std::env::temp_dir)
}

/// Where the loop breaker leaves a stopped session's marker for `smartproxy resume` (the
/// runtime folder: the proxies of `run` and the daemon and `resume` on this machine all see it).
pub(super) fn loop_markers_dir() -> PathBuf {
    runtime_dir().join("loops")
}

pub(super) fn pid_path() -> PathBuf {
    runtime_dir().join("smartproxy.pid")
}

pub(super) fn read_pid_file() -> Option<PidFile> {
    let text = std::fs::read_to_string(pid_path()).ok()?;
    serde_json::from_str(&text).ok()
}

/// The pid file of a daemon whose process still lives.
pub(super) fn running_daemon() -> Option<PidFile> {
    read_pid_file().filter(|f| alive(f.pid))
}

/// Whether the process exists and has not exited. An exited child that its parent has not
/// reaped yet (a zombie) still answers signal 0, so Linux's process state is checked too.
pub(super) fn alive(pid: u32) -> bool {
    let signalled = i32::try_from(pid)
        .is_ok_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok());
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false);
    signalled && !zombie
}

pub(super) fn write_pid_file(file: &PidFile) -> anyhow::Result<()> {
    let path = pid_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&path, serde_json::to_vec(file)?)
        .with_context(|| format!("cannot write {}", path.display()))
}
