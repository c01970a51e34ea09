//! Children that cannot outlive the bench: each is started with a parent-death signal, so a
//! bench stopped by SIGTERM, SIGINT or SIGKILL (where no `Drop` guard runs) still takes its
//! proxies and nginx down with it.

use std::process::Command;

/// Arms SIGTERM in the child for when the bench dies; smartproxy and nginx treat it as "stop".
///
/// Linux sends the signal when the *thread* that forked the child exits, so call this only for
/// children spawned from the bench's main thread (every bench spawns its processes there). The
/// signal survives the `exec` of `taskset` and then of the program it starts.
#[allow(unsafe_code)]
pub fn die_with_bench(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    let parent = nix::unistd::getpid();
    // SAFETY: runs in the forked child before exec, where only async-signal-safe calls are
    // allowed: prctl and getppid are plain system calls and nothing is allocated.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)?;
            // The bench died between the fork and the prctl: the signal was never armed.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other(
                    "the bench exited while starting a child",
                ));
            }
            Ok(())
        });
    }
    cmd
}
