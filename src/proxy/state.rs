//! What every request handler shares: the live config and providers (swapped whole on reload),
//! the ledger, budgets, breakers, keys, cache and metrics.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::Datelike;

mod builder;

use super::keys::ClientKeys;
use super::metrics;
use crate::budget::SessionBudget;
use crate::config::Config;
use crate::ledger::{Anomaly, Ledger, Outcome, now_ms};
use crate::pricing::{Bill, PriceBook, TokenCounts, UsageDetail};
use crate::providers::{self, Provider, ProviderError};
use crate::routing::health::{Health, Transition};
use crate::transform::Transforms;

/// The header a nested `run`'s proxy sends its parent session's proxy: its own session id.
pub const FORWARDED_SESSION: &str = "x-smartproxy-forwarded-session";

/// The proxy of the session a `run` was started in, which its providers may point at.
#[derive(Debug, Clone)]
pub struct ParentProxy {
    /// `http://127.0.0.1:PORT`, the parent's `SMARTPROXY_URL`.
    pub url: String,
    /// This (the nested) session's id.
    pub session_id: String,
}

impl ParentProxy {
    /// Whether `base_url` is on the parent's proxy (same origin, any path).
    pub fn serves(&self, base_url: &str) -> bool {
        base_url
            .strip_prefix(self.url.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// The status recorded for requests whose client disconnected (nginx's convention).
const CLIENT_CLOSED: u16 = 499;

/// The daemon's ledger sessions: one per client key and local day, opened on first use.
#[derive(Debug, Default)]
pub struct DaemonSessions {
    opened: Mutex<HashMap<String, Arc<str>>>,
}

impl DaemonSessions {
    /// The session id for traffic of `key_name` today, opening the session row the first time
    /// (attributed to `project`, the config's `project:`).
    pub fn session_for(&self, ledger: &Ledger, key_name: &str, project: Option<&str>) -> Arc<str> {
        // Numbers, not chrono's `format("%Y%m%d")`, which parses its pattern on every request.
        let day = chrono::Local::now().date_naive();
        let id = format!(
            "daemon-{:04}{:02}{:02}-{key_name}",
            day.year(),
            day.month(),
            day.day()
        );
        let mut opened = self
            .opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(shared) = opened.get(&id) {
            return Arc::clone(shared);
        }
        {
            // INSERT OR IGNORE: a restarted daemon finds today's session already there.
            ledger.session_started(crate::ledger::SessionStart {
                id: id.clone(),
                parent_id: None,
                kind: "daemon",
                tag: Some(key_name.to_owned()),
                program: Some("smartproxy daemon".to_owned()),
                cwd: None,
                pid: Some(std::process::id()),
                started_ms: now_ms(),
                budget_usd: None,
                attribution: crate::ledger::Attribution {
                    project: project.map(str::to_owned),
                    ..Default::default()
                },
            });
        }
        let shared: Arc<str> = Arc::from(id.as_str());
        opened.insert(id, Arc::clone(&shared));
        shared
    }

    /// Records the end of every session this daemon opened: it is stopping. (A daemon that dies
    /// without getting here leaves them open; readers show them `ended (lost)`.)
    pub fn close_all(&self, ledger: &Ledger) {
        let opened = std::mem::take(
            &mut *self
                .opened
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let ended_ms = now_ms();
        for id in opened.into_keys() {
            ledger.session_ended(crate::ledger::SessionEnd {
                id,
                ended_ms,
                exit_code: None,
                end_branch: None,
                end_head: None,
            });
        }
    }
}

/// Who the proxy serves: a `run` session, or nobody in particular (the daemon).
#[derive(Debug, Clone, Default)]
pub struct SessionInfo {
    pub id: Option<String>,
    pub tag: Option<String>,
}

/// What a config turns into: the config itself, its providers and its prices. Replaced whole
/// on reload; a request keeps the one it started with.
pub struct Runtime {
    pub config: Arc<Config>,
    pub providers: Vec<Arc<dyn Provider>>,
    pub prices: PriceBook,
    pub loaded_ms: i64,
}

impl Runtime {
    pub fn build(config: Arc<Config>) -> Result<Self, ProviderError> {
        Ok(Self {
            providers: providers::build_all(&config)?,
            prices: PriceBook::new(config.pricing.clone()).with_overlay(installed_overlay()),
            config,
            loaded_ms: now_ms(),
        })
    }
}

/// The price overlay of `smartproxy prices update`, read once per config (re)load. A broken
/// one is a warning naming the file, and the built-in table prices instead: a bad price file
/// must not stop the proxy.
fn installed_overlay() -> Option<Arc<crate::pricing::Overlay>> {
    let path = crate::config::paths::price_overlay();
    match crate::pricing::Overlay::load(&path) {
        Ok(overlay) => overlay.map(Arc::new),
        Err(err) => {
            tracing::warn!(
                "ignoring the price overlay: {err}; fix it with `smartproxy prices update` or remove it with `smartproxy prices reset`"
            );
            None
        }
    }
}

/// What a reload took up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Where the config came from.
    pub source: String,
    /// Changed keys the running daemon takes up only at its next start.
    pub restart_needed: Vec<&'static str>,
}

/// Everything a request handler needs, shared by all connections.
pub struct AppState {
    runtime: RwLock<Arc<Runtime>>,
    pub ledger: Ledger,
    pub budget: SessionBudget,
    pub session_id: Option<Arc<str>>,
    /// The session's `--tag`, which routing rules can match.
    pub session_tag: Option<String>,
    /// Circuit breakers, kept across reloads (they are keyed by provider and model name).
    pub health: Health,
    /// The keys clients may present; none leaves the proxy open (loopback daemon default).
    pub keys: ClientKeys,
    /// The keys that open the admin endpoints (`SMARTPROXY_ADMIN_KEY` on the daemon, the
    /// session key under `run`). Empty: admin is open only while client keys are too.
    pub admin_keys: ClientKeys,
    /// The web dashboard the admin listener serves (the daemon's), with its own access rules.
    pub web: Option<Arc<crate::web::Web>>,
    /// Ollama's `/api/*` served to loopback clients without a key: always on a `run` session's
    /// own proxy, on the daemon only with `ollama.keyless: true`.
    pub ollama_keyless: bool,
    /// The daemon's sessions, one per client key and day; `None` under `run`.
    pub daemon_sessions: Option<DaemonSessions>,
    /// The config file to reload from (the daemon's); `None`: built-in defaults.
    pub config_source: Option<std::path::PathBuf>,
    pub metrics: metrics::Metrics,
    /// The response cache, when `cache.enabled`.
    pub cache: Option<crate::cache::CacheHandle>,
    /// The body capture, when `capture.enabled` (opt-in; off, requests pay one branch).
    pub capture: Option<Arc<crate::capture::CaptureHandle>>,
    /// `run --record`/`--replay`'s cassettes (off: one branch per request).
    pub cassette: Option<Arc<crate::cassette::Cassette>>,
    /// Daily and monthly limits shared through the ledger, when configured.
    pub shared_budget: Option<Arc<crate::budget::SharedBudget>>,
    /// Run after a successful `POST /admin/reload` (the daemon reloads its client keys).
    pub after_reload: Option<fn(&AppState)>,
    /// Models already warned about for having no price.
    unpriced_warned: Mutex<HashSet<String>>,
    /// Budgets already warned about for being mostly used.
    budget_warned: Mutex<HashSet<&'static str>>,
    /// Where budget warnings (and the loop breaker's alerts) are sent, when `notify:` says.
    pub notifier: Option<Arc<crate::notify::Notifier>>,
    /// Wrong client and admin keys per client address off loopback (`proxy::auth`).
    pub key_throttle: crate::key_throttle::KeyThrottle,
    /// Set when the drain grace ran out: requests dropped after this were cut by smartproxy.
    stopped: AtomicBool,
    /// Set (after `stopped`) to end the streams still open with an error event each.
    cut_streams: tokio::sync::watch::Sender<bool>,
    /// Under a nested `run`: the outer session's proxy, and this session's id to tell it, so
    /// that the outer proxy forwards without recording the request a second time.
    pub forward_to_parent: Option<ParentProxy>,
    /// Nested sessions found in the ledger to be children of this one.
    children: Mutex<HashSet<String>>,
    /// The runaway-loop breaker's watch on each session.
    pub loops: super::loop_breaker::LoopBreaker,
}

impl AppState {
    /// The state with the parts every proxy has; `StateBuilder` adds the rest.
    fn new(
        config: Arc<Config>,
        ledger: Ledger,
        budget: SessionBudget,
        session: SessionInfo,
        keys: ClientKeys,
    ) -> Result<Self, ProviderError> {
        let health = Health::new(
            config.resilience.breaker_failures,
            config.resilience.breaker_cooldown,
        );
        Ok(Self {
            runtime: RwLock::new(Arc::new(Runtime::build(config)?)),
            ledger,
            budget,
            session_id: session.id.map(Arc::from),
            session_tag: session.tag,
            health,
            keys,
            admin_keys: ClientKeys::open(),
            web: None,
            ollama_keyless: false,
            daemon_sessions: None,
            config_source: None,
            metrics: metrics::Metrics::default(),
            cache: None,
            capture: None,
            cassette: None,
            shared_budget: None,
            after_reload: None,
            unpriced_warned: Mutex::default(),
            budget_warned: Mutex::default(),
            notifier: None,
            key_throttle: crate::key_throttle::KeyThrottle::default(),
            stopped: AtomicBool::new(false),
            cut_streams: tokio::sync::watch::Sender::new(false),
            forward_to_parent: None,
            children: Mutex::default(),
            loops: super::loop_breaker::LoopBreaker::new(None),
        })
    }

    /// The current config and providers. Cheap: an `Arc` clone under a read lock that is never
    /// held across an await.
    pub fn runtime(&self) -> Arc<Runtime> {
        Arc::clone(
            &self
                .runtime
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Swaps in a new config; requests in flight finish on the one they started with.
    pub fn reload(&self, config: Arc<Config>) -> Result<(), ProviderError> {
        let fresh = Arc::new(Runtime::build(config)?);
        *self
            .runtime
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// Reads the config file again and swaps it in; a bad one is refused with its errors and the
    /// old one keeps serving.
    pub fn reload_from_source(&self) -> Result<Reloaded, String> {
        let cwd = std::env::current_dir()
            .map_err(|e| format!("cannot read the current directory: {e}"))?;
        let env = |name: &str| std::env::var(name).ok();
        let config = crate::config::load(self.config_source.as_deref(), &cwd, &env)
            .map_err(|e| e.to_string())?;
        let source = config.source_display();
        let restart_needed = self.runtime().config.restart_only_changes(&config);
        self.reload(Arc::new(config)).map_err(|e| e.to_string())?;
        tracing::info!(%source, "config reloaded");
        if !restart_needed.is_empty() {
            tracing::warn!(
                "changed settings that take effect only when the daemon restarts: {}",
                restart_needed.join(", ")
            );
        }
        Ok(Reloaded {
            source,
            restart_needed,
        })
    }

    /// The cost of `tokens` on `model`; None (and a warning, once per model) when it has no price.
    pub fn cost_usd(
        &self,
        provider: Option<&str>,
        model: &str,
        tokens: TokenCounts,
    ) -> Option<f64> {
        self.cost_usd_with(provider, model, tokens, UsageDetail::default())
    }

    /// [`Self::cost_usd`] of a request's whole usage (cache lifetimes, reasoning tokens, web
    /// searches, service tier).
    pub fn cost_usd_with(
        &self,
        provider: Option<&str>,
        model: &str,
        tokens: TokenCounts,
        detail: UsageDetail,
    ) -> Option<f64> {
        self.bill(provider, model, tokens, detail)
            .map(|bill| bill.cost_usd)
    }

    /// [`Self::cost_usd_with`] with the time-of-day price it paid.
    pub fn bill(
        &self,
        provider: Option<&str>,
        model: &str,
        tokens: TokenCounts,
        detail: UsageDetail,
    ) -> Option<Bill> {
        let rt = self.runtime();
        let mut cost = rt.prices.bill(provider, model, tokens, detail);
        // `budget.unpriced: {price_as: M}`: a model with no price of its own pays M's.
        if cost.is_none()
            && let crate::config::Unpriced::PriceAs(stand_in) = &rt.config.budget.unpriced
        {
            cost = rt.prices.bill(None, stand_in, tokens, detail);
        }
        if cost.is_none() {
            let mut warned = self
                .unpriced_warned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !warned.contains(model) {
                warned.insert(model.to_owned());
                tracing::warn!(
                    model,
                    "no price known for this model; its cost is recorded as unknown (add it under `pricing:`)"
                );
            }
        }
        cost
    }

    /// Logs `warning` and notifies (`notify:`) the first time budget `name` passes its
    /// warning mark (responses say it every time, in a header).
    pub fn warn_budget_once(
        &self,
        name: &'static str,
        warning: &str,
        spent_usd: f64,
        limit_usd: f64,
    ) {
        let first = self
            .budget_warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name);
        if first {
            tracing::warn!("{warning}");
            if let Some(notifier) = &self.notifier {
                notifier.send(crate::notify::Event::BudgetWarning {
                    scope: name.to_owned(),
                    session: self.session_id.as_deref().map(str::to_owned),
                    spent_usd,
                    limit_usd,
                });
            }
        }
    }

    /// Records a circuit breaker opening or closing as a ledger anomaly, and logs it.
    pub fn record_transition(&self, provider: &str, model: &str, transition: Transition) {
        let (kind, detail) = match transition {
            Transition::Opened { failures } => {
                tracing::warn!(provider, model, failures, "circuit opened");
                ("circuit_open", format!("{failures} consecutive failures"))
            }
            Transition::Closed => {
                tracing::info!(provider, model, "circuit closed");
                ("circuit_closed", "a probe succeeded".to_owned())
            }
        };
        self.ledger.anomaly(Anomaly {
            at_ms: now_ms(),
            session_id: self.session_id.as_deref().map(str::to_owned),
            kind,
            provider: provider.to_owned(),
            model: model.to_owned(),
            detail,
        });
    }

    /// Whether `session` is a `run` started inside this proxy's session (its parent in the
    /// ledger, SQLite or PostgreSQL). Its row may lag its first request by the writer's commit
    /// window, so a missing row is looked for again for up to two seconds. Blocking: call off
    /// the runtime.
    pub fn is_child_session(&self, session: &str) -> bool {
        let Some(own) = self.session_id.as_deref() else {
            return false;
        };
        let known = |s: &Self| {
            s.children
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains(session)
        };
        if known(self) {
            return true;
        }
        // Either backend: on PostgreSQL the outer proxy would otherwise record a nested
        // run's requests a second time.
        let limit = std::time::Duration::from_secs(2);
        let Ok(reader) =
            crate::ledger::reader::LedgerReader::open_within(self.ledger.location(), limit)
        else {
            return false;
        };
        let deadline = std::time::Instant::now() + limit;
        loop {
            if reader.is_child_of(session, own).unwrap_or(false) {
                self.children
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(session.to_owned());
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            #[allow(
                clippy::disallowed_methods,
                reason = "is_child_session runs under spawn_blocking, off the runtime"
            )]
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Marks the proxy as stopped: requests still open are being cut by smartproxy itself.
    pub fn mark_stopped(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Ends every stream still open with a well-formed error event (the drain grace ran out).
    pub fn cut_streams(&self) {
        self.mark_stopped();
        self.cut_streams.send_replace(true);
    }

    /// Resolves once [`Self::cut_streams`] is called: what a stream relay waits on beside its
    /// provider.
    pub fn stream_cut(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let mut cut = self.cut_streams.subscribe();
        Box::pin(async move {
            // An error means the state is gone; the relay then never needs cutting.
            if cut.wait_for(|cut| *cut).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }

    /// How a request dropped before its end is recorded: the client left, or smartproxy stopped.
    pub fn dropped_ending(&self) -> (u16, Outcome, &'static str) {
        if self.stopped.load(Ordering::Relaxed) {
            (503, Outcome::ProxyStopped, "proxy_stopped")
        } else {
            (CLIENT_CLOSED, Outcome::ClientClosed, "client_closed")
        }
    }

    /// The response transforms the config turns on.
    pub fn transforms(&self) -> Transforms {
        let t = self.runtime().config.transforms;
        Transforms {
            strip_thinking: t.strip_thinking,
            unwrap_json_fence: t.unwrap_json_fence,
            disable_thinking: t.disable_thinking,
        }
    }

    /// Models seen without a price, for the run summary.
    pub fn unpriced_models(&self) -> Vec<String> {
        let warned = self
            .unpriced_warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut models: Vec<String> = warned.iter().cloned().collect();
        models.sort();
        models
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_proxy_is_matched_by_origin_not_by_text_prefix() {
        let parent = ParentProxy {
            url: "http://127.0.0.1:4567".to_owned(),
            session_id: "s".to_owned(),
        };
        assert!(parent.serves("http://127.0.0.1:4567/v1"));
        assert!(parent.serves("http://127.0.0.1:4567"));
        assert!(!parent.serves("http://127.0.0.1:45678/v1"));
        assert!(!parent.serves("https://api.openai.com/v1"));
    }
}
