//! nginx as the floor: a plain reverse proxy that parses nothing, started (when `nginx` is on
//! the PATH) as one process pinned to CPU 0 like the proxy, forwarding to the mock over
//! keep-alive upstream connections, unbuffered for SSE. Stopped by a guard even on panic.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::die_with_bench::die_with_bench;

pub struct Nginx {
    pub addr: SocketAddr,
    pub pid: i32,
    child: Child,
}

/// `nginx` from the PATH (or /usr/sbin, often not on a user's PATH).
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file())
}

impl Nginx {
    pub fn start(bin: &Path, upstream: SocketAddr, dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir.join("logs"))?;
        // A free port: nginx cannot be asked for port 0 and tell which it got.
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))?
            .local_addr()?
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let conf = dir.join("nginx.conf");
        let d = dir.display();
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
                 error_log {d}/logs/error.log error;\nworker_rlimit_nofile 20000;\n\
                 events {{ worker_connections 8192; multi_accept on; }}\n\
                 http {{\n  access_log off;\n  client_body_buffer_size 1m;\n  client_body_temp_path {d}/body;\n  \
                 proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
                 uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
                 keepalive_requests 1000000;\n  \
                 upstream mock {{ server {upstream}; keepalive 64; keepalive_requests 1000000; }}\n  \
                 server {{\n    listen {addr} backlog=1024;\n    location / {{\n      \
                 proxy_pass http://mock;\n      proxy_http_version 1.1;\n      \
                 proxy_set_header Connection \"\";\n      proxy_buffering off;\n    }}\n  }}\n}}\n"
            ),
        )?;
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "0"])
            .arg(bin)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("logs/error.log"))
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = die_with_bench(&mut cmd)
            .spawn()
            .context("cannot start nginx")?;
        let pid = i32::try_from(child.id())?;
        let mut nginx = Self { addr, pid, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if let Some(status) = nginx.child.try_wait()? {
                bail!("nginx exited during start-up: {status}");
            }
            if Instant::now() > deadline {
                bail!("nginx did not listen on {addr} within 10 s");
            }
            #[allow(
                clippy::disallowed_methods,
                reason = "a plain thread waits for nginx to listen"
            )]
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(nginx)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
