//! `cargo bench --bench relay`: Ferry against a bare relay on the same load.
//!
//! In one process: a loopback sink that notes when each request arrives; Ferry
//! started in-process on a temporary SQLite file with a webhook → http recipe that
//! posts to the sink; a bare relay (an axum handler that forwards each request to
//! the sink with reqwest and stores nothing); and a load generator with N
//! keep-alive connections, bounded by a duration and a request count. Printed per
//! target: accepted and delivered req/s, ack and end-to-end latency percentiles,
//! lost (acknowledged but never delivered), CPU time per request (the whole
//! process, until the last delivery), and the process's peak RSS.
//!
//! Settings by environment: `RELAY_CONNECTIONS` (64), `RELAY_SECONDS` (10),
//! `RELAY_MAX_REQUESTS` (200000), `RELAY_ROUNDS` (3: every target in turn, medians
//! reported), `RELAY_TARGETS` (`relay,normal,full`: which
//! targets run, e.g. one alone under a profiler), `RELAY_PAYLOAD` (a JSON file
//! sent as each webhook's `body`, e.g. a 7 KB GitHub push; default a 100-byte
//! string), `RELAY_RATE` (requests per second over all connections: each
//! connection then sends on a fixed schedule instead of as soon as its answer
//! came, see [`generate`]).
//!
//! `RELAY_VIEW=user` measures what a user runs instead: the payload is sent as
//! the webhook's whole body (default `tests/data/github_push_payload.json`, 7.3 KB),
//! by 32 connections for 8 s unless set otherwise, and Ferry runs the recipe a user
//! writes — no `concurrency` key, two fields picked out of the payload:
//!
//! ```yaml
//! trigger: {webhook: {path: relay}}
//! steps:
//!   - http: {method: POST, url: SINK, json: {repo: "{{payload.repository.full_name}}", pusher: "{{payload.pusher.name}}"}}
//! ```
//!
//! `RELAY_CONCURRENCY=N` adds `concurrency: N` to it, to compare the default with
//! chosen values.
//!
//! The target `waiting` (`RELAY_TARGETS=relay,normal,waiting`) is `normal` beside
//! `RELAY_WAITING` runs (10000) of a second recipe that wait on `delay: 1h`, each
//! started by a webhook with the same payload before the load: what many waiting
//! runs cost the plain recipe's throughput, and the daemon's memory (the
//! process's RSS before and after they are stored, printed). The sink counts deliveries until the count stops; the table then gives the
//! delivered rate from the first request to the last delivery, and the drain: how
//! long deliveries went on after the load stopped.

// Tests and benchmarks stop at the first thing that is not as expected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use ferry::daemon::{Daemon, Settings};
use ferry::recipe::Environment;
use ferry::store::Durability;
use serde_json::{Value, json};

/// The allocator of the `ferry` binary (src/main.rs), so that Ferry runs here as
/// it runs there; the bare relay shares it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Arrival times at the sink, by request number.
type Arrivals = Arc<Mutex<HashMap<u64, Instant>>>;

struct Load {
    /// Whether each webhook is the payload itself (`RELAY_VIEW=user`) rather
    /// than `{"n": N, "body": payload}`.
    user_view: bool,
    connections: usize,
    /// Each webhook is `{"n": N, "body": body}`.
    body: Value,
    duration: Duration,
    max_requests: u64,
    /// Offered requests per second over all connections; `None` is a closed loop.
    rate: Option<f64>,
}

struct Outcome {
    name: String,
    started: Instant,
    accepted: u64,
    elapsed: Duration,
    ack_latencies: Vec<Duration>,
    acked_at: HashMap<u64, Instant>,
    /// CPU time of the whole process when the load started.
    cpu_at_start: Duration,
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let user_view = std::env::var("RELAY_VIEW").is_ok_and(|view| view == "user");
    let load = Load {
        user_view,
        connections: setting("RELAY_CONNECTIONS", if user_view { 32 } else { 64 }),
        duration: Duration::from_secs(setting("RELAY_SECONDS", if user_view { 8 } else { 10 })),
        max_requests: setting("RELAY_MAX_REQUESTS", 200_000),
        rate: std::env::var("RELAY_RATE")
            .ok()
            .map(|rate| rate.parse().expect("RELAY_RATE is a number of requests per second"))
            .filter(|rate: &f64| *rate > 0.0),
        body: match std::env::var("RELAY_PAYLOAD") {
            Ok(path) => {
                let text = std::fs::read_to_string(&path).expect("RELAY_PAYLOAD names a readable file");
                serde_json::from_str(&text).expect("RELAY_PAYLOAD holds JSON")
            }
            Err(_) if user_view => {
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/github_push_payload.json");
                let text = std::fs::read_to_string(path).expect("tests/data/github_push_payload.json");
                serde_json::from_str(&text).expect("the GitHub push payload is JSON")
            }
            Err(_) => json!("a webhook body of a realistic, if modest, size: 100 bytes or so."),
        },
    };
    println!(
        "relay benchmark: {} connections, {}, {} s or {} requests per target, {} bytes of body; idle RSS {:.1} MB",
        load.connections,
        load.rate
            .map_or("closed loop".to_owned(), |rate| format!("offered {rate:.0} req/s")),
        load.duration.as_secs(),
        load.max_requests,
        load.body.to_string().len(),
        rss_mb("VmRSS")
    );
    let arrivals: Arrivals = Arc::new(Mutex::new(HashMap::new()));
    let sink = serve(Router::new().route("/in", post(sink)).with_state(arrivals.clone())).await;

    let targets = std::env::var("RELAY_TARGETS").unwrap_or_else(|_| "relay,normal,full".to_owned());
    let targets: Vec<&str> = targets.split(',').map(str::trim).collect();
    // Rounds of every target in turn, so that a slow spell of a shared machine
    // weighs on the baseline and on Ferry alike; rates are the rounds' medians.
    let rounds: usize = setting("RELAY_ROUNDS", 3);
    let mut measured: Vec<Vec<Measured>> = vec![Vec::new(); 4];
    let waiting: u64 = setting("RELAY_WAITING", 10_000);
    for _ in 0..rounds {
        if targets.contains(&"relay") {
            measured[0].push(bare_relay(&load, &sink, &arrivals).await);
        }
        if targets.contains(&"normal") {
            measured[1].push(
                ferry(
                    &load,
                    &sink,
                    &arrivals,
                    Durability::ProcessCrash,
                    0,
                    "ferry (sync normal)",
                )
                .await,
            );
        }
        if targets.contains(&"full") {
            measured[2].push(ferry(&load, &sink, &arrivals, Durability::PowerLoss, 0, "ferry (sync full)").await);
        }
        if targets.contains(&"waiting") {
            let name = format!("ferry (normal, {waiting} waiting)");
            measured[3].push(ferry(&load, &sink, &arrivals, Durability::ProcessCrash, waiting, &name).await);
        }
    }

    println!();
    println!("medians of {rounds} rounds; latencies over all rounds; ratio: the median of each round's ratio");
    println!(
        "| target | accepted req/s | delivered req/s | ack p50 / p99 ms | end-to-end p50 / p99 ms | lost | CPU µs/req | drain s | ratio to baseline |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let baseline = &measured[0];
    for rounds in measured.iter().filter(|rounds| !rounds.is_empty()) {
        let ratio = if baseline.len() == rounds.len() {
            // The user's view compares what is delivered; the benchmark's, what is accepted.
            let rate = |round: &Measured| {
                if load.user_view {
                    round.delivered_rate
                } else {
                    round.accepted_rate
                }
            };
            let ratios: Vec<f64> = rounds
                .iter()
                .zip(baseline)
                .map(|(round, base)| rate(round) / rate(base))
                .collect();
            format!("{:.2}", median(ratios))
        } else {
            "-".to_owned()
        };
        let mut ack: Vec<Duration> = rounds.iter().flat_map(|round| round.ack_latencies.clone()).collect();
        let mut end_to_end: Vec<Duration> = rounds.iter().flat_map(|round| round.end_to_end.clone()).collect();
        println!(
            "| {} | {:.0} | {:.0} | {} / {} | {} / {} | {} | {:.0} | {:.1} | {ratio} |",
            rounds[0].name,
            median(rounds.iter().map(|round| round.accepted_rate).collect()),
            median(rounds.iter().map(|round| round.delivered_rate).collect()),
            percentile(&mut ack, 0.50),
            percentile(&mut ack, 0.99),
            percentile(&mut end_to_end, 0.50),
            percentile(&mut end_to_end, 0.99),
            rounds.iter().map(|round| round.lost).sum::<u64>(),
            median(rounds.iter().map(|round| round.cpu_per_request_us).collect()),
            median(rounds.iter().map(|round| round.drain_seconds).collect()),
        );
    }
    println!("peak RSS of the whole benchmark process: {:.1} MB", rss_mb("VmHWM"));
}

/// One round of one target.
#[derive(Clone)]
struct Measured {
    name: String,
    accepted_rate: f64,
    delivered_rate: f64,
    ack_latencies: Vec<Duration>,
    end_to_end: Vec<Duration>,
    lost: u64,
    cpu_per_request_us: f64,
    /// How long deliveries went on after the load stopped.
    drain_seconds: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

async fn bare_relay(load: &Load, sink: &str, arrivals: &Arrivals) -> Measured {
    #[derive(Clone)]
    struct Relay {
        client: reqwest::Client,
        target: String,
    }
    async fn forward(State(relay): State<Relay>, body: axum::body::Bytes) -> axum::http::StatusCode {
        let sent = relay
            .client
            .post(&relay.target)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => axum::http::StatusCode::ACCEPTED,
            _ => axum::http::StatusCode::BAD_GATEWAY,
        }
    }
    let relay = Relay {
        client: reqwest::Client::new(),
        target: format!("{sink}/in"),
    };
    let base = serve(Router::new().route("/hooks/relay", post(forward)).with_state(relay)).await;
    arrivals.lock().expect("lock").clear();
    let outcome = generate(load, &format!("{base}/hooks/relay"), "bare relay (no storage)").await;
    report(load, outcome, arrivals, Duration::from_secs(2)).await
}

async fn ferry(
    load: &Load,
    sink: &str,
    arrivals: &Arrivals,
    durability: Durability,
    waiting: u64,
    name: &str,
) -> Measured {
    let dir = tempfile::tempdir().expect("temp dir");
    let recipes = dir.path().join("recipes");
    std::fs::create_dir(&recipes).expect("recipes dir");
    let recipe = if load.user_view {
        // `RELAY_CONCURRENCY` adds the key, to compare defaults with chosen values.
        let concurrency = std::env::var("RELAY_CONCURRENCY")
            .map(|concurrency| format!("concurrency: {concurrency}\n"))
            .unwrap_or_default();
        format!(
            "{concurrency}trigger:\n  webhook: {{path: relay}}\nsteps:\n  - http:\n      method: POST\n      url: '{sink}/in'\n      json: {{repo: \"{{{{payload.repository.full_name}}}}\", pusher: \"{{{{payload.pusher.name}}}}\"}}\n"
        )
    } else {
        format!(
            "concurrency: 256\ntrigger: {{webhook: {{}}}}\nsteps:\n  - http:\n      url: '{sink}/in'\n      json: {{n: '{{{{payload.n}}}}', body: '{{{{payload.body}}}}'}}\n    retry: {{attempts: 5, backoff: 100ms, max: 1s}}\n"
        )
    };
    std::fs::write(recipes.join("relay.yaml"), recipe).expect("recipe");
    if waiting > 0 {
        std::fs::write(
            recipes.join("later.yaml"),
            "trigger: {webhook: {path: later}}\nsteps:\n  - delay: 1h\n  - log: 'later {{payload.repository.full_name}}'\n",
        )
        .expect("recipe");
    }
    let daemon = Daemon::start(Settings {
        recipes,
        database_url: format!("sqlite://{}", dir.path().join("ferry.db").display()),
        bind: "127.0.0.1:0".to_owned(),
        public_url: None,
        environment: Environment::default(),
        api_tokens: None,
        shutdown_grace: Duration::from_secs(30),
        durability,
        max_pending_webhooks: ferry::daemon::DEFAULT_MAX_PENDING_WEBHOOKS,
        max_body: ferry::daemon::DEFAULT_MAX_BODY,
        max_body_memory: ferry::api::DEFAULT_BODY_MEMORY,
        // One load generator on one address is not a sender to throttle.
        hook_limits: ferry::api::HookLimitSettings {
            per_ip: None,
            ..ferry::api::HookLimitSettings::default()
        },
        destinations: ferry::action::DestinationPolicy::default(),
        connections: ferry::api::server::ConnectionLimits::default(),
        retention: Some(ferry::daemon::DEFAULT_RETENTION),
        redact_headers: Vec::new(),
        render_budget: ferry::template::RenderBudget::default(),
        disk_low: None,
    })
    .await
    .expect("ferry starts");
    if waiting > 0 {
        fill_waiting(load, &format!("http://{}", daemon.local_addr()), waiting).await;
    }
    arrivals.lock().expect("lock").clear();
    let outcome = generate(load, &format!("http://{}/hooks/relay", daemon.local_addr()), name).await;
    let measured = report(load, outcome, arrivals, Duration::from_secs(120)).await;
    daemon.shutdown().await.expect("shutdown");
    measured
}

/// Starts `count` runs of the `later` recipe and waits (at most two minutes)
/// until every one waits on its delay, printing the process's RSS before and
/// after.
async fn fill_waiting(load: &Load, base: &str, count: u64) {
    let before = rss_mb("VmRSS");
    let client = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let senders: Vec<_> = (0..16)
        .map(|_| {
            let (client, next, body) = (client.clone(), next.clone(), load.body.clone());
            let url = format!("{base}/hooks/later");
            tokio::spawn(async move {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                    let response = client
                        .post(&url)
                        .json(&body)
                        .send()
                        .await
                        .expect("a waiting run's webhook");
                    assert_eq!(response.status().as_u16(), 202, "a waiting run is accepted");
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.expect("sender");
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let health: Value = client
            .get(format!("{base}/api/v1/health"))
            .send()
            .await
            .expect("health")
            .json()
            .await
            .expect("health JSON");
        if health["queue"]["waiting"].as_u64() == Some(count) {
            break;
        }
        assert!(Instant::now() < deadline, "{count} runs did not all wait: {health}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "{count} runs waiting after {:.1} s; the process's RSS {before:.1} MB before them, {:.1} MB with them",
        started.elapsed().as_secs_f64(),
        rss_mb("VmRSS")
    );
}

/// Sends numbered webhooks on `load.connections` connections until the duration or
/// the request count runs out.
///
/// In a closed loop (the default) each connection sends its next request as soon
/// as the last one is answered, so the target runs flat out and the mean latency
/// is the number of connections over the throughput (Little's law): it measures
/// capacity more than responsiveness. With a rate, each connection sends on a
/// schedule of its own (the connections' schedules staggered), so latency is
/// measured at a load the target may keep up with. Latency counts from the
/// moment a request is sent; a connection behind its schedule sends at once, and
/// the accepted rate printed shows whether the offered rate was held.
async fn generate(load: &Load, url: &str, name: &str) -> Outcome {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(load.connections)
        .build()
        .expect("client");
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let cpu_at_start = process_cpu();
    let started = Instant::now();
    let deadline = started + load.duration;
    let mut senders = Vec::new();
    // Each connection's time between sends, with a rate.
    let pace = load
        .rate
        .map(|rate| Duration::from_secs_f64(load.connections as f64 / rate));
    for connection in 0..load.connections {
        let (client, next, url, body) = (client.clone(), next.clone(), url.to_owned(), load.body.clone());
        let (max, user_view) = (load.max_requests, load.user_view);
        let mut due = pace.map(|pace| started + pace.mul_f64(connection as f64 / load.connections as f64));
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut latencies = Vec::new();
            loop {
                if let (Some(at), Some(pace)) = (due.as_mut(), pace) {
                    tokio::time::sleep_until((*at).into()).await;
                    *at += pace;
                }
                if Instant::now() >= deadline {
                    break;
                }
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= max {
                    break;
                }
                let body = if user_view {
                    body.clone()
                } else {
                    json!({"n": n, "body": body.clone()})
                };
                let sent = Instant::now();
                let Ok(response) = client.post(&url).json(&body).send().await else {
                    continue;
                };
                let accepted = response.status().as_u16() == 202;
                let _ = response.bytes().await;
                if accepted {
                    let now = Instant::now();
                    latencies.push(now - sent);
                    acked.push((n, now));
                }
            }
            (acked, latencies)
        }));
    }
    let mut outcome = Outcome {
        name: name.to_owned(),
        started,
        accepted: 0,
        elapsed: Duration::ZERO,
        ack_latencies: Vec::new(),
        acked_at: HashMap::new(),
        cpu_at_start,
    };
    for sender in senders {
        let (acked, latencies) = sender.await.expect("sender");
        outcome.accepted += acked.len() as u64;
        outcome.acked_at.extend(acked);
        outcome.ack_latencies.extend(latencies);
    }
    outcome.elapsed = started.elapsed();
    outcome
}

/// Waits (at most `drain`) for every acknowledged request to reach the sink —
/// in the user's view, until the deliveries stop coming — then gives the round's
/// figures (and prints them).
async fn report(load: &Load, outcome: Outcome, arrivals: &Arrivals, drain: Duration) -> Measured {
    let load_ended = Instant::now();
    let drain_deadline = load_ended + drain;
    let mut last_count = 0;
    let mut last_change = Instant::now();
    loop {
        let delivered = {
            let arrivals = arrivals.lock().expect("lock");
            if load.user_view {
                arrivals.len()
            } else {
                outcome.acked_at.keys().filter(|n| arrivals.contains_key(n)).count()
            }
        };
        if delivered != last_count {
            (last_count, last_change) = (delivered, Instant::now());
        }
        let stopped = load.user_view && last_change.elapsed() > Duration::from_secs(3);
        if delivered as u64 >= outcome.accepted || stopped || Instant::now() > drain_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Load generator, sink and target together, until the last delivery: on a
    // shared machine a steadier figure than the rates.
    let cpu = process_cpu().saturating_sub(outcome.cpu_at_start);
    let arrivals = arrivals.lock().expect("lock");
    let end_to_end: Vec<Duration> = outcome
        .acked_at
        .iter()
        .filter_map(|(n, acked)| arrivals.get(n).map(|arrived| arrived.saturating_duration_since(*acked)))
        .collect();
    let last_arrival = arrivals.values().max().copied();
    let delivered = if load.user_view {
        arrivals.len() as u64
    } else {
        end_to_end.len() as u64
    };
    let lost = outcome.accepted.saturating_sub(delivered);
    let seconds = outcome.elapsed.as_secs_f64();
    let accepted_rate = outcome.accepted as f64 / seconds;
    // Delivered over the time from the first request to the last delivery.
    let delivery_span = last_arrival
        .map_or(seconds, |last| {
            last.saturating_duration_since(outcome.started).as_secs_f64()
        })
        .max(seconds);
    let delivered_rate = delivered as f64 / delivery_span;
    let drain_seconds = last_arrival.map_or(0.0, |last| last.saturating_duration_since(load_ended).as_secs_f64());
    let measured = Measured {
        name: outcome.name,
        accepted_rate,
        delivered_rate,
        cpu_per_request_us: cpu.as_secs_f64() * 1e6 / outcome.accepted.max(1) as f64,
        lost,
        ack_latencies: outcome.ack_latencies,
        end_to_end,
        drain_seconds,
    };
    eprintln!(
        "round: {}: {:.0} accepted/s, {:.0} delivered/s, {} lost, {:.0} CPU µs/req, drain {:.1} s",
        measured.name,
        measured.accepted_rate,
        measured.delivered_rate,
        measured.lost,
        measured.cpu_per_request_us,
        measured.drain_seconds
    );
    measured
}

fn percentile(samples: &mut [Duration], quantile: f64) -> String {
    if samples.is_empty() {
        return "-".to_owned();
    }
    samples.sort_unstable();
    let index = ((samples.len() - 1) as f64 * quantile).round() as usize;
    format!("{:.1}", samples[index].as_secs_f64() * 1000.0)
}

/// Numbers for deliveries that carry none (the user's view), apart from the
/// load generator's.
static UNNUMBERED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 62);

async fn sink(State(arrivals): State<Arrivals>, body: axum::body::Bytes) -> axum::http::StatusCode {
    let arrived = Instant::now();
    let n = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|body| body["n"].as_u64())
        .unwrap_or_else(|| UNNUMBERED.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    arrivals.lock().expect("lock").entry(n).or_insert(arrived);
    axum::http::StatusCode::OK
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// User and system CPU time of the whole process so far (/proc/self/stat, in
/// ticks of 10 ms: the kernel's USER_HZ is 100 on Linux).
fn process_cpu() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // The fields after the command name, which is in parentheses: state
            // first, then utime and stime as the 12th and 13th.
            let fields: Vec<u64> = stat
                .rsplit_once(") ")?
                .1
                .split_whitespace()
                .map(|field| field.parse().unwrap_or(0))
                .collect();
            Some(fields.get(11)? + fields.get(12)?)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// A line of /proc/self/status in MB (`VmRSS` now, `VmHWM` the peak).
fn rss_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
