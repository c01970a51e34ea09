//! TLS to a team ledger's PostgreSQL (issue 20, item 9): a private cluster with `ssl=on` and a
//! certificate from a CA made here with the openssl CLI, TCP for smartproxy's role TLS-only
//! (`hostssl`). `verify-full` with the CA connects and records; `require` connects without it;
//! a wrong CA, a wrong host name and a plain connection are each refused with a message that
//! says what to change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::TestEnv;
use support::postgres::PrivateCluster;

/// A CA, a server certificate it signed for 127.0.0.1 (no DNS name), and a second, unrelated
/// CA, as PEM files in `dir`.
struct Certs {
    ca: PathBuf,
    other_ca: PathBuf,
    server_cert: String,
    server_key: String,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        support::text(&out.stderr)
    );
}

fn make_ca(dir: &Path, name: &str) {
    std::fs::write(
        dir.join(format!("{name}.cnf")),
        "[req]\ndistinguished_name = dn\nx509_extensions = ca\n[dn]\n\
         [ca]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\n\
         subjectKeyIdentifier = hash\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-config",
            &format!("{name}.cnf"),
        ],
    );
}

fn make_certs(dir: &Path) -> Certs {
    make_ca(dir, "ca");
    make_ca(dir, "other-ca");
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\n\
         keyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
            "-config",
            "ca.cnf",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    Certs {
        ca: dir.join("ca.pem"),
        other_ca: dir.join("other-ca.pem"),
        server_cert: std::fs::read_to_string(dir.join("server.crt")).unwrap(),
        server_key: std::fs::read_to_string(dir.join("server.key")).unwrap(),
    }
}

/// A TLS-only cluster and its certificates; `None` when the test is skipped.
fn tls_cluster(env: &TestEnv) -> Option<(PrivateCluster, Certs)> {
    if !support::require_tools(&["openssl", "curl"]) {
        return None;
    }
    let cluster = PrivateCluster::start()?;
    let dir = env.path().join("certs");
    std::fs::create_dir_all(&dir).unwrap();
    let certs = make_certs(&dir);
    cluster.require_tls(&certs.server_cert, &certs.server_key);
    Some((cluster, certs))
}

/// The `ledger` database as role `team` (TLS-only) on `host`, with `query` appended.
fn url(cluster: &PrivateCluster, host: &str, query: &str) -> String {
    format!("postgres://team@{host}:{}/ledger?{query}", cluster.port())
}

fn doctor(env: &TestEnv, db: &str) -> (bool, String) {
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", db).arg("doctor");
    let out = support::run_to_end(cmd);
    (
        out.status.success(),
        format!(
            "{}{}",
            support::text(&out.stdout),
            support::text(&out.stderr)
        ),
    )
}

/// `run --mock` around a client making `n` requests, against ledger `db`.
fn run_requests(env: &TestEnv, db: &str, n: usize) -> std::process::Output {
    let script = format!(
        "for i in $(seq {n}); do curl -sf -o /dev/null -H \"authorization: Bearer $OPENAI_API_KEY\" \
         -H 'content-type: application/json' -d '{}' \"$OPENAI_BASE_URL/chat/completions\" || exit 9; done",
        support::chat_body("gpt-4o-mini", false, "hi")
    );
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", db).args([
        "run",
        "--mock",
        "--summary",
        "none",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    support::run_to_end(cmd)
}

#[test]
fn verify_full_with_the_ca_records_rows_over_tls_and_require_encrypts_without_it() {
    let env = TestEnv::new();
    let Some((cluster, certs)) = tls_cluster(&env) else {
        return;
    };
    let full = url(
        &cluster,
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", certs.ca.display()),
    );
    let out = run_requests(&env, &full, 5);
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    assert_eq!(cluster.count("SELECT count(*) FROM requests"), 5);
    assert_eq!(cluster.count("SELECT sum(requests) FROM usage_daily"), 5);

    // doctor asks the server (pg_stat_ssl) whether its own connection is encrypted.
    let (ok, text) = doctor(&env, &full);
    assert!(ok, "{text}");
    assert!(
        text.contains("encrypted (TLSv1.3); certificate and host name checked (verify-full)"),
        "{text}"
    );

    // A read command connects through the same connector.
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", &full).args(["stats", "--json"]);
    let out = support::run_to_end(cmd);
    assert!(out.status.success(), "{}", support::text(&out.stderr));

    // require: encrypted, the certificate unchecked (and said so).
    let (ok, text) = doctor(&env, &url(&cluster, "127.0.0.1", "sslmode=require"));
    assert!(ok, "{text}");
    assert!(text.contains("not checked (require)"), "{text}");

    // verify-ca checks the chain but not the name: `localhost` is not on the certificate.
    let by_name = |mode: &str| {
        url(
            &cluster,
            "localhost",
            &format!("sslmode={mode}&sslrootcert={}", certs.ca.display()),
        )
    };
    let (ok, text) = doctor(&env, &by_name("verify-ca"));
    assert!(ok, "{text}");
    assert!(text.contains("host name not (verify-ca)"), "{text}");
    let (ok, text) = doctor(&env, &by_name("verify-full"));
    assert!(!ok, "{text}");
    assert!(
        text.contains("not issued for the host in the URL"),
        "{text}"
    );
}

#[test]
fn a_wrong_root_and_a_plain_connection_are_refused_clearly() {
    let env = TestEnv::new();
    let Some((cluster, certs)) = tls_cluster(&env) else {
        return;
    };
    let wrong = url(
        &cluster,
        "127.0.0.1",
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            certs.other_ca.display()
        ),
    );
    let (ok, text) = doctor(&env, &wrong);
    assert!(!ok, "{text}");
    assert!(
        text.contains("TLS certificate was refused") && text.contains("sslrootcert=PATH"),
        "{text}"
    );
    // A refused certificate will not fix itself: `run` stops at once instead of spooling.
    let out = run_requests(&env, &wrong, 1);
    let stderr = support::text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("TLS certificate was refused"), "{stderr}");

    // A missing root file is named.
    let (ok, text) = doctor(
        &env,
        &url(
            &cluster,
            "127.0.0.1",
            "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        ),
    );
    assert!(!ok, "{text}");
    assert!(text.contains("sslrootcert /nonexistent/ca.pem"), "{text}");

    // Plain TCP to a server that accepts only TLS.
    let plain = url(&cluster, "127.0.0.1", "sslmode=disable");
    let (ok, text) = doctor(&env, &plain);
    assert!(!ok, "{text}");
    assert!(
        text.contains("no encryption") && text.contains("sslmode=verify-full"),
        "{text}"
    );
    let out = run_requests(&env, &plain, 1);
    let stderr = support::text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("the server accepts only TLS"), "{stderr}");
}
