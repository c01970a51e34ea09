//! The local spool of a PostgreSQL ledger: a SQLite ledger file (`spool.db` beside the default
//! ledger) where the PostgreSQL writer puts what PostgreSQL cannot take, and from which it
//! drains them, oldest first, once PostgreSQL answers again.
//!
//! Requests, sessions and anomalies are written with the SQLite writer's own statements (so
//! `smartproxy ledger migrate --from` reads a spool like any ledger); a session's end goes to
//! `spool_ends`, since its session is usually in PostgreSQL already. A drain takes one batch in
//! an IMMEDIATE transaction (a second process draining the same file waits for it), hands it to
//! PostgreSQL, and deletes exactly that batch in the same transaction once PostgreSQL
//! committed: a crash in between leaves the batch to be sent again, and PostgreSQL's inserts
//! skip what they already hold.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::narrow::{self, Interner};
use super::readback::{self, StoredSession};
use super::{LedgerError, Message, SessionEnd};

/// The spool's file: beside the default ledger, whatever `database` says.
pub fn default_path() -> PathBuf {
    crate::config::paths::default_database().with_file_name("spool.db")
}

/// `spool_reservations`: the PostgreSQL budget reservation a spooled request settles. SQLite's
/// request rows have no column for it, and without it a drained row would leave its
/// reservation held until it expired and its cost never counted as spent.
/// `spool_end_git`: where HEAD stood at a spooled end (a table of its own, so a spool an older
/// build made needs no change to `spool_ends`).
const SPOOL_TABLES: &str = "CREATE TABLE IF NOT EXISTS spool_ends (
        id INTEGER PRIMARY KEY, session_id TEXT NOT NULL, ended_ms INTEGER NOT NULL,
        exit_code INTEGER);
    CREATE TABLE IF NOT EXISTS spool_reservations (
        request_id TEXT PRIMARY KEY, reservation_id TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS spool_end_git (
        end_id INTEGER PRIMARY KEY, end_branch TEXT, end_head TEXT)";

/// The spool, open for writing and draining (by the PostgreSQL writer thread only).
pub(crate) struct Spool {
    path: PathBuf,
    conn: Connection,
    interner: Interner,
}

/// One batch taken from the spool: the messages in the order PostgreSQL must see them, and
/// what to delete once PostgreSQL committed them.
pub(crate) struct Taken {
    pub messages: Vec<Message>,
    sessions: Vec<i64>,
    requests: Vec<i64>,
    ends: Vec<i64>,
    anomalies: Vec<i64>,
    /// Request ids whose `spool_reservations` row goes with them.
    reservations: Vec<String>,
}

impl Taken {
    pub fn rows(&self) -> usize {
        self.sessions.len() + self.requests.len() + self.ends.len() + self.anomalies.len()
    }
}

impl Spool {
    /// Opens (creating and migrating) the spool at `path`.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        crate::private_files::prepare(path).map_err(|source| LedgerError::CreateDir {
            path: path.parent().unwrap_or(path).to_path_buf(),
            source,
        })?;
        let conn = super::open_connection(path)?;
        super::migrations::migrate(&conn, path)?;
        let sql = |source| LedgerError::Sql {
            path: path.to_path_buf(),
            source,
        };
        super::with_busy_retry(|| conn.execute_batch(SPOOL_TABLES)).map_err(sql)?;
        Ok(Self {
            path: path.to_path_buf(),
            conn,
            interner: Interner::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows waiting to be drained.
    pub fn pending(&self) -> rusqlite::Result<u64> {
        count(&self.conn)
    }

    /// The PostgreSQL ledger's salt as last seen (`key` names the ledger), for a process that
    /// starts while PostgreSQL is down.
    pub fn remembered_salt(&self, key: &str) -> Option<String> {
        self.conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [format!("postgres_salt:{key}")],
                |r| r.get(0),
            )
            .optional()
            .ok()
            .flatten()
    }

    pub fn remember_salt(&self, key: &str, salt: &str) -> rusqlite::Result<()> {
        super::with_busy_retry(|| {
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![format!("postgres_salt:{key}"), salt],
            )
        })
        .map(|_| ())
    }

    /// This spool's own salt, when no PostgreSQL salt was ever seen.
    pub fn own_salt(&self) -> rusqlite::Result<String> {
        super::with_busy_retry(|| super::migrations::salt(&self.conn))
    }

    /// Writes the batch's rows in one transaction (busy waited out, as the SQLite writer does);
    /// returns how many rows it wrote.
    pub fn write(&mut self, batch: &[Message]) -> rusqlite::Result<usize> {
        let result = super::with_busy_retry(|| write(&mut self.conn, &mut self.interner, batch));
        if result.is_err() {
            // Strings interned by the rolled-back transaction are not in the file.
            self.interner.clear();
        }
        result
    }

    /// Takes the oldest batch (at most `limit` requests), hands it to `send` and deletes it once
    /// `send` says PostgreSQL committed it; all while holding the spool's write lock, so two
    /// drains never send the same batch at once. `Ok(None)`: nothing left.
    pub fn drain_one<E>(
        &mut self,
        limit: usize,
        send: impl FnOnce(&Taken) -> Result<(), E>,
    ) -> Result<Option<usize>, DrainError<E>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(DrainError::Spool)?;
        let taken = take(&tx, limit).map_err(DrainError::Spool)?;
        if taken.rows() == 0 {
            return Ok(None);
        }
        send(&taken).map_err(DrainError::Send)?;
        delete(&tx, &taken).map_err(DrainError::Spool)?;
        tx.commit().map_err(DrainError::Spool)?;
        Ok(Some(taken.rows()))
    }
}

#[derive(Debug)]
pub(crate) enum DrainError<E> {
    Spool(rusqlite::Error),
    Send(E),
}

/// Rows waiting in the spool at `path` (0 when there is none), read-only: for `status`.
pub fn pending_at(path: &Path) -> Result<u64, LedgerError> {
    if !path.exists() {
        return Ok(0);
    }
    let conn = crate::db::open_read_only(path).map_err(|source| LedgerError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    count(&conn).or_else(|err| match err {
        // A spool created by a process that never spooled anything yet.
        rusqlite::Error::SqliteFailure(_, Some(ref m)) if m.contains("no such table") => Ok(0),
        source => Err(LedgerError::Sql {
            path: path.to_path_buf(),
            source,
        }),
    })
}

fn count(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT (SELECT COUNT(*) FROM request_rows) + (SELECT COUNT(*) FROM sessions)
             + (SELECT COUNT(*) FROM anomalies) + (SELECT COUNT(*) FROM spool_ends)",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| u64::try_from(n).unwrap_or(0))
}

fn write(
    conn: &mut Connection,
    interner: &mut Interner,
    batch: &[Message],
) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut insert_request = tx.prepare_cached(narrow::INSERT_REQUEST)?;
    let mut insert_attempt = tx.prepare_cached(narrow::INSERT_ATTEMPT)?;
    let mut rows = 0;
    for message in batch {
        match message {
            Message::Session(s) => super::writer::insert_session(&tx, s)?,
            Message::SessionEnd(e) => {
                tx.prepare_cached(
                    "INSERT INTO spool_ends (session_id, ended_ms, exit_code) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![e.id, e.ended_ms, e.exit_code])?;
                if e.end_branch.is_some() || e.end_head.is_some() {
                    tx.prepare_cached(
                        "INSERT INTO spool_end_git (end_id, end_branch, end_head)
                         VALUES (last_insert_rowid(), ?1, ?2)",
                    )?
                    .execute(params![e.end_branch, e.end_head])?;
                }
            }
            Message::Request(r) => {
                super::writer::write_request(
                    &tx,
                    interner,
                    &mut insert_request,
                    &mut insert_attempt,
                    r,
                )?;
                if let Some(reservation) = &r.reservation_id {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO spool_reservations (request_id, reservation_id)
                         VALUES (?1, ?2)",
                    )?
                    .execute(params![r.id, reservation])?;
                }
            }
            Message::Anomaly(a) => super::writer::insert_anomaly(&tx, a)?,
            Message::Flush(_) | Message::Committed(_) => continue,
        }
        rows += 1;
    }
    drop((insert_request, insert_attempt));
    tx.commit()?;
    Ok(rows)
}

/// The oldest batch, ordered as PostgreSQL needs it: sessions, requests, and once the requests
/// are all in this batch, the session ends (whose spent total reads the requests) and the
/// anomalies.
fn take(conn: &Connection, limit: usize) -> rusqlite::Result<Taken> {
    let sessions: Vec<StoredSession> = readback::sessions(conn, 0, limit)?;
    let requests = readback::requests(conn, 0, limit)?;
    let last = requests.len() < limit;
    let ends: Vec<(i64, SessionEnd)> = if last {
        let mut stmt = conn.prepare_cached(
            "SELECT e.id, e.session_id, e.ended_ms, e.exit_code, g.end_branch, g.end_head
             FROM spool_ends e LEFT JOIN spool_end_git g ON g.end_id = e.id
             ORDER BY e.id LIMIT ?1",
        )?;
        stmt.query_map([limit as i64], |r| {
            Ok((
                r.get(0)?,
                SessionEnd {
                    id: r.get(1)?,
                    ended_ms: r.get(2)?,
                    exit_code: r.get(3)?,
                    end_branch: r.get(4)?,
                    end_head: r.get(5)?,
                },
            ))
        })?
        .collect::<rusqlite::Result<_>>()?
    } else {
        Vec::new()
    };
    let anomalies = if last {
        readback::anomalies(conn, 0, limit)?
    } else {
        Vec::new()
    };
    let mut taken = Taken {
        messages: Vec::with_capacity(sessions.len() + requests.len() + ends.len()),
        sessions: Vec::new(),
        requests: Vec::new(),
        ends: Vec::new(),
        anomalies: Vec::new(),
        reservations: Vec::new(),
    };
    for s in sessions {
        taken.sessions.push(s.rowid);
        taken.messages.push(Message::Session(Box::new(s.start)));
    }
    let mut reservation =
        conn.prepare_cached("SELECT reservation_id FROM spool_reservations WHERE request_id = ?1")?;
    for (seq, mut r) in requests {
        taken.requests.push(seq);
        if let Some(id) = reservation
            .query_row([&r.id], |row| row.get::<_, String>(0))
            .optional()?
        {
            r.reservation_id = Some(id);
            taken.reservations.push(r.id.clone());
        }
        taken.messages.push(Message::Request(Box::new(r)));
    }
    for (id, e) in ends {
        taken.ends.push(id);
        taken.messages.push(Message::SessionEnd(Box::new(e)));
    }
    for (id, a) in anomalies {
        taken.anomalies.push(id);
        taken.messages.push(Message::Anomaly(Box::new(a)));
    }
    Ok(taken)
}

fn delete(conn: &Connection, taken: &Taken) -> rusqlite::Result<()> {
    let each = |sql: &str, ids: &[i64]| -> rusqlite::Result<()> {
        let mut stmt = conn.prepare_cached(sql)?;
        for id in ids {
            stmt.execute([id])?;
        }
        Ok(())
    };
    each("DELETE FROM sessions WHERE rowid = ?1", &taken.sessions)?;
    each(
        "DELETE FROM attempt_rows WHERE request = ?1",
        &taken.requests,
    )?;
    each("DELETE FROM request_rows WHERE seq = ?1", &taken.requests)?;
    each("DELETE FROM spool_ends WHERE id = ?1", &taken.ends)?;
    each("DELETE FROM spool_end_git WHERE end_id = ?1", &taken.ends)?;
    each("DELETE FROM anomalies WHERE id = ?1", &taken.anomalies)?;
    let mut stmt = conn.prepare_cached("DELETE FROM spool_reservations WHERE request_id = ?1")?;
    for id in &taken.reservations {
        stmt.execute([id])?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ledger::{RequestRecord, SessionStart};

    fn request(i: u32) -> Message {
        let mut r = RequestRecord::new(format!("req_{i:08x}"), Some(Arc::from("s")), 1, "chat");
        r.cost_usd = Some(0.001);
        Message::Request(Box::new(r))
    }

    #[test]
    fn what_is_spooled_drains_in_order_and_only_once_sent() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(&dir.path().join("spool.db")).unwrap();
        let mut batch = vec![Message::Session(Box::new(SessionStart {
            id: "s".into(),
            parent_id: None,
            kind: "run",
            tag: None,
            program: None,
            cwd: None,
            pid: None,
            started_ms: 1,
            budget_usd: None,
            attribution: Default::default(),
        }))];
        batch.extend((0..5).map(request));
        batch.push(Message::SessionEnd(Box::new(SessionEnd {
            id: "s".into(),
            ended_ms: 2,
            exit_code: Some(0),
            end_branch: None,
            end_head: None,
        })));
        assert_eq!(spool.write(&batch).unwrap(), 7);
        assert_eq!(spool.pending().unwrap(), 7);
        // A failed send keeps everything.
        let failed = spool.drain_one(3, |_| Err("down"));
        assert!(matches!(failed, Err(DrainError::Send("down"))));
        assert_eq!(spool.pending().unwrap(), 7);
        // Three requests (and the session) first; the end waits for the last requests.
        let mut kinds = Vec::new();
        while let Some(n) = spool
            .drain_one(3, |t| {
                kinds.push(t.messages.len());
                Ok::<_, ()>(())
            })
            .unwrap()
        {
            assert!(n > 0);
        }
        assert_eq!(kinds, vec![4, 3]);
        assert_eq!(spool.pending().unwrap(), 0);
        assert_eq!(pending_at(spool.path()).unwrap(), 0);
    }

    /// A spooled session keeps its project and git state, its end where HEAD stood then.
    #[test]
    fn a_spooled_session_keeps_its_attribution() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(&dir.path().join("spool.db")).unwrap();
        let start = SessionStart {
            id: "s".into(),
            parent_id: None,
            kind: "run",
            tag: None,
            program: None,
            cwd: None,
            pid: None,
            started_ms: 1,
            budget_usd: None,
            attribution: crate::ledger::Attribution {
                project: Some("web".into()),
                repo: Some("/src/web".into()),
                branch: Some("main".into()),
                head: Some("a".repeat(40)),
            },
        };
        let end = SessionEnd {
            id: "s".into(),
            ended_ms: 2,
            exit_code: Some(0),
            end_branch: Some("feat".into()),
            end_head: Some("b".repeat(40)),
        };
        let batch = [
            Message::Session(Box::new(start.clone())),
            Message::SessionEnd(Box::new(end.clone())),
        ];
        spool.write(&batch).unwrap();
        let mut seen = Vec::new();
        spool
            .drain_one(10, |t| {
                seen.extend(t.messages.iter().filter_map(|m| match m {
                    Message::Session(s) => Some(format!("{:?}", s.attribution)),
                    Message::SessionEnd(e) => Some(format!("{:?}", (&e.end_branch, &e.end_head))),
                    _ => None,
                }));
                Ok::<_, ()>(())
            })
            .unwrap();
        let want = [
            format!("{:?}", start.attribution),
            format!("{:?}", (&end.end_branch, &end.end_head)),
        ];
        assert_eq!(seen, want);
        let left: i64 = spool
            .conn
            .query_row("SELECT COUNT(*) FROM spool_end_git", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0, "drained with its end");
    }

    /// A spooled request keeps the budget reservation it settles in PostgreSQL (SQLite's rows
    /// have no column for it); the link goes with the drained batch.
    #[test]
    fn a_spooled_request_keeps_its_reservation() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(&dir.path().join("spool.db")).unwrap();
        let Message::Request(mut held) = request(1) else {
            unreachable!()
        };
        held.reservation_id = Some("req_00000001".to_owned());
        spool.write(&[Message::Request(held), request(2)]).unwrap();
        let mut seen = Vec::new();
        spool
            .drain_one(10, |t| {
                for m in &t.messages {
                    if let Message::Request(r) = m {
                        seen.push((r.id.clone(), r.reservation_id.clone()));
                    }
                }
                Ok::<_, ()>(())
            })
            .unwrap();
        assert_eq!(
            seen,
            vec![
                ("req_00000001".to_owned(), Some("req_00000001".to_owned())),
                ("req_00000002".to_owned(), None),
            ]
        );
        let left: i64 = spool
            .conn
            .query_row("SELECT COUNT(*) FROM spool_reservations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn two_drains_of_one_spool_never_send_a_row_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.db");
        let mut spool = Spool::open(&path).unwrap();
        let n = 600;
        for chunk in (0..n).collect::<Vec<u32>>().chunks(50) {
            let batch: Vec<Message> = chunk.iter().map(|i| request(*i)).collect();
            spool.write(&batch).unwrap();
        }
        let sent = std::sync::Mutex::new(Vec::<String>::new());
        std::thread::scope(|scope| {
            for _ in 0..2 {
                let (path, sent) = (&path, &sent);
                scope.spawn(move || {
                    let mut spool = Spool::open(path).unwrap();
                    while spool
                        .drain_one(25, |taken| {
                            let mut sent = sent.lock().unwrap();
                            for m in &taken.messages {
                                if let Message::Request(r) = m {
                                    sent.push(r.id.clone());
                                }
                            }
                            Ok::<_, ()>(())
                        })
                        .unwrap()
                        .is_some()
                    {}
                });
            }
        });
        let mut sent = sent.into_inner().unwrap();
        assert_eq!(sent.len(), n as usize);
        sent.sort();
        sent.dedup();
        assert_eq!(sent.len(), n as usize, "a row was sent twice");
        assert_eq!(spool.pending().unwrap(), 0);
    }
}
