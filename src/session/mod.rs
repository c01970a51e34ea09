//! Running a child command inside a session: its environment (`env`, pure), starting it
//! (`spawn`), passing signals on while it runs (`signals`) and the preset its program implies
//! (`preset`, pure).

pub mod env;
pub mod preset;
pub mod signals;
pub mod spawn;
