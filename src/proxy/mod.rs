//! The proxy: an HTTP server that takes requests in OpenAI's, Anthropic's and Ollama's formats
//! and sends them on.
//!
//! - `server` accepts connections; `router` (public listener) and `admin` (admin listener) map
//!   paths to handlers; `auth` decides who may use which endpoint.
//! - Model requests run `pipeline`: one `RequestCtx` through the phases admit -> loops -> route -> cache
//!   -> budget -> attempt -> reply (the table of what each reads and writes is in its module
//!   doc). `stream` relays streamed replies event by event and writes the row when they end.
//! - `dialect` owns everything that differs by client format: reading requests, framing
//!   replies, errors and stream events. `error` is the one place that picks status codes.
//! - `views` are the endpoints that need no provider; `headers` the `x-smartproxy-*` headers;
//!   `context` the per-request ledger row (`Finalizer`, written exactly once).
//! - `loop_breaker` watches each session's newest turns and stops a runaway agent.

pub mod admin;
pub mod auth;
pub mod body;
mod context;
mod dialect;
pub mod error;
mod headers;
pub mod keys;
pub mod loop_breaker;
pub mod metrics;
mod pipeline;
mod router;
pub mod server;
mod state;
mod stored_responses;
mod stream;
mod views;

pub use keys::ClientKeys;
pub use server::Listener;
pub use server::Server;
pub use state::{AppState, DaemonSessions, ParentProxy, Runtime, SessionInfo};
