//! The bench's own database on the PostgreSQL at 127.0.0.1:5432 (`SMARTPROXY_BENCH_PG` names
//! another server's maintenance database): created with a unique name, dropped on drop, and
//! asked for its sizes and a round trip's time.

use std::time::Instant;

use anyhow::Context;
use tokio_postgres::NoTls;

pub struct BenchDb {
    admin: String,
    name: String,
    pub url: String,
}

fn admin_url() -> String {
    std::env::var("SMARTPROXY_BENCH_PG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `url` with its database replaced by `db` (no query string expected).
fn with_database(url: &str, db: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    match url[scheme_end..].find('/') {
        Some(i) => format!("{}/{db}", &url[..scheme_end + i]),
        None => format!("{url}/{db}"),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Runs `f` on one connection to `url`.
fn with_client<T>(
    url: &str,
    f: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<T, tokio_postgres::Error>,
) -> anyhow::Result<T> {
    runtime()?.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        let driver = tokio::spawn(connection);
        let result = f(&client).await;
        drop(client);
        let _ = driver.await;
        Ok(result?)
    })
}

impl BenchDb {
    pub fn create() -> anyhow::Result<Self> {
        let admin = admin_url();
        let name = format!("smartproxy_bench_{}", std::process::id());
        with_client(&admin, async |c| {
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
            c.batch_execute(&format!("CREATE DATABASE {name}")).await
        })?;
        let url = with_database(&admin, &name);
        Ok(Self { admin, name, url })
    }

    /// The whole database's size on disk, bytes.
    pub fn database_bytes(&self) -> anyhow::Result<i64> {
        with_client(&self.url, async |c| {
            Ok(
                c.query_one("SELECT pg_database_size(current_database())", &[])
                    .await?
                    .get(0),
            )
        })
    }

    /// `requests` (every partition, with its indexes and TOAST) and `attempts`, bytes.
    pub fn request_tables_bytes(&self) -> anyhow::Result<i64> {
        with_client(&self.url, async |c| {
            Ok(c.query_one(
                "SELECT (SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) \
                   FROM pg_inherits WHERE inhparent = 'requests'::regclass)::bigint \
                 + pg_total_relation_size('attempts')",
                &[],
            )
            .await?
            .get(0))
        })
    }

    pub fn count(&self, sql: &str) -> anyhow::Result<i64> {
        with_client(&self.url, async |c| Ok(c.query_one(sql, &[]).await?.get(0)))
    }

    /// Median of `n` `SELECT 1` round trips on one connection, milliseconds.
    pub fn round_trip_ms(&self, n: usize) -> anyhow::Result<f64> {
        with_client(&self.url, async |c| {
            let statement = c.prepare("SELECT 1").await?;
            let mut samples = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                c.query_one(&statement, &[]).await?;
                samples.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            samples.sort_by(f64::total_cmp);
            Ok(samples[samples.len() / 2])
        })
    }
}

impl BenchDb {
    /// Median of `n` durable one-row commits (autocommit INSERTs: the WAL flushed each time),
    /// milliseconds: what a transaction that writes costs at least.
    pub fn commit_ms(&self, n: usize) -> anyhow::Result<f64> {
        with_client(&self.url, async |c| {
            c.batch_execute("CREATE TABLE IF NOT EXISTS bench_commit (x int)")
                .await?;
            let statement = c.prepare("INSERT INTO bench_commit VALUES (1)").await?;
            let mut samples = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                c.execute(&statement, &[]).await?;
                samples.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            c.batch_execute("DROP TABLE bench_commit").await?;
            samples.sort_by(f64::total_cmp);
            Ok(samples[samples.len() / 2])
        })
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let dropped = with_client(&self.admin, async |c| {
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
        });
        if let Err(err) = dropped {
            eprintln!(
                "team_ledger: could not drop database {}: {err:#}",
                self.name
            );
        }
    }
}
