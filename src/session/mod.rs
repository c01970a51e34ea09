//! Running a child command inside a session: its environment (`env`, pure), starting it
//! (`spawn`), passing signals on while it runs (`signals`) and the preset its program implies
//! (`preset`, pure), and keeping the real keys `run` holds out of the child's reach
//! (`secrets`).

pub mod env;
pub mod preset;
pub mod secrets;
pub mod signals;
pub mod spawn;
