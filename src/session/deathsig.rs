//! Linux: the command dies with smartproxy. A `run` killed with SIGKILL (or crashing) cannot pass
//! a signal on, and its agent would live on as an orphan without a proxy or a ledger session; the
//! kernel sends the command SIGTERM instead (`PR_SET_PDEATHSIG`), the signal `run` itself passes
//! on when it is stopped, so the agent can restore the terminal and save its state either way.
//!
//! The signal is armed in the forked child, before it execs the command. That runs the command
//! with `execve` itself, on a path resolved here the way `execvp` would, because the `execvp`
//! the standard library calls after such a hook runs a file that is not a program (no `#!` line)
//! through `/bin/sh` instead of failing with ENOEXEC (`spawn` reports that as exit 126).
//!
//! The kernel sends the signal when the *thread* that forked the child exits, not the process:
//! `run` spawns from its main thread (its runtime is current-thread), which lives as long as the
//! process. The signal survives the command's `setsid` and `exec`, not a further fork: processes
//! the agent starts are the agent's to stop.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::env::Plan;

/// Everything the child needs to exec the command, made before the fork: between fork and exec
/// the child of a multi-threaded process must not allocate.
struct Exec {
    path: CString,
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    /// Addresses of the strings above (heap buffers, which stay put when the vectors move), each
    /// list ending in 0: what `execve` takes, kept as integers so the hook is `Send`.
    argv: Vec<usize>,
    envp: Vec<usize>,
}

/// Why the command cannot be started, found before the fork.
pub enum Refused {
    NotFound,
    PermissionDenied,
    Other(io::Error),
}

/// Arms the parent-death signal in the child and execs the command there.
#[allow(unsafe_code)]
pub fn arm(
    cmd: &mut tokio::process::Command,
    command: &[OsString],
    plan: &Plan,
) -> Result<(), Refused> {
    let exec = Exec::prepare(command, plan)?;
    let parent = nix::unistd::getpid();
    // SAFETY: the hook runs in the forked child before exec, where only async-signal-safe calls
    // are allowed: it makes system calls (prctl, getppid, execve) on data prepared before the
    // fork, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)?;
            // smartproxy died between the fork and the prctl: the signal was never armed.
            if nix::unistd::getppid() != parent {
                return Err(io::Error::from_raw_os_error(
                    nix::errno::Errno::ESRCH as i32,
                ));
            }
            Err(exec.run())
        });
    }
    Ok(())
}

impl Exec {
    /// Replaces the process with the command; returns only on failure. (A method, so that the
    /// hook owns the whole `Exec`: a closure that named only some fields would own only those,
    /// and the strings the pointers point at would be freed before the fork.)
    #[allow(unsafe_code)]
    fn run(&self) -> io::Error {
        // SAFETY: every pointer points into `self`'s strings, alive for this call, and each
        // list ends in a null pointer, as `execve` requires.
        unsafe {
            nix::libc::execve(
                self.path.as_ptr(),
                self.argv.as_ptr().cast(),
                self.envp.as_ptr().cast(),
            );
        }
        io::Error::last_os_error()
    }

    fn prepare(command: &[OsString], plan: &Plan) -> Result<Self, Refused> {
        let Some(program) = command.first() else {
            return Err(Refused::NotFound);
        };
        let nul =
            |s: &OsStr| CString::new(s.as_bytes()).map_err(|e| Refused::Other(io::Error::other(e)));
        let env = child_env(plan);
        let search = env
            .iter()
            .find(|(name, _)| name == "PATH")
            .map(|(_, value)| value.clone());
        let path = resolve(program, search.as_deref())?;
        let argv = command
            .iter()
            .map(|a| nul(a))
            .collect::<Result<Vec<_>, _>>()?;
        let envp = env
            .iter()
            .map(|(name, value)| {
                let mut pair = name.clone();
                pair.push("=");
                pair.push(value);
                nul(&pair)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let addresses = |strings: &[CString]| {
            strings
                .iter()
                .map(|s| s.as_ptr() as usize)
                .chain([0])
                .collect()
        };
        Ok(Self {
            path: nul(path.as_os_str())?,
            argv: addresses(&argv),
            envp: addresses(&envp),
            _argv: argv,
            _envp: envp,
        })
    }
}

/// The inherited environment with the plan applied, as the command gets it.
fn child_env(plan: &Plan) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(name, _)| {
            !plan.remove.iter().any(|r| OsStr::new(r) == name)
                && !plan.set.iter().any(|(s, _)| OsStr::new(s) == name)
        })
        .collect();
    env.extend(
        plan.set
            .iter()
            .map(|(name, value)| (OsString::from(name), OsString::from(value))),
    );
    env
}

/// The file `execvp` would run for `program`: itself when it names a path, else the first
/// executable file of that name in `search` (the command's PATH). Like `execvp`, a match that
/// cannot be executed (a directory, no execute bit) makes "permission denied" if nothing later
/// on PATH can be.
fn resolve(program: &OsStr, search: Option<&OsStr>) -> Result<PathBuf, Refused> {
    if program.is_empty() {
        return Err(Refused::NotFound);
    }
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let search = search.unwrap_or(OsStr::new("/bin:/usr/bin"));
    let mut denied = false;
    for dir in std::env::split_paths(search) {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".").to_path_buf()
        } else {
            dir
        };
        let candidate = dir.join(program);
        match std::fs::metadata(&candidate) {
            Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => {
                return Ok(candidate);
            }
            Ok(_) => denied = true,
            Err(_) => {}
        }
    }
    Err(if denied {
        Refused::PermissionDenied
    } else {
        Refused::NotFound
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_path_as_execvp_finds_them() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("tool"), "").unwrap();
        std::fs::write(b.join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(b.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let search = std::env::join_paths([&a, &b]).unwrap();
        let found = |p: &str, s: Option<&OsStr>| match resolve(OsStr::new(p), s) {
            Ok(path) => Ok(path),
            Err(Refused::NotFound) => Err("not found"),
            Err(Refused::PermissionDenied) => Err("denied"),
            Err(Refused::Other(_)) => Err("other"),
        };
        // Not executable in `a`: the one in `b` runs.
        assert_eq!(found("tool", Some(&search)), Ok(b.join("tool")));
        // Only a file without the execute bit: permission denied, as execvp says.
        assert_eq!(found("tool", Some(a.as_os_str())), Err("denied"));
        assert_eq!(found("no-such-tool", Some(&search)), Err("not found"));
        // A path is executed as it is; the kernel decides.
        assert_eq!(found("./x/y", Some(&search)), Ok(PathBuf::from("./x/y")));
        assert_eq!(found("", Some(&search)), Err("not found"));
    }
}
