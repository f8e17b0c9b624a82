//! Spawning `sessiond` for tests: isolated data directories and databases, typed helpers.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sessiond_store_conformance::{Kind, TestDb};

pub const BIN: &str = env!("CARGO_BIN_EXE_sessiond");

/// One isolated installation: a data directory and, for PostgreSQL, its own database.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub database_url: Option<String>,
    _db: Option<TestDb>,
}

impl Env {
    pub fn sqlite() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
            database_url: None,
            _db: None,
        }
    }

    /// `None` outside CI when no PostgreSQL URL is configured.
    pub async fn postgres() -> Option<Env> {
        let db = TestDb::new(Kind::Postgres).await?;
        Some(Env {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
            database_url: Some(db.url.clone()),
            _db: Some(db),
        })
    }

    /// An installation on a database the test manages itself.
    pub fn with_database_url(url: &str) -> Env {
        Env {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
            database_url: Some(url.to_owned()),
            _db: None,
        }
    }

    pub async fn of(kind: Kind) -> Option<Env> {
        match kind {
            Kind::Sqlite => Some(Env::sqlite()),
            Kind::Postgres => Env::postgres().await,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A `sessiond` command bound to this installation, with no inherited `SESSIOND_*` settings.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_via(Command::new(BIN), args)
    }

    fn cmd_via(&self, mut c: Command, args: &[&str]) -> Command {
        for (k, _) in std::env::vars() {
            if k.starts_with("SESSIOND_") || k == "RUST_LOG" {
                c.env_remove(k);
            }
        }
        c.env("SESSIOND_DATA_DIR", self.data_dir());
        if let Some(u) = &self.database_url {
            c.env("SESSIOND_DATABASE_URL", u);
        }
        c.args(args).current_dir(self.dir.path());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.cmd(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run sessiond {args:?}: {e}"))
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "sessiond {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `apps create NAME --json` → (id, secret key, publishable key).
    pub fn create_app(&self, name: &str) -> (String, String, String) {
        let v: serde_json::Value =
            serde_json::from_str(&self.ok(&["apps", "create", name, "--json"]))
                .unwrap_or_else(|e| panic!("apps create --json: {e}"));
        let s = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("{k} missing in {v}"))
                .to_owned()
        };
        (s("id"), s("secret_key"), s("publishable_key"))
    }

    pub fn spawn(&self) -> Server {
        self.spawn_with(&[])
    }

    /// Serves with the open-file limit (soft and hard) set to `nofile`, through util-linux's
    /// `prlimit`.
    pub fn spawn_with_nofile(&self, nofile: u64) -> Server {
        let mut wrapper = Command::new("prlimit");
        wrapper
            .arg(format!("--nofile={nofile}:{nofile}"))
            .arg("--")
            .arg(BIN);
        Server::start(self.cmd_via(wrapper, &["serve", "--listen", "127.0.0.1:0"]))
    }

    pub fn spawn_with(&self, env: &[(&str, &str)]) -> Server {
        let mut c = self.cmd(&["serve", "--listen", "127.0.0.1:0"]);
        for (k, v) in env {
            c.env(k, v);
        }
        Server::start(c)
    }
}

/// A running server process. Killed on drop if still running.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

fn collect(r: impl std::io::Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if std::env::var_os("TEST_LOG").is_some() {
                eprintln!("[sessiond] {line}");
            }
            if let Ok(mut v) = into.lock() {
                v.push(line);
            }
        }
    });
}

impl Server {
    fn start(mut c: Command) -> Server {
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap_or_else(|e| panic!("spawn sessiond: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(o) = child.stdout.take() {
            collect(o, stdout.clone());
        }
        if let Some(e) = child.stderr.take() {
            collect(e, stderr.clone());
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let addr = stdout.lock().ok().and_then(|lines| {
                lines.iter().find_map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).ok()?;
                    (v["message"] == "listening").then(|| v["addr"].as_str().map(str::to_owned))?
                })
            });
            if let Some(addr) = addr {
                return Server {
                    child: Some(child),
                    base: format!("http://{addr}"),
                    stdout,
                    stderr,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "sessiond exited with {status} before listening:\n{}\n{}",
                    stderr.lock().map(|v| v.join("\n")).unwrap_or_default(),
                    stdout.lock().map(|v| v.join("\n")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "sessiond did not start within 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The node's Prometheus exposition, as text.
    pub async fn metrics(&self) -> String {
        client()
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET /metrics: {e}"))
            .text()
            .await
            .unwrap_or_default()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().map(|v| v.join("\n")).unwrap_or_default()
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The secret key printed by the first-start bootstrap.
    pub fn bootstrap_key(&self) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = self.stderr_text().lines().find_map(|l| {
                l.trim()
                    .strip_prefix("secret key:")
                    .map(|k| k.trim().to_owned())
            });
            if found.is_some() || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown, no flush, as in a crash or power cut of the process.
    pub fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit; returns (exit code, how long it took).
    pub fn terminate(mut self) -> (Option<i32>, Duration) {
        let Some(mut child) = self.child.take() else {
            return (None, Duration::ZERO);
        };
        let started = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return (status.code(), started.elapsed());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return (None, started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// GET with an optional bearer key; returns (status, JSON body or Null, headers).
pub async fn get(
    url: &str,
    key: Option<&str>,
) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let mut req = client().get(url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        headers,
    )
}

/// A request with a bearer key and an optional JSON body; returns (status, JSON body or Null).
pub async fn call(
    base: &str,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut r = client()
        .request(method, format!("{base}{path}"))
        .bearer_auth(key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// POSTs `body` as JSON with a bearer key; returns the JSON answer, or Null.
pub async fn post_json(url: &str, key: &str, body: serde_json::Value) -> serde_json::Value {
    client()
        .post(url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"))
        .json()
        .await
        .unwrap_or_default()
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Runs a test body against SQLite and PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            use sessiond_store_conformance::Kind;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $body(Kind::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $body(Kind::Postgres).await;
            }
        }
    };
}
