//! Running a child command inside a session: its environment (`env`, pure), starting it
//! (`spawn`, which on Linux has it die with smartproxy: `deathsig`), passing signals on while it
//! runs (`signals`), the preset its program implies (`preset`, pure), and keeping the real keys
//! `run` holds out of the child's reach (`secrets`), and the git state of its folder (`git`).

#[cfg(target_os = "linux")]
mod deathsig;
pub mod env;
pub mod git;
pub mod preset;
pub mod secrets;
pub mod signals;
pub mod spawn;
