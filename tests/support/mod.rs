//! Test support: the real daemon in-process on a temporary SQLite file, a real
//! loopback destination that records what it receives, and polling with a deadline.

#![allow(dead_code)] // each test file uses a different part of this module

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use ferry::api::ApiTokens;
use ferry::daemon::{Daemon, Settings};
use ferry::recipe::Environment;
use serde_json::Value;
use tempfile::TempDir;

pub mod browser;
pub mod sign;
pub mod source;

/// How long a test waits for something that should happen in milliseconds.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// A daemon on 127.0.0.1 with its own recipes folder and database.
pub struct TestDaemon {
    pub daemon: Daemon,
    pub base: String,
    pub http: reqwest::Client,
    pub dir: TempDir,
    /// Sent with every API request of the helpers below.
    pub token: Option<String>,
}

/// How a test daemon differs from the defaults.
#[derive(Default, Clone, Copy)]
pub struct Setup<'a> {
    /// What `${NAME}` in recipes is filled from.
    pub environment: &'a [(&'a str, &'a str)],
    /// The value of `FERRY_API_TOKENS`; the first token is used by the helpers.
    pub api_tokens: Option<&'a str>,
    /// The value of `FERRY_API_READ_TOKENS`.
    pub api_read_tokens: Option<&'a str>,
    /// How long a shutdown waits for runs in flight (default 10 s).
    pub shutdown_grace: Option<Duration>,
    /// Webhooks waiting to be stored at once (default 1024).
    pub max_pending_webhooks: Option<usize>,
    /// The largest webhook body (default 1 MiB).
    pub max_body: Option<usize>,
    /// `FERRY_MAX_BODY_MEMORY` (default 64 MiB).
    pub max_body_memory: Option<usize>,
    /// Rate limits of `/hooks/*` (default: 1000/s and 10/s failures per address).
    pub hook_limits: Option<ferry::api::HookLimitSettings>,
    /// `FERRY_DENY_PRIVATE_DESTINATIONS`.
    pub deny_private_destinations: bool,
    /// Open connections and the header deadline (default 1024 and 10 s).
    pub connections: Option<ferry::api::server::ConnectionLimits>,
    /// `FERRY_RETENTION` (default 30 days).
    pub retention: Option<Duration>,
    /// `FERRY_REDACT_HEADERS`.
    pub redact_headers: &'a [&'a str],
    /// `FERRY_RENDER_MAX_WORK`, `FERRY_RENDER_MAX_BYTES` and `FERRY_RUN_MAX_RESULTS`.
    pub render_budget: Option<ferry::template::RenderBudget>,
}

impl TestDaemon {
    /// Writes each `(file name, YAML)` into a fresh recipes folder and starts a daemon on it.
    pub async fn start(recipes: &[(&str, &str)]) -> Self {
        Self::start_with(recipes, Setup::default()).await
    }

    /// As [`Self::start`], with `${NAME}` in recipes filled from `environment`.
    pub async fn start_with_env(recipes: &[(&str, &str)], environment: &[(&str, &str)]) -> Self {
        Self::start_with(
            recipes,
            Setup {
                environment,
                ..Setup::default()
            },
        )
        .await
    }

    /// As [`Self::start`], with a [`Setup`].
    pub async fn start_with(recipes: &[(&str, &str)], setup: Setup<'_>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let recipes_dir = dir.path().join("recipes");
        std::fs::create_dir(&recipes_dir).expect("recipes dir");
        for (name, text) in recipes {
            std::fs::write(recipes_dir.join(name), text).expect("write recipe");
        }
        Self::start_in(dir, recipes_dir, setup).await
    }

    /// Starts a daemon on an existing recipes folder, with the database in `dir`.
    pub async fn start_in(dir: TempDir, recipes: std::path::PathBuf, setup: Setup<'_>) -> Self {
        let settings = Settings {
            recipes,
            database_url: format!("sqlite://{}", dir.path().join("ferry.db").display()),
            bind: "127.0.0.1:0".to_owned(),
            public_url: None,
            environment: Environment::from_pairs(setup.environment.iter().copied()),
            api_tokens: ApiTokens::from_settings(setup.api_tokens, setup.api_read_tokens).expect("valid tokens"),
            shutdown_grace: setup.shutdown_grace.unwrap_or(ferry::daemon::DEFAULT_SHUTDOWN_GRACE),
            durability: ferry::store::Durability::default(),
            max_pending_webhooks: setup
                .max_pending_webhooks
                .unwrap_or(ferry::daemon::DEFAULT_MAX_PENDING_WEBHOOKS),
            max_body: setup.max_body.unwrap_or(ferry::daemon::DEFAULT_MAX_BODY),
            max_body_memory: setup.max_body_memory.unwrap_or(ferry::api::DEFAULT_BODY_MEMORY),
            hook_limits: setup.hook_limits.unwrap_or_default(),
            destinations: ferry::action::DestinationPolicy {
                deny_private: setup.deny_private_destinations,
            },
            connections: setup.connections.unwrap_or_default(),
            retention: Some(setup.retention.unwrap_or(ferry::daemon::DEFAULT_RETENTION)),
            redact_headers: setup.redact_headers.iter().map(|name| (*name).to_owned()).collect(),
            render_budget: setup.render_budget.unwrap_or_default(),
            disk_low: None,
        };
        let daemon = Daemon::start(settings).await.expect("daemon starts");
        let base = format!("http://{}", daemon.local_addr());
        let token = setup
            .api_tokens
            .and_then(|tokens| tokens.split(',').next())
            .map(|token| token.trim().to_owned());
        Self {
            daemon,
            base,
            http: http_client(),
            dir,
            token,
        }
    }

    /// POSTs JSON to `/hooks/{path}` and gives status and answer.
    pub async fn post_hook(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/hooks/{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("webhook request");
        let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
        (status, response.json().await.expect("JSON answer"))
    }

    /// POSTs to an API route (with the token, if any) and gives status and answer.
    pub async fn post_api(&self, path: &str) -> (StatusCode, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("POST request");
        let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
        (status, response.json().await.expect("JSON answer"))
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("GET request");
        let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
        (status, response.json().await.expect("JSON answer"))
    }

    /// The HTML of a status page path (`/runs/ID`).
    pub async fn get_page(&self, path: &str) -> String {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET page");
        response.text().await.expect("page text")
    }

    /// Polls `GET /api/v1/runs/{id}` until the run has ended, and gives the document.
    pub async fn wait_for_end(&self, run_id: &str) -> Value {
        let ended = ["succeeded", "failed", "skipped"];
        poll_until(&format!("run {run_id} to end"), || async {
            let (status, run) = self.get_json(&format!("/api/v1/runs/{run_id}")).await;
            assert_eq!(status, StatusCode::OK, "{run}");
            ended
                .contains(&run["status"].as_str().unwrap_or_default())
                .then_some(run)
        })
        .await
    }
}

/// A loopback address where nothing listens (bound, then released), below the
/// ephemeral range: a port the kernel handed out could be handed again, to one
/// of the thousands of client connections some tests open, before the daemon
/// meant to listen on it binds it.
/// Runs the `ferry` binary with `args`, outside any daemon's settings, and
/// waits for it: `(exit code, stdout, stderr)`.
pub fn ferry(args: &[&str]) -> (Option<i32>, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env_remove("FERRY_RECIPES")
        .env_remove("FERRY_PUBLIC_URL")
        .output()
        .expect("run ferry");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The keys a step may have, as messages list them: `id, when, http, …`.
/// Tests build messages with it, so that a new step kind changes no test.
pub fn step_keys() -> String {
    ferry::recipe::config::StepConfig::keys().join(", ")
}

pub fn free_address() -> std::net::SocketAddr {
    use std::sync::atomic::{AtomicU16, Ordering};
    // Each test process starts at its own place in 20 000–32 000.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let offset = (std::process::id() % 6000) as u16 * 2;
    for _ in 0..12_000 {
        let port = 20_000 + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        if let Ok(address) = std::net::TcpListener::bind(("127.0.0.1", port)).and_then(|listener| listener.local_addr())
        {
            return address;
        }
    }
    panic!("no free port in 20 000–32 000")
}

/// `ferry serve` of the built binary on `port`, with the recipes folder
/// `dir/recipes` and the database `dir/ferry.db`; output discarded unless the
/// caller redirects it.
pub fn ferry_serve(dir: &std::path::Path, port: u16) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"));
    command
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--recipes")
        .arg(dir.join("recipes"))
        .arg("--database")
        .arg(format!("sqlite://{}", dir.join("ferry.db").display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command
}

/// A child daemon, ended when the test ends (also on failure).
pub struct Running(pub std::process::Child);

impl Running {
    /// The process's peak resident memory so far (`VmHWM`), in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).expect("/proc status");
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM");
        kib / 1024.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ferry serve` of the built binary in a folder of its own, with these recipes;
/// up once it answers a webhook at `/hooks/{first}` (that one starts a run).
pub struct ChildDaemon {
    pub dir: TempDir,
    pub daemon: Running,
    pub http: reqwest::Client,
    pub base: String,
}

impl Drop for ChildDaemon {
    /// A failing test shows what the daemon complained of.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the daemon's log, without INFO lines:\n{}", self.log_problems());
        }
    }
}

impl ChildDaemon {
    pub async fn start(recipes: &[(&str, &str)], first: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("recipes")).expect("recipes dir");
        for (name, text) in recipes {
            std::fs::write(dir.path().join("recipes").join(name), text).expect("recipe");
        }
        let log = std::fs::File::create(dir.path().join("ferry.log")).expect("log file");
        // Port 0, and the address from what it prints: a port found free and
        // handed over could be taken meanwhile by a test's client connection.
        let mut child = ferry_serve(dir.path(), 0)
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start ferry serve");
        let stdout = child.stdout.take().expect("stdout");
        let daemon = Running(child);
        let (found, address) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            let mut found = Some(found);
            // Read to the end, so that the daemon never writes into a closed pipe.
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("ferry listening on ")
                    && let Some(found) = found.take()
                {
                    let _ = found.send(address.split(' ').next().unwrap_or_default().to_owned());
                }
            }
        });
        let base = address
            .recv_timeout(DEADLINE)
            .expect("the daemon says where it listens");
        let http = http_client();
        post_hook_when_up(&http, &base, first, &serde_json::json!({})).await;
        Self {
            dir,
            daemon,
            http,
            base,
        }
    }

    /// The daemon's log lines that are not INFO (warnings, errors).
    pub fn log_problems(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ferry.log"))
            .unwrap_or_default()
            .lines()
            .filter(|line| !line.contains(" INFO ") && !line.contains(" DEBUG "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The daemon's log lines at error, to say why a test failed.
    pub fn complaints(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ferry.log"))
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(" ERROR "))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// An HTTP client for tests (reqwest is built without a default TLS provider).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Polls a daemon (in-process or a child process) at `base` until run `run_id`
/// has succeeded, and gives its document; on time-out says the last answer.
pub async fn wait_for_success(http: &reqwest::Client, base: &str, run_id: &str) -> Value {
    let start = Instant::now();
    loop {
        let last = match http.get(format!("{base}/api/v1/runs/{run_id}")).send().await {
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                match serde_json::from_str::<Value>(&text) {
                    Ok(run) if run["status"] == "succeeded" => return run,
                    _ => format!("{status} {text}"),
                }
            }
            Err(error) => error.to_string(),
        };
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting for run {run_id} to succeed; the last answer: {last}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Posts `body` to a child daemon's `/hooks/{path}` until it is up and answers
/// with JSON; gives that answer.
pub async fn post_hook_when_up(http: &reqwest::Client, base: &str, path: &str, body: &Value) -> Value {
    poll_until(&format!("the daemon to accept a webhook at /hooks/{path}"), || async {
        let response = http.post(format!("{base}/hooks/{path}")).json(body).send().await.ok()?;
        response.json().await.ok()
    })
    .await
}

/// Calls `check` until it gives `Some`, failing the test after [`DEADLINE`].
pub async fn poll_until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Answers a sink gives in turn: `(status, headers)`.
type Script = Arc<Mutex<std::collections::VecDeque<(u16, Vec<(String, String)>)>>>;

/// A request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path_and_query: String,
    pub headers: axum::http::HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("sink received JSON")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

#[derive(Clone)]
struct SinkState {
    received: Arc<Mutex<Vec<Received>>>,
    status: StatusCode,
    /// `None`: echo what was received.
    answer: Option<Value>,
    /// How long each answer takes: a slow destination, not synchronization.
    delay: Duration,
    /// Answers to give in turn before the fixed one: `(status, headers)`.
    script: Script,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    most_in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

/// The database files in `dir` (`ferry.db` and its WAL and shared-memory files),
/// each by name with its bytes as text, to look for what must not be stored.
pub fn database_files(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("database dir")
        .filter_map(|entry| {
            let path = entry.expect("entry").path();
            let name = path.file_name()?.to_str()?.to_owned();
            name.starts_with("ferry.db").then(|| {
                let bytes = std::fs::read(&path).expect("database file");
                (name, String::from_utf8_lossy(&bytes).into_owned())
            })
        })
        .collect();
    files.sort();
    assert!(
        files.iter().any(|(name, _)| name == "ferry.db"),
        "no database file in {}",
        dir.display()
    );
    files
}

/// A loopback HTTP destination that records every request and answers with a
/// fixed status and JSON body.
pub struct Sink {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    most_in_flight: Arc<std::sync::atomic::AtomicUsize>,
    script: Script,
}

impl Sink {
    pub async fn start(status: u16, answer: Value) -> Self {
        Self::serve(status, Some(answer), Duration::ZERO).await
    }

    /// A sink that answers 200 with what it received: `{method, uri, headers, body}`.
    pub async fn echo() -> Self {
        Self::serve(200, None, Duration::ZERO).await
    }

    /// A sink that takes `delay` to answer each request.
    pub async fn slow(delay: Duration) -> Self {
        Self::serve(200, Some(serde_json::json!({})), delay).await
    }

    /// A sink that first answers with `script`, one entry per request, then 200.
    pub async fn scripted(script: &[(u16, &[(&str, &str)])]) -> Self {
        let sink = Self::serve(200, Some(serde_json::json!({"ok": true})), Duration::ZERO).await;
        let mut queue = sink.script.lock().expect("script lock");
        for (status, headers) in script {
            let headers = headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect();
            queue.push_back((*status, headers));
        }
        drop(queue);
        sink
    }

    /// Serves on a given address (a port chosen before anything listened on it).
    pub async fn start_on(address: std::net::SocketAddr) -> Self {
        Self::serve_on(address, 200, Some(serde_json::json!({"ok": true})), Duration::ZERO).await
    }

    async fn serve(status: u16, answer: Option<Value>, delay: Duration) -> Self {
        Self::serve_on("127.0.0.1:0".parse().expect("address"), status, answer, delay).await
    }

    async fn serve_on(address: std::net::SocketAddr, status: u16, answer: Option<Value>, delay: Duration) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let most_in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let script = Arc::new(Mutex::new(std::collections::VecDeque::new()));
        let state = SinkState {
            script: script.clone(),
            received: received.clone(),
            status: StatusCode::from_u16(status).expect("status"),
            answer,
            delay,
            in_flight: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            most_in_flight: most_in_flight.clone(),
        };
        let router = Router::new().fallback(record).with_state(state);
        let listener = tokio::net::TcpListener::bind(address).await.expect("bind sink");
        let url = format!("http://{}", listener.local_addr().expect("sink address"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            url,
            received,
            most_in_flight,
            script,
        }
    }

    /// The most requests the sink was answering at the same time.
    pub fn most_in_flight(&self) -> usize {
        self.most_in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("sink lock").clone()
    }
}

async fn record(State(state): State<SinkState>, request: Request) -> impl IntoResponse {
    use std::sync::atomic::Ordering;
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.most_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(state.delay).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let received = Received {
        method: parts.method.to_string(),
        path_and_query: parts.uri.path_and_query().map(ToString::to_string).unwrap_or_default(),
        headers: parts.headers,
        body,
    };
    let answer = state.answer.clone().unwrap_or_else(|| {
        serde_json::json!({
            "method": received.method,
            "uri": received.path_and_query,
            "headers": ferry::headers::to_object(&received.headers),
            "body": String::from_utf8_lossy(&received.body),
        })
    });
    state.received.lock().expect("sink lock").push(received);
    let scripted = state.script.lock().expect("script lock").pop_front();
    let (status, headers) = match scripted {
        Some((status, headers)) => (StatusCode::from_u16(status).expect("status"), headers),
        None => (state.status, Vec::new()),
    };
    let mut response = (status, axum::Json(answer)).into_response();
    for (name, value) in headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            axum::http::HeaderValue::from_str(&value).expect("header value"),
        );
    }
    response
}

/// Step `id` of a run document (panics, showing the run, when it has none).
pub fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|step| step["id"] == id))
        .unwrap_or_else(|| panic!("no step `{id}` in {run:#}"))
}

/// A loopback destination that records each request's `Idempotency-Key` and
/// JSON body, answering `{"ok": true}`, and holds unanswered the requests
/// `hold` picks (given the key and how many times it has come, this one
/// included): a test kills the daemon while one is in flight. A held request
/// is answered after 30 s, long after any test has moved on.
pub struct KeyedSink {
    pub url: String,
    requests: Arc<Mutex<Vec<(String, Value)>>>,
}

impl KeyedSink {
    pub async fn start(hold: impl Fn(&str, usize) -> bool + Clone + Send + Sync + 'static) -> Self {
        let requests: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let recorded = requests.clone();
        let router = Router::new().fallback(move |headers: axum::http::HeaderMap, body: Bytes| {
            let (recorded, hold) = (recorded.clone(), hold.clone());
            async move {
                let key = headers
                    .get("idempotency-key")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let held = {
                    let mut requests = recorded.lock().expect("requests");
                    requests.push((key.clone(), serde_json::from_slice(&body).unwrap_or(Value::Null)));
                    hold(&key, requests.iter().filter(|(seen, _)| *seen == key).count())
                };
                if held {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                axum::Json(serde_json::json!({"ok": true}))
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, requests }
    }

    /// Each request's key and body, in the order they came.
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.requests.lock().expect("requests").clone()
    }

    pub fn keys(&self) -> Vec<String> {
        self.requests().into_iter().map(|(key, _)| key).collect()
    }
}

/// `ferry SUBCOMMAND FOLDER` (`check`, `test`): its exit code, stdout and stderr.
pub fn ferry_on(subcommand: &str, folder: &std::path::Path) -> (Option<i32>, String, String) {
    ferry(&[subcommand, folder.to_str().expect("utf-8 path")])
}

/// Rewrites a file with `from` replaced by `to`: a test mends a recipe and
/// checks it again.
pub fn replace_in(path: &std::path::Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read the file");
    std::fs::write(path, text.replace(from, to)).expect("write the file");
}
