//! Running a child command inside a session: its environment (`env`, pure), starting it
//! (`spawn`, which on Linux has it die with smartproxy: `deathsig`) and passing signals on while
//! it runs (`signals`).

#[cfg(target_os = "linux")]
mod deathsig;
pub mod env;
pub mod signals;
pub mod spawn;
