//! `smartproxy export`: the ledger's requests as CSV or JSON Lines, streamed a row at a time
//! from one read transaction, so memory stays flat whatever the ledger's size and the rows are
//! one consistent snapshot while other processes keep writing.

use std::io::Write;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, params_from_iter};

use super::query::{Filter, where_clause};

/// How many rows pass between two progress reports.
const PROGRESS_EVERY: u64 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header row (RFC 4180 quoting).
    Csv,
    /// One JSON object per line.
    Jsonl,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading the ledger: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing the export: {0}")]
    Csv(#[from] csv::Error),
    /// Reading a PostgreSQL ledger (the message names it, password redacted).
    #[error(transparent)]
    Ledger(#[from] super::LedgerError),
}

/// Every request column and the session's tag; `started_at` (RFC 3339, for people and
/// spreadsheets) is put in front from `started_ms`, formatted here: SQLite's `strftime` took
/// half the export's time. Columns added by later migrations come along by themselves.
const COLUMNS: &str = "r.*, s.tag AS session_tag";

/// How many requests `filter` selects (for a progress bar's length).
pub fn count(conn: &Connection, filter: &Filter) -> rusqlite::Result<u64> {
    let (clause, args) = where_clause(filter);
    let sql = format!("SELECT COUNT(*) FROM requests r {clause}");
    conn.query_row(&sql, params_from_iter(args), |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

/// Writes the requests `filter` selects to `out`, oldest first, and returns how many it wrote.
/// `progress` hears the running count every few thousand rows.
pub fn export(
    conn: &mut Connection,
    filter: &Filter,
    format: Format,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ExportError> {
    // One read transaction: a consistent snapshot, however long the export takes.
    let tx = conn.transaction()?;
    let (clause, args) = where_clause(filter);
    let sql = format!(
        "SELECT {COLUMNS} FROM requests r LEFT JOIN sessions s ON s.id = r.session_id {clause}
         ORDER BY r.started_ms, r.seq"
    );
    let mut stmt = tx.prepare(&sql)?;
    let names: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    // Every column but the ledger's internal row number, with its position in the row.
    let (shown, columns): (Vec<usize>, Vec<String>) = names
        .into_iter()
        .enumerate()
        .filter(|(_, name)| name != "seq")
        .unzip();
    let started = columns
        .iter()
        .position(|c| c == "started_ms")
        .map(|p| shown[p])
        .ok_or(rusqlite::Error::InvalidColumnName("started_ms".to_owned()))?;
    let mut rows = stmt.query(params_from_iter(args))?;
    let mut sink = Sink::new(format, &columns, out, progress)?;
    while let Some(row) = rows.next()? {
        sink.begin(row.get_ref(started)?);
        for &i in &shown {
            sink.value(row.get_ref(i)?)?;
        }
        sink.end()?;
    }
    sink.finish()
}

/// Where the rows go, in either format.
enum Target<'a> {
    // Boxed: its buffer makes it ten times the other variant's size.
    Csv(Box<csv::Writer<&'a mut dyn Write>>),
    /// Keys escaped once (`,"name":`); values written straight out, no map per row.
    Jsonl {
        out: &'a mut dyn Write,
        keys: Vec<String>,
    },
}

/// Writes exported rows in one format, whichever backend they come from (the PostgreSQL
/// export hands its values over as SQLite's would read, so both write the same bytes): a
/// row is `begin` (its start time), a `value` per column in the header's order, then `end`.
pub(super) struct Sink<'a, 'p> {
    target: Target<'a>,
    field: Vec<u8>,
    column: usize,
    written: u64,
    progress: &'p mut dyn FnMut(u64),
}

impl<'a, 'p> Sink<'a, 'p> {
    /// Writes the CSV header (`started_at` and `columns`) at once.
    pub(super) fn new(
        format: Format,
        columns: &[String],
        out: &'a mut dyn Write,
        progress: &'p mut dyn FnMut(u64),
    ) -> Result<Self, ExportError> {
        let target = match format {
            Format::Csv => {
                let mut csv = csv::Writer::from_writer(out);
                csv.write_field("started_at")?;
                csv.write_record(columns)?;
                Target::Csv(Box::new(csv))
            }
            Format::Jsonl => Target::Jsonl {
                out,
                keys: columns
                    .iter()
                    .map(|c| format!(",{}:", serde_json::Value::from(c.as_str())))
                    .collect(),
            },
        };
        Ok(Self {
            target,
            field: Vec::with_capacity(64),
            column: 0,
            written: 0,
            progress,
        })
    }

    pub(super) fn begin(&mut self, started_ms: ValueRef<'_>) {
        self.column = 0;
        self.field.clear();
        match &self.target {
            Target::Csv(_) => write_started_at(&mut self.field, started_ms),
            Target::Jsonl { .. } => {
                self.field.extend_from_slice(b"{\"started_at\":\"");
                write_started_at(&mut self.field, started_ms);
                self.field.push(b'"');
            }
        }
    }

    pub(super) fn value(&mut self, value: ValueRef<'_>) -> Result<(), ExportError> {
        match &mut self.target {
            Target::Csv(csv) => {
                if self.column == 0 {
                    csv.write_field(&self.field)?;
                }
                self.field.clear();
                write_csv_value(&mut self.field, value);
                csv.write_field(&self.field)?;
            }
            Target::Jsonl { keys, .. } => {
                if let Some(key) = keys.get(self.column) {
                    self.field.extend_from_slice(key.as_bytes());
                }
                write_json_value(&mut self.field, value)?;
            }
        }
        self.column += 1;
        Ok(())
    }

    pub(super) fn end(&mut self) -> Result<(), ExportError> {
        match &mut self.target {
            Target::Csv(csv) => {
                if self.column == 0 {
                    csv.write_field(&self.field)?;
                }
                csv.write_record(None::<&[u8]>)?;
            }
            Target::Jsonl { out, .. } => {
                self.field.extend_from_slice(b"}\n");
                out.write_all(&self.field)?;
            }
        }
        self.written += 1;
        if self.written.is_multiple_of(PROGRESS_EVERY) {
            (self.progress)(self.written);
        }
        Ok(())
    }

    /// Flushes everything and returns how many rows were written.
    pub(super) fn finish(self) -> Result<u64, ExportError> {
        let out = match self.target {
            Target::Csv(csv) => csv.into_inner().map_err(|e| e.into_error())?,
            Target::Jsonl { out, .. } => out,
        };
        out.flush()?;
        (self.progress)(self.written);
        Ok(self.written)
    }
}

/// `started_ms` as `2026-12-02T18:29:47.203Z`.
pub(super) fn write_started_at(field: &mut Vec<u8>, value: ValueRef<'_>) {
    if let ValueRef::Integer(ms) = value
        && let Some(time) = chrono::DateTime::from_timestamp_millis(ms)
    {
        let _ = write!(field, "{}", time.format("%Y-%m-%dT%H:%M:%S%.3fZ"));
    }
}

fn write_csv_value(field: &mut Vec<u8>, value: ValueRef<'_>) {
    match value {
        ValueRef::Null => {}
        ValueRef::Integer(n) => {
            let _ = write!(field, "{n}");
        }
        ValueRef::Real(x) => {
            let _ = write!(field, "{x}");
        }
        ValueRef::Text(t) | ValueRef::Blob(t) => field.extend_from_slice(t),
    }
}

fn write_json_value(field: &mut Vec<u8>, value: ValueRef<'_>) -> std::io::Result<()> {
    match value {
        ValueRef::Null => field.extend_from_slice(b"null"),
        ValueRef::Integer(n) => write!(field, "{n}")?,
        ValueRef::Real(x) if x.is_finite() => {
            serde_json::to_writer(&mut *field, &x).map_err(std::io::Error::from)?;
        }
        ValueRef::Real(_) => field.extend_from_slice(b"null"),
        ValueRef::Text(t) => {
            serde_json::to_writer(&mut *field, &*String::from_utf8_lossy(t))
                .map_err(std::io::Error::from)?;
        }
        ValueRef::Blob(b) => write!(field, "\"{}\"", hex::encode(b))?,
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::ledger::open_connection;

    fn ledger() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let conn = open_connection(&path).unwrap();
        crate::ledger::migrations::migrate(&conn, &path).unwrap();
        conn.execute_batch(crate::ledger::LEGACY_WRITES).unwrap();
        conn.execute(
            "INSERT INTO sessions (id, kind, tag, started_ms) VALUES ('s1', 'run', 'a,\"b\"', 0)",
            [],
        )
        .unwrap();
        for (id, at, model) in [("r2", 2000, "gpt-4o"), ("r1", 1000, "x,\ny")] {
            conn.execute(
                "INSERT INTO requests (id, session_id, started_ms, endpoint, served_model, status,
                 outcome, stream, latency_ms, attempts, cache_status, cost_usd)
                 VALUES (?1, 's1', ?2, 'chat', ?3, 200, 'ok', 0, 12.5, 1, 'miss', 0.001)",
                (id, at, model),
            )
            .unwrap();
        }
        (dir, conn)
    }

    #[test]
    fn csv_has_a_header_quotes_fields_and_orders_by_time() {
        let (_dir, mut conn) = ledger();
        let mut out = Vec::new();
        let n = export(
            &mut conn,
            &Filter::default(),
            Format::Csv,
            &mut out,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(n, 2);
        let mut reader = csv::Reader::from_reader(out.as_slice());
        let header = reader.headers().unwrap().clone();
        assert_eq!(&header[0], "started_at");
        assert!(header.iter().any(|h| h == "cost_usd"));
        assert_eq!(header.iter().next_back(), Some("session_tag"));
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        assert_eq!(&rows[0][col("id")], "r1");
        assert_eq!(&rows[0][col("served_model")], "x,\ny", "quoted, not split");
        assert_eq!(&rows[0][col("session_tag")], "a,\"b\"");
        assert_eq!(&rows[0][col("started_at")], "1970-01-01T00:00:01.000Z");
        assert_eq!(&rows[1][col("cost_usd")], "0.001");
    }

    #[test]
    fn jsonl_keeps_types_and_the_filter_applies() {
        let (_dir, mut conn) = ledger();
        let mut out = Vec::new();
        let filter = Filter {
            since_ms: Some(1500),
            ..Filter::default()
        };
        assert_eq!(count(&conn, &filter).unwrap(), 1);
        export(&mut conn, &filter, Format::Jsonl, &mut out, &mut |_| {}).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["id"], "r2");
        assert_eq!(lines[0]["status"], 200);
        assert_eq!(lines[0]["latency_ms"], 12.5);
        assert_eq!(lines[0]["error_code"], serde_json::Value::Null);
    }
}
