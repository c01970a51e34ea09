//! Starts the child command with its planned environment, in smartproxy's own process group so
//! the terminal's Ctrl-C reaches it directly. On Linux the child is also told to receive SIGTERM
//! if smartproxy dies (`PR_SET_PDEATHSIG`): a `run` killed with SIGKILL, which cannot pass the
//! signal on, does not leave its agent running on without a proxy or a ledger session.

use std::ffi::OsString;
use std::io;
use std::process::ExitStatus;

use super::env::Plan;

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("command not found: `{0}` (is it installed and on PATH?)")]
    NotFound(String),
    #[error(
        "cannot execute `{0}`: permission denied (a directory, or a file without the execute bit: `chmod +x` it or run it through its interpreter)"
    )]
    PermissionDenied(String),
    #[error(
        "cannot execute `{0}`: not a program this system can run (a script needs a `#!` line, e.g. `#!/bin/sh`)"
    )]
    ExecFormat(String),
    #[error("cannot start `{0}`: {1}")]
    Other(String, io::Error),
}

impl SpawnError {
    /// The exit code a shell would use: 127 for a missing command, 126 when it cannot run.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NotFound(_) => 127,
            Self::PermissionDenied(_) | Self::ExecFormat(_) | Self::Other(..) => 126,
        }
    }
}

pub fn spawn(command: &[OsString], plan: &Plan) -> Result<tokio::process::Child, SpawnError> {
    spawn_with_output(command, plan, None)
}

/// `spawn`, with the command's stdout and stderr appended to `log` when given, and its stdin
/// closed then (the terminal belongs to the dashboard of `run --dash`).
pub fn spawn_with_output(
    command: &[OsString],
    plan: &Plan,
    log: Option<&std::fs::File>,
) -> Result<tokio::process::Child, SpawnError> {
    let Some((program, args)) = command.split_first() else {
        return Err(SpawnError::NotFound(String::new()));
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args);
    for var in &plan.remove {
        cmd.env_remove(var);
    }
    for (name, value) in &plan.set {
        cmd.env(name, value);
    }
    let name = program.to_string_lossy().into_owned();
    #[cfg(target_os = "linux")]
    die_with_parent(&mut cmd);
    if let Some(log) = log {
        let (out, err) = log
            .try_clone()
            .and_then(|a| Ok((a, log.try_clone()?)))
            .map_err(|e| SpawnError::Other(name.clone(), e))?;
        cmd.stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err);
    }
    cmd.spawn().map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => SpawnError::NotFound(name),
        io::ErrorKind::PermissionDenied => SpawnError::PermissionDenied(name),
        _ if err.raw_os_error() == Some(nix::errno::Errno::ENOEXEC as i32) => {
            SpawnError::ExecFormat(name)
        }
        _ => SpawnError::Other(name, err),
    })
}

/// Has the child receive SIGTERM when smartproxy dies: the signal `run` itself passes on when it
/// is stopped, so the agent can restore the terminal and save its state either way.
///
/// The kernel sends it when the *thread* that forked the child exits, not the process: `run`
/// spawns from its main thread (its runtime is current-thread), which lives as long as the
/// process. It survives the child's `setsid` and `exec`, but not a further fork: grandchildren
/// the agent starts are the agent's to stop.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut tokio::process::Command) {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // calls are allowed: it makes two system calls (prctl, getppid) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)?;
            // smartproxy died between the fork and the prctl: the signal was never armed.
            if nix::unistd::getppid() != parent {
                return Err(io::Error::from_raw_os_error(
                    nix::errno::Errno::ESRCH as i32,
                ));
            }
            Ok(())
        });
    }
}

/// The child's status as an exit code: its own code, or 128 + N when signal N ended it.
pub fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(255),
        (None, None) => 1,
    }
}
