//! A PostgreSQL database of a test's own on the machine's server (127.0.0.1:5432, trust auth;
//! `SMARTPROXY_TEST_PG` names another server's maintenance database), created with a unique
//! name and dropped when the guard goes out of scope, the test failing or not.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_postgres::NoTls;

/// Where the tests' databases are created from.
fn admin_url() -> String {
    std::env::var("SMARTPROXY_TEST_PG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `url`'s database replaced with `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `sql` (no parameters, no rows) against `url`.
fn batch(url: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
    runtime().block_on(async {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
        let driver = tokio::spawn(connection);
        let result = client.batch_execute(sql).await;
        drop(client);
        let _ = driver.await;
        result
    })
}

/// A database created for one test; dropped (connections and all) on drop.
pub struct TestDb {
    name: String,
    admin: String,
    /// The database's URL, for `SMARTPROXY_DB`.
    pub url: String,
}

impl TestDb {
    /// A new empty database named after `hint`; `None` (the test skipped, or failed under CI)
    /// when no PostgreSQL answers.
    pub fn create(hint: &str) -> Option<TestDb> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let admin = admin_url();
        let name = format!(
            "sp_test_{}_{}_{}",
            hint.chars()
                .filter(char::is_ascii_alphanumeric)
                .take(20)
                .collect::<String>()
                .to_ascii_lowercase(),
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        if let Err(err) = batch(&admin, &format!("CREATE DATABASE {name}")) {
            super::skip_or_fail(&format!(
                "needs PostgreSQL at {admin} (trust auth; `.ci/run` starts one): {err}"
            ));
            return None;
        }
        let url = with_database(&admin, &name);
        Some(TestDb { name, admin, url })
    }

    /// Runs statements in the test's database.
    pub fn execute(&self, sql: &str) {
        batch(&self.url, sql).unwrap();
    }

    /// The first column of the first row of `sql`, as text (NULL as "NULL").
    pub fn scalar(&self, sql: &str) -> String {
        scalar_at(&self.url, sql)
    }

    /// `scalar` as a number.
    pub fn count(&self, sql: &str) -> i64 {
        self.scalar(sql).parse().unwrap()
    }

    /// How many of `ids` (request ids as the proxy shows them) have a row.
    pub fn requests_with_ids(&self, ids: &[String]) -> i64 {
        requests_with_ids_at(&self.url, ids)
    }
}

/// The first column of the first row of `sql` at `url`, as text (NULL as "NULL").
fn scalar_at(url: &str, sql: &str) -> String {
    runtime().block_on(async {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
        let driver = tokio::spawn(connection);
        let rows = client.simple_query(sql).await.unwrap();
        drop(client);
        let _ = driver.await;
        rows.iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => {
                    Some(row.get(0).unwrap_or("NULL").to_owned())
                }
                _ => None,
            })
            .unwrap_or_else(|| "NULL".to_owned())
    })
}

/// How many of `ids` (request ids as the proxy shows them) have a row at `url`.
fn requests_with_ids_at(url: &str, ids: &[String]) -> i64 {
    let stored: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| smartproxy::ledger::postgres::rows::stored_id(id))
        .collect();
    runtime().block_on(async {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
        let driver = tokio::spawn(connection);
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM requests WHERE id = ANY($1::bytea[])",
                &[&stored],
            )
            .await
            .unwrap()
            .get(0);
        drop(client);
        let _ = driver.await;
        n
    })
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // WITH (FORCE) ends a smartproxy still connected (PostgreSQL 13 and later).
        let _ = batch(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// A PostgreSQL server of a test's own (initdb and pg_ctl on a free port, trust auth), so a
/// fault test can stop and restart it; stopped on drop. As root it runs as `postgres`, since
/// initdb refuses root.
pub struct PrivateCluster {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
}

impl PrivateCluster {
    /// `None` (skipped, or failed under CI) without PostgreSQL's server programs.
    pub fn start() -> Option<PrivateCluster> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max_by_key(|b| {
                b.parent()
                    .and_then(|v| v.file_name())
                    .and_then(|v| v.to_str())
                    .and_then(|v| v.parse::<u32>().ok())
                    .unwrap_or(0)
            });
        let Some(bin) = bin else {
            super::skip_or_fail(
                "needs PostgreSQL's server programs (Debian: apt-get install postgresql)",
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = PrivateCluster { dir, bin, port };
        if is_root() {
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(cluster.dir.path())
                .status()
                .unwrap();
            assert!(
                status.success(),
                "cannot hand the cluster's folder to postgres"
            );
        }
        cluster.pg(&["initdb", "-D", "data", "-A", "trust", "-U", "postgres"]);
        cluster.up();
        batch(&cluster.url("postgres"), "CREATE DATABASE ledger").unwrap();
        Some(cluster)
    }

    /// One of PostgreSQL's programs in the cluster's folder (as `postgres` when root).
    fn command(&self, args: &[&str]) -> std::process::Command {
        let program = self.bin.join(args[0]);
        let mut cmd = if is_root() {
            let mut cmd = std::process::Command::new(runuser());
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            std::process::Command::new(program)
        };
        cmd.args(&args[1..])
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::null());
        cmd
    }

    fn pg(&self, args: &[&str]) {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server and waits until it accepts connections.
    pub fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        self.pg(&[
            "pg_ctl",
            "-D",
            "data",
            "-l",
            "server.log",
            "-w",
            "-o",
            &options,
            "start",
        ]);
    }

    /// Stops the server at once (connections cut, as in a crash or a network loss).
    pub fn down(&self) {
        self.pg(&["pg_ctl", "-D", "data", "-m", "immediate", "-w", "stop"]);
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// `scalar` against the cluster's `ledger` database, as a number.
    pub fn count(&self, sql: &str) -> i64 {
        scalar_at(&self.url("ledger"), sql).parse().unwrap()
    }

    /// How many of `ids` have a row in the cluster's `ledger` database.
    pub fn requests_with_ids(&self, ids: &[String]) -> i64 {
        requests_with_ids_at(&self.url("ledger"), ids)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        // Already stopped is fine: nothing to check.
        let _ = self
            .command(&["pg_ctl", "-D", "data", "-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// Whether this process runs as root (`/proc/self` belongs to the effective user).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

impl PrivateCluster {
    /// Turns TLS on with `cert` and `key` (PEM) and makes TCP connections TLS-only (`hostssl`)
    /// for every user but `postgres`, which keeps plain TCP for the tests' own helpers; then
    /// restarts. Role `team` (superuser) is the one to connect as to see TLS enforced.
    pub fn require_tls(&self, cert: &str, key: &str) {
        use std::os::unix::fs::PermissionsExt;
        let data = self.dir.path().join("data");
        std::fs::write(data.join("server.crt"), cert).unwrap();
        std::fs::write(data.join("server.key"), key).unwrap();
        std::fs::set_permissions(
            data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        if is_root() {
            for file in ["server.crt", "server.key"] {
                let status = std::process::Command::new("chown")
                    .arg("postgres:")
                    .arg(data.join(file))
                    .status()
                    .unwrap();
                assert!(status.success(), "cannot hand {file} to postgres");
            }
        }
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        conf.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(data.join("postgresql.conf"), conf).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostssl all all ::1/128 trust\n\
             host all postgres 127.0.0.1/32 trust\n",
        )
        .unwrap();
        batch(&self.url("postgres"), "CREATE ROLE team LOGIN SUPERUSER").unwrap();
        self.down();
        self.up();
    }

    /// The cluster's port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// `runuser`, wherever util-linux put it: a root shell's PATH may lack the sbin folders.
fn runuser() -> std::path::PathBuf {
    ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| std::path::PathBuf::from("runuser"))
}
