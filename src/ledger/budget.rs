//! Shared budgets in the ledger: what every process has spent in a period plus what requests in
//! flight have reserved, checked and reserved in one immediate transaction so that concurrent
//! processes cannot both take the last of a limit.

use rusqlite::{Connection, TransactionBehavior, params};

/// How long a reservation counts if its request never settles it (a process that died).
pub const RESERVATION_TTL_MS: i64 = 10 * 60 * 1000;

/// One limit to check: its name, amount, and the start of its period.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub name: &'static str,
    pub limit_usd: f64,
    pub since_ms: i64,
    /// Count only the daemon traffic of this client key (a per-key budget).
    pub key: Option<String>,
}

/// Where a limit stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    pub name: &'static str,
    pub limit_usd: f64,
    pub spent_usd: f64,
    pub reserved_usd: f64,
}

impl Standing {
    pub fn remaining_usd(&self) -> f64 {
        (self.limit_usd - self.spent_usd - self.reserved_usd).max(0.0)
    }
}

/// The outcome of a reservation attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Reserve {
    /// Reserved under `id`; the standings after the reservation.
    Granted(Vec<Standing>),
    /// Refused by this limit (nothing reserved).
    Refused(Standing),
}

fn standing(conn: &Connection, limit: &Limit, now_ms: i64) -> rusqlite::Result<Standing> {
    let (spent, reserved): (f64, f64) = match &limit.key {
        None => (
            conn.prepare_cached("SELECT TOTAL(cost_usd) FROM requests WHERE started_ms >= ?1")?
                .query_row([limit.since_ms], |r| r.get(0))?,
            conn.prepare_cached(
                "SELECT TOTAL(amount_usd) FROM reservations WHERE expires_ms > ?1",
            )?
            .query_row([now_ms], |r| r.get(0))?,
        ),
        Some(key) => (
            conn.prepare_cached(
                "SELECT TOTAL(r.cost_usd) FROM requests r JOIN sessions s ON s.id = r.session_id
                 WHERE s.kind = 'daemon' AND s.tag = ?1 AND r.started_ms >= ?2",
            )?
            .query_row(params![key, limit.since_ms], |r| r.get(0))?,
            conn.prepare_cached(
                "SELECT TOTAL(amount_usd) FROM reservations WHERE expires_ms > ?1 AND tag = ?2",
            )?
            .query_row(params![now_ms, key], |r| r.get(0))?,
        ),
    };
    Ok(Standing {
        name: limit.name,
        limit_usd: limit.limit_usd,
        spent_usd: spent,
        reserved_usd: reserved,
    })
}

/// Where each limit stands now, for `smartproxy budget` and `/admin/budget`.
pub fn standings(
    conn: &Connection,
    limits: &[Limit],
    now_ms: i64,
) -> rusqlite::Result<Vec<Standing>> {
    limits.iter().map(|l| standing(conn, l, now_ms)).collect()
}

/// Reserves `estimate_usd` under `id` if every limit allows it.
pub fn reserve(
    conn: &mut Connection,
    limits: &[Limit],
    id: &str,
    key: Option<&str>,
    estimate_usd: f64,
    now_ms: i64,
) -> rusqlite::Result<Reserve> {
    super::with_busy_retry(|| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached("DELETE FROM reservations WHERE expires_ms <= ?1")?
            .execute([now_ms])?;
        let mut after = Vec::with_capacity(limits.len());
        for limit in limits {
            let s = standing(&tx, limit, now_ms)?;
            let decision = crate::budget::policy::decide(
                Some(s.limit_usd),
                s.spent_usd,
                s.reserved_usd,
                estimate_usd,
            );
            if decision.is_err() {
                return Ok(Reserve::Refused(s));
            }
            after.push(Standing {
                reserved_usd: s.reserved_usd + estimate_usd,
                ..s
            });
        }
        tx.prepare_cached(
            "INSERT OR REPLACE INTO reservations (id, amount_usd, created_ms, expires_ms, tag) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![id, estimate_usd, now_ms, now_ms + RESERVATION_TTL_MS, key])?;
        tx.commit()?;
        Ok(Reserve::Granted(after))
    })
}
