//! Running a child command inside a session: its environment (`env`, pure), starting it
//! (`spawn`) and passing signals on while it runs (`signals`).

pub mod env;
pub mod signals;
pub mod spawn;
