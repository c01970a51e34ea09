//! Starts the child command with its planned environment, in smartproxy's own process group so
//! the terminal's Ctrl-C reaches it directly. On Linux it also dies with smartproxy (`deathsig`).

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
    super::deathsig::arm(&mut cmd, command, plan).map_err(|refused| match refused {
        super::deathsig::Refused::NotFound => SpawnError::NotFound(name.clone()),
        super::deathsig::Refused::PermissionDenied => SpawnError::PermissionDenied(name.clone()),
        super::deathsig::Refused::Other(err) => SpawnError::Other(name.clone(), err),
    })?;
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

/// The child's status as an exit code: its own code, or 128 + N when signal N ended it.
pub fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(255),
        (None, None) => 1,
    }
}
