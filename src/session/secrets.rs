//! Keeps the provider keys this process holds out of reach of the user's other processes. `run`
//! takes the real keys out of its child's environment, but its own stays as it started: any
//! process of the same user (the agent itself) could read it in `/proc/PID/environ`, or the
//! keys in memory through `/proc/PID/mem`. A non-dumpable process has those files owned by
//! root. (Unsetting the variables would not help: `/proc/PID/environ` shows the environment the
//! process started with.)

/// Makes this process non-dumpable (Linux: `PR_SET_DUMPABLE 0`); its children are not, once
/// they exec. Elsewhere nothing changes.
pub fn hide_from_same_user() {
    #[cfg(target_os = "linux")]
    if let Err(err) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(%err, "could not make this process non-dumpable; processes of the same user can read its environment");
    }
}
