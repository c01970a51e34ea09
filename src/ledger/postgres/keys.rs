//! Client keys in a PostgreSQL ledger (team mode): `smartproxy keys create | list | revoke`,
//! the set a daemon accepts, and the `LISTEN` loop that hands every daemon a fresh set within
//! moments of any change.
//!
//! Users and teams may carry daily, weekly and monthly limits and rolling windows of their own
//! (`keys limit`), read with the keys and notified on the same channel.
//!
//! Only a key's SHA-256 digest is stored. A trigger (migration `pgkeys`) sends a `NOTIFY` on
//! `smartproxy_keys` after every statement that changes `client_keys`, so a revoke made with
//! `smartproxy keys revoke`, or by hand in SQL, reaches every listening daemon at its commit.
//! A daemon keeps one dedicated connection for it; when that connection drops it reconnects
//! with backoff and re-reads the whole set, so a change made while it was away is not missed.
//! A slow re-read (`REREAD`) on the same connection is only a safety net.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio_postgres::{AsyncMessage, Client};

use super::tls::MakeRustls;

use super::super::LedgerError;
use super::super::keys::{KeyError, Revoked};
use super::{describe, rows::nanos};
use crate::config::{PgUrl, WindowLimit};

/// The channel the trigger notifies and every daemon listens on.
pub const CHANNEL: &str = "smartproxy_keys";

/// The `application_name` of a daemon's listening connection (to find it in
/// `pg_stat_activity`).
pub const LISTENER_NAME: &str = "smartproxy-keys";

/// The safety re-read of the whole set, besides the notifications.
pub const REREAD: Duration = Duration::from_secs(60);

/// How long connecting or one read may take before the connection counts as lost.
const TIMEOUT: Duration = Duration::from_secs(10);

const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A key as `keys list` shows it: never its digest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamKeyRow {
    pub name: String,
    pub user: String,
    pub team: String,
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    pub weekly_usd: Option<f64>,
    pub windows: Vec<WindowLimit>,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// A key a daemon accepts: its digest, who holds it and its limits, and its user's and team's
/// limits (`keys limit`).
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveKey {
    pub name: String,
    pub digest: [u8; 32],
    pub user: String,
    pub team: String,
    pub limits: Limits,
    pub user_limits: Limits,
    pub team_limits: Limits,
}

/// A holder's daily, weekly and monthly limits and rolling windows in USD (none: no limit).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Limits {
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    pub weekly_usd: Option<f64>,
    pub windows: Vec<WindowLimit>,
}

/// A change to a holder's limits: `None` leaves one as it is, `Some(None)` (windows:
/// `Some(empty)`) removes it.
#[derive(Debug, Clone, Default)]
pub struct LimitChange {
    pub daily_usd: Option<Option<f64>>,
    pub weekly_usd: Option<Option<f64>>,
    pub monthly_usd: Option<Option<f64>>,
    pub windows: Option<Vec<WindowLimit>>,
}

/// Windows as stored (`window_limits`): `EVERY_MS=NANO_USD` joined by commas; none: NULL.
pub fn windows_text(windows: &[WindowLimit]) -> Option<String> {
    (!windows.is_empty()).then(|| {
        windows
            .iter()
            .map(|w| format!("{}={}", w.every_ms, nanos(w.usd)))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// Windows read back; a malformed pair (edited by hand) is skipped with a warning.
pub fn windows_from(text: Option<&str>) -> Vec<WindowLimit> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Vec::new();
    };
    text.split(',')
        .filter_map(|pair| {
            let parsed = pair.split_once('=').and_then(|(every, usd)| {
                Some(WindowLimit {
                    every_ms: every.trim().parse().ok().filter(|ms| *ms > 0)?,
                    usd: usd.trim().parse::<i64>().ok().filter(|n| *n >= 0)? as f64 / 1e9,
                })
            });
            if parsed.is_none() {
                tracing::warn!("malformed rolling window limit in the ledger ignored");
            }
            parsed
        })
        .collect()
}

/// Whose limits `set_limits` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitHolder {
    User,
    Team,
}

impl LimitHolder {
    fn table(self) -> &'static str {
        match self {
            Self::User => "people",
            Self::Team => "teams",
        }
    }
}

/// A user's or team's limits as `keys limit` shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HolderLimits {
    pub name: String,
    #[serde(flatten)]
    pub limits: Limits,
}

/// A key to store (validated by the caller with `ledger::keys::validate_team_key`).
#[derive(Debug, Clone)]
pub struct NewKey<'a> {
    pub name: &'a str,
    pub digest: [u8; 32],
    pub user: &'a str,
    pub team: &'a str,
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    pub weekly_usd: Option<f64>,
    pub windows: &'a [WindowLimit],
    pub created_ms: i64,
}

fn ledger_error(url: &PgUrl, err: &tokio_postgres::Error) -> KeyError {
    KeyError::Ledger(LedgerError::Postgres {
        url: url.redacted().to_owned(),
        detail: describe(err),
    })
}

fn dollars(nanos: Option<i64>) -> Option<f64> {
    nanos.map(|n| n as f64 / 1e9)
}

/// The driver's settings for `url`, under `application_name`.
fn config(
    url: &PgUrl,
    application_name: &str,
) -> Result<(tokio_postgres::Config, MakeRustls), LedgerError> {
    let (mut config, tls) =
        super::tls::connect_config(url).map_err(|detail| LedgerError::Postgres {
            url: url.redacted().to_owned(),
            detail,
        })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(TIMEOUT);
    }
    // A connection whose peer vanished (no FIN) is noticed within about a minute.
    config.keepalives_idle(Duration::from_secs(30));
    config.application_name(application_name);
    Ok((config, tls))
}

/// Runs `work` on one connection (migrated first: `keys create` may be the first command
/// ever run against the database), on a runtime of its own. For the synchronous CLI, which
/// runs outside any runtime.
fn with_client<T>(
    url: &PgUrl,
    work: impl AsyncFnOnce(&mut Client) -> Result<T, KeyError>,
) -> Result<T, KeyError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            KeyError::Ledger(LedgerError::Postgres {
                url: url.redacted().to_owned(),
                detail: e.to_string(),
            })
        })?;
    runtime.block_on(async {
        let (config, tls) = config(url, "smartproxy")?;
        let (mut client, connection) = config
            .connect(tls)
            .await
            .map_err(|e| ledger_error(url, &e))?;
        // Awaited below once the client is dropped, which ends it.
        let driver = tokio::spawn(connection);
        let result = match super::migrations::migrate(&mut client).await {
            Ok(_) => work(&mut client).await,
            Err(super::migrations::MigrateError::TooNew { found }) => {
                Err(KeyError::Ledger(LedgerError::PostgresTooNew {
                    url: url.redacted().to_owned(),
                    found,
                    known: super::migrations::CURRENT,
                }))
            }
            Err(super::migrations::MigrateError::Db(e)) => Err(ledger_error(url, &e)),
        };
        drop(client);
        let _ = driver.await;
        result
    })
}

/// Stores a new key (its user and team are added to `people` and `teams` when new); a name
/// already used, even by a revoked key, is refused.
pub fn create(url: &PgUrl, key: &NewKey<'_>) -> Result<(), KeyError> {
    with_client(url, async |client| {
        let fail = |e: tokio_postgres::Error| ledger_error(url, &e);
        let tx = client.transaction().await.map_err(fail)?;
        tx.execute(
            "INSERT INTO teams (name, created_ms) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&key.team, &key.created_ms],
        )
        .await
        .map_err(fail)?;
        tx.execute(
            "INSERT INTO people (name, created_ms) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&key.user, &key.created_ms],
        )
        .await
        .map_err(fail)?;
        let inserted = tx
            .execute(
                "INSERT INTO client_keys (name, digest, user_name, team, daily_nusd, monthly_nusd,
                     created_ms, weekly_nusd, window_limits)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (name) DO NOTHING",
                &[
                    &key.name,
                    &key.digest.as_slice(),
                    &key.user,
                    &key.team,
                    &key.daily_usd.map(nanos),
                    &key.monthly_usd.map(nanos),
                    &key.created_ms,
                    &key.weekly_usd.map(nanos),
                    &windows_text(key.windows),
                ],
            )
            .await
            .map_err(fail)?;
        if inserted == 0 {
            return Err(KeyError::Duplicate(key.name.to_owned()));
        }
        tx.commit().await.map_err(fail)
    })
}

/// Every key, oldest first, without digests.
pub fn list(url: &PgUrl) -> Result<Vec<TeamKeyRow>, KeyError> {
    with_client(url, async |client| {
        let rows = client
            .query(
                "SELECT name, user_name, team, daily_nusd, monthly_nusd, created_ms, revoked_ms,
                     weekly_nusd, window_limits
                 FROM client_keys ORDER BY created_ms, name",
                &[],
            )
            .await
            .map_err(|e| ledger_error(url, &e))?;
        Ok(rows
            .iter()
            .map(|r| TeamKeyRow {
                name: r.get(0),
                user: r.get(1),
                team: r.get(2),
                daily_usd: dollars(r.get(3)),
                monthly_usd: dollars(r.get(4)),
                created_ms: r.get(5),
                revoked_ms: r.get(6),
                weekly_usd: dollars(r.get(7)),
                windows: windows_from(r.get(8)),
            })
            .collect())
    })
}

/// Marks the key `name` revoked (the row stays, so the ledger's history keeps its name). The
/// trigger's `NOTIFY` goes out when this commits.
pub fn revoke(url: &PgUrl, name: &str, now_ms: i64) -> Result<Revoked, KeyError> {
    with_client(url, async |client| {
        let fail = |e: tokio_postgres::Error| ledger_error(url, &e);
        let tx = client.transaction().await.map_err(fail)?;
        let state: Option<Option<i64>> = tx
            .query_opt(
                "SELECT revoked_ms FROM client_keys WHERE name = $1 FOR UPDATE",
                &[&name],
            )
            .await
            .map_err(fail)?
            .map(|row| row.get(0));
        if state == Some(None) {
            tx.execute(
                "UPDATE client_keys SET revoked_ms = $2 WHERE name = $1",
                &[&name, &now_ms],
            )
            .await
            .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)?;
        match state {
            None => Err(KeyError::Unknown(name.to_owned())),
            Some(None) => Ok(Revoked::Now),
            Some(Some(at)) => Ok(Revoked::Already(at)),
        }
    })
}

/// Changes the limits of user or team `name` as `change` says; a user or team not known yet
/// is added, so a limit can come before the keys. The trigger's `NOTIFY` reaches every daemon
/// when this commits. Returns the limits now set.
pub fn set_limits(
    url: &PgUrl,
    holder: LimitHolder,
    name: &str,
    change: &LimitChange,
    now_ms: i64,
) -> Result<Limits, KeyError> {
    let (daily_usd, weekly_usd, monthly_usd) =
        (change.daily_usd, change.weekly_usd, change.monthly_usd);
    let windows = change.windows.as_deref().map(windows_text);
    let table = holder.table();
    with_client(url, async |client| {
        let fail = |e: tokio_postgres::Error| ledger_error(url, &e);
        let tx = client.transaction().await.map_err(fail)?;
        tx.execute(
            &format!(
                "INSERT INTO {table} (name, created_ms) VALUES ($1, $2) \
                 ON CONFLICT (name) DO NOTHING"
            ),
            &[&name, &now_ms],
        )
        .await
        .map_err(fail)?;
        let row = tx
            .query_one(
                &format!(
                    "UPDATE {table} SET
                         daily_nusd = CASE WHEN $2 THEN $3 ELSE daily_nusd END,
                         monthly_nusd = CASE WHEN $4 THEN $5 ELSE monthly_nusd END,
                         weekly_nusd = CASE WHEN $6 THEN $7 ELSE weekly_nusd END,
                         window_limits = CASE WHEN $8 THEN $9 ELSE window_limits END
                     WHERE name = $1
                     RETURNING daily_nusd, monthly_nusd, weekly_nusd, window_limits"
                ),
                &[
                    &name,
                    &daily_usd.is_some(),
                    &daily_usd.flatten().map(nanos),
                    &monthly_usd.is_some(),
                    &monthly_usd.flatten().map(nanos),
                    &weekly_usd.is_some(),
                    &weekly_usd.flatten().map(nanos),
                    &windows.is_some(),
                    &windows.clone().flatten(),
                ],
            )
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(Limits {
            daily_usd: dollars(row.get(0)),
            monthly_usd: dollars(row.get(1)),
            weekly_usd: dollars(row.get(2)),
            windows: windows_from(row.get(3)),
        })
    })
}

/// Every user or team that has a limit, by name.
pub fn holder_limits(url: &PgUrl, holder: LimitHolder) -> Result<Vec<HolderLimits>, KeyError> {
    let table = holder.table();
    with_client(url, async |client| {
        let rows = client
            .query(
                &format!(
                    "SELECT name, daily_nusd, monthly_nusd, weekly_nusd, window_limits
                     FROM {table}
                     WHERE num_nonnulls(daily_nusd, monthly_nusd, weekly_nusd, window_limits) > 0
                     ORDER BY name"
                ),
                &[],
            )
            .await
            .map_err(|e| ledger_error(url, &e))?;
        Ok(rows
            .iter()
            .map(|r| HolderLimits {
                name: r.get(0),
                limits: Limits {
                    daily_usd: dollars(r.get(1)),
                    monthly_usd: dollars(r.get(2)),
                    weekly_usd: dollars(r.get(3)),
                    windows: windows_from(r.get(4)),
                },
            })
            .collect())
    })
}

/// The keys not revoked, oldest first, with their user's and team's limits (a malformed
/// digest is skipped with a warning).
pub async fn active(client: &Client) -> Result<Vec<ActiveKey>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT k.name, k.digest, k.user_name, k.team, k.daily_nusd, k.monthly_nusd,
                 p.daily_nusd, p.monthly_nusd, t.daily_nusd, t.monthly_nusd,
                 k.weekly_nusd, k.window_limits, p.weekly_nusd, p.window_limits,
                 t.weekly_nusd, t.window_limits
             FROM client_keys k JOIN people p ON p.name = k.user_name
             JOIN teams t ON t.name = k.team
             WHERE k.revoked_ms IS NULL ORDER BY k.created_ms, k.name",
            &[],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.get(0);
        let bytes: Vec<u8> = row.get(1);
        let Ok(digest) = <[u8; 32]>::try_from(bytes.as_slice()) else {
            tracing::warn!(name, "client key with a malformed digest ignored");
            continue;
        };
        out.push(ActiveKey {
            name,
            digest,
            user: row.get(2),
            team: row.get(3),
            limits: Limits {
                daily_usd: dollars(row.get(4)),
                monthly_usd: dollars(row.get(5)),
                weekly_usd: dollars(row.get(10)),
                windows: windows_from(row.get(11)),
            },
            user_limits: Limits {
                daily_usd: dollars(row.get(6)),
                monthly_usd: dollars(row.get(7)),
                weekly_usd: dollars(row.get(12)),
                windows: windows_from(row.get(13)),
            },
            team_limits: Limits {
                daily_usd: dollars(row.get(8)),
                monthly_usd: dollars(row.get(9)),
                weekly_usd: dollars(row.get(14)),
                windows: windows_from(row.get(15)),
            },
        });
    }
    Ok(out)
}

/// Keeps `on_keys` fed with the active keys until `stop` resolves: on one dedicated
/// connection it `LISTEN`s, reads the whole set, and reads it again after every notification
/// (several queued ones are one re-read) and every `REREAD`. A dropped connection is
/// reconnected with backoff (200 ms doubling to 5 s), and the set re-read at once.
pub async fn watch(
    url: &PgUrl,
    mut on_keys: impl FnMut(Vec<ActiveKey>) + Send,
    stop: impl Future<Output = ()> + Send,
) {
    let (config, tls) = match config(url, LISTENER_NAME) {
        Ok(config) => config,
        Err(err) => {
            tracing::error!(error = %err, "cannot listen for client key changes");
            return;
        }
    };
    tokio::pin!(stop);
    let mut backoff = MIN_BACKOFF;
    let mut failures = 0u64;
    loop {
        let established = AtomicBool::new(false);
        let failure = tokio::select! {
            () = &mut stop => return,
            failure = listen(&config, &tls, &mut on_keys, &established, failures > 0) => failure,
        };
        if established.load(Ordering::Relaxed) {
            backoff = MIN_BACKOFF;
            failures = 0;
        }
        // The first failure of an outage and then every tenth: a long one does not flood the log.
        if failures.is_multiple_of(10) {
            tracing::warn!(
                error = %failure,
                url = %url.redacted(),
                "the PostgreSQL connection that watches client keys dropped; reconnecting"
            );
        }
        failures += 1;
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One listening connection, until it fails (the returned text says how).
async fn listen(
    config: &tokio_postgres::Config,
    tls: &MakeRustls,
    on_keys: &mut (impl FnMut(Vec<ActiveKey>) + Send),
    established: &AtomicBool,
    after_failure: bool,
) -> String {
    let (client, mut connection) = match config.connect(tls.clone()).await {
        Ok(pair) => pair,
        Err(err) => return describe(&err),
    };
    let (tx, mut notified) = tokio::sync::mpsc::unbounded_channel::<()>();
    // Drives the connection (the client's queries included) and forwards notifications.
    let driver = async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    let _ = tx.send(());
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => return describe(&err),
                None => return "the server closed the connection".to_owned(),
            }
        }
    };
    let work = async {
        // LISTEN first, then read: a change committed in between is both read and notified.
        if let Err(err) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
            return describe(&err);
        }
        let mut reread = tokio::time::interval(REREAD);
        reread.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = reread.tick() => {}
                Some(()) = notified.recv() => {
                    while notified.try_recv().is_ok() {}
                }
            }
            let keys = match tokio::time::timeout(TIMEOUT, active(&client)).await {
                Ok(Ok(keys)) => keys,
                Ok(Err(err)) => return describe(&err),
                Err(_) => return "reading the client keys timed out".to_owned(),
            };
            on_keys(keys);
            if !established.swap(true, Ordering::Relaxed) && after_failure {
                tracing::warn!("listening for client key changes again; keys re-read");
            }
        }
    };
    tokio::select! {
        failure = driver => failure,
        failure = work => failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_stored_and_read_back() {
        let windows = [
            WindowLimit {
                every_ms: 5 * 3_600_000,
                usd: 10.0,
            },
            WindowLimit {
                every_ms: 60_000,
                usd: 0.004,
            },
        ];
        let text = windows_text(&windows);
        assert_eq!(text.as_deref(), Some("18000000=10000000000,60000=4000000"));
        assert_eq!(windows_from(text.as_deref()), windows);
        assert_eq!(windows_text(&[]), None);
        assert!(windows_from(None).is_empty());
        // A pair edited by hand into nonsense is skipped, the rest kept.
        assert_eq!(
            windows_from(Some("x=1,60000=4000000,60000=-1")),
            windows[1..]
        );
    }
}
