//! The one way to assemble an `AppState`: what `run`, the daemon and `request` differ in, said
//! in one chain of calls, and the stores that must be opened in order (providers, then the
//! shared budgets in the ledger's file) opened by `build`.

use std::path::PathBuf;
use std::sync::Arc;

use super::{AppState, DaemonSessions, ParentProxy, SessionInfo};
use crate::budget::{SessionBudget, SharedBudget};
use crate::cache::CacheHandle;
use crate::capture::CaptureHandle;
use crate::config::Config;
use crate::ledger::{Ledger, LedgerError};
use crate::providers::ProviderError;
use crate::proxy::keys::ClientKeys;

/// Why a proxy could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot set up the providers")]
    Providers(#[source] ProviderError),
    #[error("cannot open the shared budgets")]
    SharedBudgets(#[source] LedgerError),
}

/// Which shared (daily/monthly) budgets a proxy keeps books in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SharedBooks {
    /// None (`smartproxy request`).
    None,
    /// The configured ones, if any (`run`).
    Configured,
    /// Always, so that client keys' budgets and reloads can add limits later (the daemon).
    Always,
}

/// An `AppState` being assembled; `AppState::builder` starts one.
pub struct StateBuilder {
    config: Arc<Config>,
    ledger: Ledger,
    budget: SessionBudget,
    session: SessionInfo,
    keys: ClientKeys,
    admin_keys: ClientKeys,
    ollama_keyless: bool,
    daemon_sessions: bool,
    config_source: Option<PathBuf>,
    cache: Option<CacheHandle>,
    capture: Option<Arc<CaptureHandle>>,
    cassette: Option<Arc<crate::cassette::Cassette>>,
    web: Option<Arc<crate::web::Web>>,
    forward_to_parent: Option<ParentProxy>,
    after_reload: Option<fn(&AppState)>,
    shared: SharedBooks,
    loop_markers: Option<PathBuf>,
}

impl AppState {
    /// A proxy of `config` recording to `ledger`: open to every client, no session budget, no
    /// cache, capture or shared budgets until the builder says otherwise.
    pub fn builder(config: Arc<Config>, ledger: Ledger) -> StateBuilder {
        StateBuilder {
            config,
            ledger,
            budget: SessionBudget::new(None),
            session: SessionInfo::default(),
            keys: ClientKeys::open(),
            admin_keys: ClientKeys::open(),
            ollama_keyless: false,
            daemon_sessions: false,
            config_source: None,
            cache: None,
            capture: None,
            cassette: None,
            web: None,
            forward_to_parent: None,
            after_reload: None,
            shared: SharedBooks::None,
            loop_markers: None,
        }
    }
}

impl StateBuilder {
    /// The session this proxy serves (`run`, `request`), with its own budget.
    pub fn session(mut self, session: SessionInfo, budget: SessionBudget) -> Self {
        self.session = session;
        self.budget = budget;
        self
    }

    /// The keys clients must present for the model API.
    pub fn client_keys(mut self, keys: ClientKeys) -> Self {
        self.keys = keys;
        self
    }

    /// The keys that open the admin endpoints.
    pub fn admin_keys(mut self, keys: ClientKeys) -> Self {
        self.admin_keys = keys;
        self
    }

    /// Ollama's `/api/*` served to loopback clients without a key.
    pub fn ollama_keyless(mut self) -> Self {
        self.ollama_keyless = true;
        self
    }

    /// The daemon's shape: a ledger session per client key and day, shared budget books kept
    /// always, reloads from `config_source`, `after_reload` run after each.
    pub fn daemon(mut self, config_source: Option<PathBuf>, after_reload: fn(&AppState)) -> Self {
        self.daemon_sessions = true;
        self.shared = SharedBooks::Always;
        self.config_source = config_source;
        self.after_reload = Some(after_reload);
        self
    }

    /// The configured shared budgets, if the config has any (`run`).
    pub fn shared_budgets(mut self) -> Self {
        if self.shared == SharedBooks::None {
            self.shared = SharedBooks::Configured;
        }
        self
    }

    /// The response cache and body capture, each when enabled.
    pub fn stores(
        mut self,
        cache: Option<CacheHandle>,
        capture: Option<Arc<CaptureHandle>>,
    ) -> Self {
        self.cache = cache;
        self.capture = capture;
        self
    }

    /// The cassette a `run` session records to or replays from.
    pub fn cassette(mut self, cassette: Option<Arc<crate::cassette::Cassette>>) -> Self {
        self.cassette = cassette;
        self
    }

    /// The web dashboard the admin listener serves.
    pub fn web(mut self, web: crate::web::Web) -> Self {
        self.web = Some(Arc::new(web));
        self
    }

    /// Under a nested `run`: the outer session's proxy, told this session's id.
    pub fn forward_to_parent(mut self, parent: Option<ParentProxy>) -> Self {
        self.forward_to_parent = parent;
        self
    }

    /// The folder where the loop breaker leaves a stopped session's marker, which `smartproxy
    /// resume` removes (`run` and the daemon: the runtime folder's `loops`).
    pub fn loop_markers(mut self, dir: PathBuf) -> Self {
        self.loop_markers = Some(dir);
        self
    }

    /// The state: providers built from the config, the shared budgets opened in the ledger's
    /// file.
    pub fn build(self) -> Result<AppState, BuildError> {
        let mut state = AppState::new(
            self.config,
            self.ledger,
            self.budget,
            self.session,
            self.keys,
        )
        .map_err(BuildError::Providers)?;
        // The shared books live in the ledger: its SQLite file, or its PostgreSQL database.
        let shared_budget = match self.shared {
            SharedBooks::None => None,
            books => SharedBudget::open(
                &state.ledger,
                &state.runtime().config.budget,
                books == SharedBooks::Always,
            )
            .map_err(BuildError::SharedBudgets)?
            .map(Arc::new),
        };
        state.admin_keys = self.admin_keys;
        state.ollama_keyless = self.ollama_keyless;
        state.daemon_sessions = self.daemon_sessions.then(DaemonSessions::default);
        state.config_source = self.config_source;
        state.cache = self.cache;
        state.capture = self.capture;
        state.cassette = self.cassette;
        state.web = self.web;
        state.forward_to_parent = self.forward_to_parent;
        state.after_reload = self.after_reload;
        state.shared_budget = shared_budget;
        state.notifier = crate::notify::Notifier::start(&state.runtime().config.notify);
        state.loops = crate::proxy::loop_breaker::LoopBreaker::new(self.loop_markers);
        Ok(state)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parts(budget_yaml: &str) -> (tempfile::TempDir, Arc<Config>, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::from_yaml(budget_yaml, None, &|_| None)
            .unwrap()
            .mock_only();
        let ledger = Ledger::open(&dir.path().join("ledger.db")).unwrap();
        (dir, Arc::new(config), ledger)
    }

    #[test]
    fn a_bare_proxy_is_open_and_keeps_no_shared_books() {
        let (_dir, config, ledger) = parts("budget:\n  daily_usd: 1\n");
        let state = AppState::builder(config, ledger).build().unwrap();
        assert!(state.keys.is_open());
        assert!(state.admin_keys.is_empty());
        assert!(state.shared_budget.is_none());
        assert!(state.daemon_sessions.is_none());
        assert!(!state.ollama_keyless);
    }

    #[test]
    fn a_run_keeps_shared_books_only_when_configured() {
        let (_dir, config, ledger) = parts("budget:\n  daily_usd: 1\n");
        let state = AppState::builder(config, ledger)
            .shared_budgets()
            .build()
            .unwrap();
        assert!(state.shared_budget.is_some());
        let (_dir, config, ledger) = parts("");
        let state = AppState::builder(config, ledger)
            .shared_budgets()
            .build()
            .unwrap();
        assert!(state.shared_budget.is_none());
    }

    #[test]
    fn a_daemon_keeps_shared_books_always_and_a_session_per_key() {
        fn after(_: &AppState) {}
        let (_dir, config, ledger) = parts("");
        let state = AppState::builder(config, ledger)
            .client_keys(ClientKeys::single("k", "secret-key"))
            .daemon(None, after)
            .build()
            .unwrap();
        assert!(state.shared_budget.is_some());
        assert!(state.daemon_sessions.is_some());
        assert!(state.after_reload.is_some());
        assert!(!state.keys.is_open());
    }
}
