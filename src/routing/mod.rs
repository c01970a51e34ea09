//! Routing: which targets serve a request (`plan`, pure), how healthy they are (`health`),
//! how long to wait between tries (`retry`, pure), and carrying it all out (`execute`).

pub mod execute;
pub mod health;
pub mod plan;
pub mod retry;
