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
}

/// Every request column, the time as RFC 3339 for people and spreadsheets, and the session's
/// tag. Columns added by later migrations come along by themselves (`r.*`).
const COLUMNS: &str =
    "strftime('%Y-%m-%dT%H:%M:%fZ', r.started_ms / 1000.0, 'unixepoch') AS started_at,
    r.*, s.tag AS session_tag";

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
         ORDER BY r.started_ms, r.id"
    );
    let mut stmt = tx.prepare(&sql)?;
    let names: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let mut rows = stmt.query(params_from_iter(args))?;
    let mut written = 0u64;
    match format {
        Format::Csv => {
            let mut csv = csv::Writer::from_writer(&mut *out);
            csv.write_record(&names)?;
            let mut field = Vec::new();
            while let Some(row) = rows.next()? {
                for i in 0..names.len() {
                    field.clear();
                    write_csv_value(&mut field, row.get_ref(i)?);
                    csv.write_field(&field)?;
                }
                csv.write_record(None::<&[u8]>)?;
                written += 1;
                if written.is_multiple_of(PROGRESS_EVERY) {
                    progress(written);
                }
            }
            csv.flush()?;
        }
        Format::Jsonl => {
            while let Some(row) = rows.next()? {
                let mut object = serde_json::Map::with_capacity(names.len());
                for (i, name) in names.iter().enumerate() {
                    object.insert(name.clone(), json_value(row.get_ref(i)?));
                }
                serde_json::to_writer(&mut *out, &object).map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
                written += 1;
                if written.is_multiple_of(PROGRESS_EVERY) {
                    progress(written);
                }
            }
        }
    }
    out.flush()?;
    progress(written);
    Ok(written)
}

fn write_csv_value(field: &mut Vec<u8>, value: ValueRef<'_>) {
    match value {
        ValueRef::Null => {}
        ValueRef::Integer(n) => field.extend_from_slice(n.to_string().as_bytes()),
        ValueRef::Real(x) => field.extend_from_slice(x.to_string().as_bytes()),
        ValueRef::Text(t) | ValueRef::Blob(t) => field.extend_from_slice(t),
    }
}

fn json_value(value: ValueRef<'_>) -> serde_json::Value {
    match value {
        ValueRef::Null => serde_json::Value::Null,
        ValueRef::Integer(n) => n.into(),
        ValueRef::Real(x) => {
            serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into)
        }
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
        ValueRef::Blob(b) => hex::encode(b).into(),
    }
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
