//! Which process owns a ledger session, and whether it still lives: a session is recorded with its
//! owner's host, pid and start time, so a reader can tell a session that is still running from one
//! whose process died (SIGKILL, a crash) before it could record its end.
//!
//! A pid alone is not enough: pids are reused. On Linux the start time is the process's start in
//! clock ticks since boot (`/proc/PID/stat`, field 22) together with the boot's id, which no later
//! process with the same pid can share. Elsewhere only the pid is compared.

use std::sync::OnceLock;

/// A process as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub host: String,
    pub pid: u32,
    /// `BOOT_ID:START_TICKS` on Linux, empty elsewhere; `None` when it cannot be read.
    pub start: Option<String>,
}

/// This process, computed once.
pub fn current() -> &'static Owner {
    static CURRENT: OnceLock<Owner> = OnceLock::new();
    CURRENT.get_or_init(|| {
        let pid = std::process::id();
        Owner {
            host: host().to_owned(),
            pid,
            start: start_token(pid),
        }
    })
}

/// Where pids mean the same processes, read once: the machine's name and, on Linux, the pid
/// namespace (a container on the same machine, even under the same name, has its own pids).
pub fn host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let name = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        match std::fs::read_link("/proc/self/ns/pid") {
            // `pid:[4026531836]`
            Ok(namespace) => format!("{name} {}", namespace.display()),
            Err(_) => name,
        }
    })
}

/// Whether the process recorded as (`host`, `pid`, `start`) is certainly gone. Unknown cases
/// (another host, an owner recorded by an older smartproxy, a start time that could not be read)
/// are not gone: a reader must never call a live session lost.
pub fn gone(host: Option<&str>, pid: Option<i64>, start: Option<&str>) -> bool {
    let (Some(host), Some(pid), Some(start)) = (host, pid, start) else {
        return false;
    };
    if host != self::host() {
        return false;
    }
    let Ok(pid) = u32::try_from(pid) else {
        return false;
    };
    start_token(pid).as_deref() != Some(start)
}

/// The start token of a live process, `None` when there is none with that pid (an exited child
/// not yet reaped, a zombie, counts as gone).
#[cfg(target_os = "linux")]
fn start_token(pid: u32) -> Option<String> {
    static BOOT: OnceLock<Option<String>> = OnceLock::new();
    let boot = BOOT
        .get_or_init(|| {
            std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .ok()
                .map(|b| b.trim().to_owned())
        })
        .as_deref()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = parse_start_ticks(&stat)?;
    Some(format!("{boot}:{ticks}"))
}

#[cfg(not(target_os = "linux"))]
fn start_token(pid: u32) -> Option<String> {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).ok()?);
    match nix::sys::signal::kill(pid, None) {
        // EPERM: the process exists but belongs to someone else.
        Ok(()) | Err(nix::errno::Errno::EPERM) => Some(String::new()),
        Err(_) => None,
    }
}

/// Field 22 (`starttime`) of `/proc/PID/stat`, or `None` for a zombie or dead process. The
/// command name (field 2) is in parentheses and may itself hold spaces and `)`, so fields are
/// counted after its last `)`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_start_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    // Field 3, the state.
    let state = fields.next()?;
    if state.starts_with(['Z', 'X', 'x']) {
        return None;
    }
    // Fields 4..=21 come before the start time.
    fields.nth(18)?.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn start_ticks_are_read_after_the_command_name() {
        let stat =
            "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_ticks(stat), Some(987_654));
        let zombie = "4242 (sh) Z 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 0 0";
        assert_eq!(parse_start_ticks(zombie), None);
        assert_eq!(parse_start_ticks("garbage"), None);
    }

    #[test]
    fn this_process_lives_and_another_start_time_is_gone() {
        let me = current();
        assert!(!gone(
            Some(&me.host),
            Some(i64::from(me.pid)),
            me.start.as_deref()
        ));
        if cfg!(target_os = "linux") {
            // The same pid with another start time: a reused pid, so the recorded process is gone.
            assert!(gone(
                Some(&me.host),
                Some(i64::from(me.pid)),
                Some("other-boot:1")
            ));
        }
        // Another host's process cannot be checked from here: never called gone.
        assert!(!gone(Some("elsewhere.invalid"), Some(1), Some("x:1")));
        // Nothing recorded (a row from an older smartproxy): unknown, not gone.
        assert!(!gone(None, None, None));
    }
}
