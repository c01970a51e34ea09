//! A daemon on a team (PostgreSQL) ledger accepts the ledger's client keys: read at start, then
//! kept current by a watcher task that `LISTEN`s for changes (`ledger::postgres::keys::watch`),
//! so a key revoked or created anywhere takes effect here within moments. The request path
//! only ever reads the in-memory set (`ClientKeys`), never the network.

use std::sync::Arc;

use anyhow::Context;

use crate::budget::scopes::{Holder, Payer};
use crate::config::{LedgerLocation, PgUrl};
use crate::ledger::Ledger;
use crate::ledger::postgres::keys::{self as pg, ActiveKey};
use crate::printer;
use crate::proxy::AppState;
use crate::proxy::keys::ClientKey;

/// The in-memory key for a stored one: its holder, team and the limits of all three ride
/// along for the budget phase, which admits the request against each limit set.
fn client_key(stored: ActiveKey) -> ClientKey {
    let mut key = ClientKey::new(&stored.name, stored.digest);
    let payer = |holder, name: &str, limits: pg::Limits| Payer {
        holder,
        name: name.to_owned(),
        daily_usd: limits.daily_usd,
        monthly_usd: limits.monthly_usd,
        weekly_usd: limits.weekly_usd,
        windows: limits.windows,
    };
    key.payers = vec![
        payer(Holder::Key, &stored.name, stored.limits),
        payer(Holder::User, &stored.user, stored.user_limits),
        payer(Holder::Team, &stored.team, stored.team_limits),
    ];
    key.user = Some(stored.user);
    key.team = Some(stored.team);
    key
}

/// The ledger's active keys, read once at start (outside the runtime: it blocks).
pub(super) fn load(
    ledger: &Ledger,
    config: &crate::config::Config,
) -> anyhow::Result<Vec<ClientKey>> {
    let Some(handle) = ledger.postgres() else {
        return Ok(Vec::new());
    };
    let stored = handle
        .block_on(|client| async move { pg::active(&client).await })
        .context("cannot read the client keys from the PostgreSQL ledger")?;
    // Traffic is tagged by key name: a config key named like a ledger key would be counted
    // under the ledger key's user and team.
    for configured in &config.client_keys {
        if stored.iter().any(|k| k.name == configured.name) {
            printer::warn(&format!(
                "client key `{}` is named both in the config and in the PostgreSQL ledger: the \
                 ledger counts both keys' requests under the ledger key's user and team; rename \
                 the config's",
                configured.name
            ));
        }
    }
    Ok(stored.into_iter().map(client_key).collect())
}

/// The running watcher; `stop` ends it and waits for it.
pub(super) struct Watcher {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts watching the ledger's keys when the daemon's ledger is PostgreSQL.
pub(super) fn start(state: &Arc<AppState>) -> Option<Watcher> {
    let url: PgUrl = match &state.runtime().config.database {
        LedgerLocation::Postgres(url) => url.clone(),
        LedgerLocation::Sqlite(_) => return None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = Arc::clone(state);
    let mut accepted = state.keys.stored_names();
    let task = tokio::spawn(async move {
        let on_keys = move |stored: Vec<ActiveKey>| {
            let names: Vec<String> = stored.iter().map(|k| k.name.clone()).collect();
            state
                .keys
                .set_stored(stored.into_iter().map(client_key).collect());
            if names != accepted {
                printer::note(&format!(
                    "client keys changed in the ledger ({} accepted)",
                    names.len()
                ));
                accepted = names;
            }
        };
        pg::watch(&url, on_keys, async move {
            let _ = stopped.await;
        })
        .await;
    });
    Some(Watcher { stop, task })
}

impl Watcher {
    pub(super) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}
