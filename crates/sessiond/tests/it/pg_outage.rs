//! A PostgreSQL outage under load, on a private cluster the test starts (initdb on a free port),
//! stops with `immediate` and starts again: requests fail fast with 503 and Retry-After, the
//! readiness probe answers within a second, the node recovers without a restart and every
//! acknowledged write is still there.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Env, client, post_json};

/// The PostgreSQL server binaries of this machine (Debian keeps them out of PATH).
fn pg_bindir() -> Option<PathBuf> {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let candidates = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"));
    from_pg_config
        .into_iter()
        .chain(candidates)
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

/// A throwaway cluster. initdb refuses to run as root, so as root it runs as `postgres`.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_root: bool,
}

impl Cluster {
    fn run(&self, tool: &str, args: &[&str]) -> std::process::Output {
        let exe = self.bin.join(tool);
        let mut c = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        c.args(args)
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"))
    }

    fn data(&self) -> String {
        self.dir.path().join("pgdata").display().to_string()
    }

    fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("pg.log").display().to_string();
        let out = self.run(
            "pg_ctl",
            &["-D", &self.data(), "-o", &opts, "-l", &log, "-w", "start"],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn stop_immediate(&self) {
        let out = self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn new() -> Option<Cluster> {
        let bin = pg_bindir()?;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"));
        let as_root = rustix::process::getuid().is_root();
        let c = Cluster {
            bin,
            dir,
            port,
            as_root,
        };
        if as_root {
            chown_postgres(c.dir.path());
        }
        let out = c.run(
            "initdb",
            &[
                "-D",
                &c.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        c.start();
        Some(c)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
    }
}

fn chown_postgres(dir: &Path) {
    let ok = Command::new("chown")
        .args(["postgres:postgres"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "chown postgres {}", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_fails_fast_and_recovers_without_a_restart() {
    let Some(cluster) = Cluster::new() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: the PostgreSQL server binaries (initdb, pg_ctl) must be installed"
        );
        eprintln!("skipping: no PostgreSQL server binaries (initdb, pg_ctl)");
        return;
    };
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port);
    let env = Env::with_database_url(&url);
    let (_, key, _) = env.create_app("outage");
    let server = env.spawn();
    let http = client();
    let user: Value = post_json(
        &server.url("/v1/users"),
        &key,
        json!({"first_name": "Outage"}),
    )
    .await;
    let uid = user["id"].as_str().unwrap_or_default().to_owned();
    let create = || {
        http.post(server.url("/v1/sessions"))
            .bearer_auth(&key)
            .json(&json!({"user_id": uid}))
            .send()
    };
    let mut acknowledged = Vec::new();
    let mut outage_answers = Vec::new();
    let phase_end = |secs| Instant::now() + Duration::from_secs(secs);

    let until = phase_end(1);
    while Instant::now() < until {
        let r = create().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status().as_u16(), 200);
        let v: Value = r.json().await.unwrap_or_default();
        acknowledged.push(v["id"].as_str().unwrap_or_default().to_owned());
    }

    cluster.stop_immediate();
    let until = phase_end(3);
    while Instant::now() < until {
        let started = Instant::now();
        let r = create().await.unwrap_or_else(|e| panic!("{e}"));
        let took = started.elapsed();
        let status = r.status().as_u16();
        let retry = r.headers().get("retry-after").is_some();
        let v: Value = r.json().await.unwrap_or_default();
        if status == 200 {
            acknowledged.push(v["id"].as_str().unwrap_or_default().to_owned());
        } else {
            outage_answers.push((status, took, retry, v));
        }
    }
    let probe_started = Instant::now();
    let probe = http
        .get(server.url("/readyz"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .unwrap_or_else(|e| panic!("a 1 s readiness probe must get an answer: {e}"));
    assert_eq!(probe.status().as_u16(), 503);
    assert!(probe.headers().get("retry-after").is_some());
    assert!(probe_started.elapsed() < Duration::from_secs(1));
    assert!(!outage_answers.is_empty());
    for (status, took, retry, body) in &outage_answers {
        assert_eq!(*status, 503, "{body}");
        assert!(*retry, "Retry-After on every 503");
        assert_eq!(body["errors"][0]["code"], "service_unavailable", "{body}");
        assert!(*took < Duration::from_millis(1500), "a 503 took {took:?}");
    }

    cluster.start();
    let deadline = phase_end(20);
    loop {
        let r = create().await.unwrap_or_else(|e| panic!("{e}"));
        if r.status().as_u16() == 200 {
            let v: Value = r.json().await.unwrap_or_default();
            acknowledged.push(v["id"].as_str().unwrap_or_default().to_owned());
            break;
        }
        assert!(Instant::now() < deadline, "no recovery within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = http
        .get(server.url("/readyz"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    assert_eq!(ready, 200, "ready again without a restart");
    for sid in &acknowledged {
        let r = http
            .get(server.url(&format!("/v1/sessions/{sid}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.status().as_u16(),
            200,
            "acknowledged session {sid} was lost"
        );
    }
    eprintln!(
        "outage: {} acknowledged, {} answered 503 during the outage (slowest {:?})",
        acknowledged.len(),
        outage_answers.len(),
        outage_answers.iter().map(|a| a.1).max()
    );
}
