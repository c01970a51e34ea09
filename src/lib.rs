//! smartproxy: a local-first LLM proxy that launches and instruments the AI tools you run.
//!
//! The house plan, module by module, is `src/ARCHITECTURE.md`. Dependencies point one way:
//! `cli -> {proxy, session, dash, web} -> {routing, budget, cache, capture, ledger, providers}
//! -> {translate, transform, pricing, wire, config, db, private_files, format, http_server}`;
//! the daemon's admin listener (`proxy::admin`) hands the dashboard's paths to `web`.

pub mod budget;
pub mod cache;
pub mod capture;
pub mod cassette;
pub mod cli;
pub mod config;
pub mod dash;
pub mod db;
pub mod format;
pub mod http_guard;
pub mod http_server;
pub mod key_throttle;
pub mod ledger;
pub mod notify;
pub mod pricing;
pub mod printer;
pub mod private_files;
pub mod process;
pub mod providers;
pub mod proxy;
pub mod routing;
pub mod seal;
pub mod session;
pub mod telemetry;
pub mod transform;
pub mod translate;
pub mod web;
pub mod wire;
