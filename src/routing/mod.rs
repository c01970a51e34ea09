//! Routing: which provider serves a request. `plan` is pure and decides from the request's model
//! and the config alone.

pub mod plan;
