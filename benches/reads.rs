//! `cargo bench --bench reads`: the API's reads at a million runs, and what
//! clients listing runs cost the webhooks.
//!
//! Fills a database with `READS_RUNS` runs (default 1 000 000; written straight
//! into the `runs` table in large transactions, as the writer would leave them:
//! one a second apart, a 600-byte payload each, 1 in 100 failed, 1 in 200
//! skipped, the first 100 of recipe `rare` and the rest of `hook`), writes
//! `READS_RECIPES` more recipes (default 10 000, without runs) beside those two,
//! starts Ferry on it in-process, and then:
//!
//! 1. times each read of the API and the status page `READS_SAMPLES` times (50)
//!    one after another, and prints p50 / p99;
//! 2. sends webhooks on 16 keep-alive connections for `READS_SECONDS` (6) alone,
//!    then again while `READS_CLIENTS` clients (16) each list runs at
//!    `READS_CLIENT_RATE` requests per second (20: `?status=failed`, `?limit=50`
//!    and `?recipe=rare` in turn), and prints both webhook rates and the listings'
//!    latency under that load.
//!
//! Every loop is bounded in time and count; everything stays on 127.0.0.1.

// Tests and benchmarks stop at the first thing that is not as expected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use ferry::daemon::{Daemon, Settings};
use ferry::recipe::Environment;
use ferry::store::{Durability, Store};
use serde_json::json;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// 2025-12-01T00:00:00Z: the first run's time.
const START: i64 = 1_764_547_200;

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let runs: i64 = setting("READS_RUNS", 1_000_000);
    let samples: usize = setting("READS_SAMPLES", 50);
    let seconds: u64 = setting("READS_SECONDS", 6);
    let clients: usize = setting("READS_CLIENTS", 16);
    let client_rate: f64 = setting("READS_CLIENT_RATE", 20.0);
    let more_recipes: usize = setting("READS_RECIPES", 10_000);

    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("ferry.db");
    let url = format!("sqlite://{}", database.display());
    Store::open(&url, Durability::default())
        .await
        .expect("store")
        .close()
        .await;
    let filling = Instant::now();
    tokio::task::spawn_blocking({
        let database = database.clone();
        move || fill(&database, runs)
    })
    .await
    .expect("fill");
    println!(
        "reads benchmark: {runs} runs stored in {:.1} s ({:.0} MB)",
        filling.elapsed().as_secs_f64(),
        std::fs::metadata(&database).map_or(0.0, |metadata| metadata.len() as f64 / 1e6)
    );

    let delivered = Arc::new(AtomicU64::new(0));
    let sink = {
        let delivered = delivered.clone();
        serve(Router::new().route(
            "/in",
            post(move || {
                delivered.fetch_add(1, Ordering::Relaxed);
                async { axum::http::StatusCode::OK }
            }),
        ))
        .await
    };
    let recipes = dir.path().join("recipes");
    std::fs::create_dir(&recipes).expect("recipes dir");
    for id in ["hook", "rare"] {
        std::fs::write(
            recipes.join(format!("{id}.yaml")),
            format!(
                "trigger: {{webhook: {{}}}}\nsteps:\n  - http: {{method: POST, url: '{sink}/in', json: {{n: '{{{{payload.n}}}}'}}}}\n"
            ),
        )
        .expect("recipe");
    }
    for n in 0..more_recipes {
        std::fs::write(
            recipes.join(format!("r{n:05}.yaml")),
            format!("description: recipe {n}\ntrigger: {{webhook: {{}}}}\nsteps: [{{log: 'recipe {n} {{{{payload.n}}}}'}}]\n"),
        )
        .expect("recipe");
    }
    let starting = Instant::now();
    let daemon = Daemon::start(settings(recipes, url)).await.expect("ferry starts");
    println!(
        "{} recipes loaded at start in {:.1} s",
        more_recipes + 2,
        starting.elapsed().as_secs_f64()
    );
    let base = format!("http://{}", daemon.local_addr());
    let http = reqwest::Client::new();

    let middle = START + runs / 2;
    let reads = [
        ("runs, first page", "/api/v1/runs?limit=50".to_owned()),
        ("runs of a rare recipe", "/api/v1/runs?recipe=rare".to_owned()),
        ("failed runs", "/api/v1/runs?status=failed".to_owned()),
        (
            "failed runs of a recipe",
            "/api/v1/runs?recipe=hook&status=failed".to_owned(),
        ),
        (
            "a time window",
            format!("/api/v1/runs?since={}&until={}", time(middle), time(middle + 3_600)),
        ),
        (
            "a page deep in the past",
            format!("/api/v1/runs?cursor={}", cursor_before(middle)),
        ),
        ("one run", format!("/api/v1/runs/{}", run_id(middle))),
        ("every recipe", "/api/v1/recipes".to_owned()),
        ("a page of recipes", "/api/v1/recipes?limit=100".to_owned()),
        ("a recipe with its counts", "/api/v1/recipes/hook".to_owned()),
        ("status page", "/".to_owned()),
    ];
    println!();
    println!("| read ({samples} in a row) | p50 ms | p99 ms |");
    println!("|---|---|---|");
    for (name, path) in &reads {
        let mut times = Vec::with_capacity(samples);
        for _ in 0..samples {
            let started = Instant::now();
            let response = http.get(format!("{base}{path}")).send().await.expect("read");
            assert!(response.status().is_success(), "{path}: {}", response.status());
            response.bytes().await.expect("body");
            times.push(started.elapsed());
        }
        println!(
            "| {name} (`{path}`) | {} | {} |",
            percentile(&mut times, 0.5),
            percentile(&mut times, 0.99)
        );
    }

    let duration = Duration::from_secs(seconds);
    let alone = webhooks(&base, duration).await;
    let listing = tokio::spawn(list(base.clone(), clients, client_rate, duration));
    let beside = webhooks(&base, duration).await;
    let (mut latencies, listed) = listing.await.expect("listing clients");
    println!();
    println!("| webhooks (16 connections, {seconds} s) | accepted/s |");
    println!("|---|---|");
    println!("| alone | {alone:.0} |");
    println!(
        "| while {clients} clients list runs at {client_rate:.0}/s each ({:.0} lists/s done; p50 {} ms, p99 {} ms) | {beside:.0} |",
        listed as f64 / duration.as_secs_f64(),
        percentile(&mut latencies, 0.5),
        percentile(&mut latencies, 0.99)
    );
    println!("ratio {:.2} (with the listing clients / alone)", beside / alone);
    daemon.shutdown().await.expect("shutdown");
}

/// Writes `count` runs straight into the table, in transactions of 50 000.
fn fill(database: &std::path::Path, count: i64) {
    let mut connection = rusqlite::Connection::open(database).expect("open");
    connection.pragma_update(None, "synchronous", "OFF").expect("pragma");
    let payload = json!({
        "ref": "refs/heads/main",
        "repository": {"full_name": "octo-org/octo-repo", "private": false, "html_url": "https://github.com/octo-org/octo-repo"},
        "pusher": {"name": "octocat", "email": "octocat@example.com"},
        "head_commit": {"id": "7f0c6d3f1b2a4c5d6e7f8091a2b3c4d5e6f70819", "message": "Fix the thing that broke the other thing", "timestamp": "2025-12-01T00:00:00Z"},
        "compare": "https://github.com/octo-org/octo-repo/compare/1234567890ab...7f0c6d3f1b2a"
    })
    .to_string();
    let mut done = 0;
    while done < count {
        let transaction = connection.transaction().expect("transaction");
        {
            let mut insert = transaction
                .prepare(
                    "INSERT INTO runs (id, recipe, recipe_version, trigger, status, received_at, started_at,
                                       finished_at, error, payload, headers, query)
                     VALUES (?1, ?2, 'v1', 'webhook', ?3, ?4, ?4, ?4, ?5, ?6, '{}', '{}')",
                )
                .expect("insert");
            for index in done..(done + 50_000).min(count) {
                let status = match index {
                    index if index % 100 == 3 => "failed",
                    index if index % 200 == 11 => "skipped",
                    _ => "succeeded",
                };
                let recipe = if index < 100 { "rare" } else { "hook" };
                let error = (status == "failed").then_some("POST http://127.0.0.1:9/in: connection refused");
                let at = time(START + index);
                insert
                    .execute(rusqlite::params![
                        run_id(START + index),
                        recipe,
                        status,
                        at,
                        error,
                        payload
                    ])
                    .expect("insert run");
            }
        }
        transaction.commit().expect("commit");
        done = (done + 50_000).min(count);
    }
}

/// A UUIDv7-shaped id of the run received at `second`.
fn run_id(second: i64) -> String {
    let millis = second * 1000;
    format!("{:08x}-{:04x}-7000-8000-{:012x}", millis >> 16, millis & 0xffff, second)
}

/// The cursor of the page that starts before the run received at `second`, as
/// a client that paged down to it holds (the API's cursors are base64url JSON).
fn cursor_before(second: i64) -> String {
    use base64::Engine as _;
    let cursor = json!({"before": run_id(second), "recipe": null, "status": null, "since": null, "until": null});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(cursor.to_string())
}

fn time(second: i64) -> String {
    chrono::DateTime::from_timestamp(second, 0)
        .expect("time")
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Webhooks accepted per second on 16 keep-alive connections, closed loop.
async fn webhooks(base: &str, duration: Duration) -> f64 {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .build()
        .expect("client");
    let accepted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let senders: Vec<_> = (0..16)
        .map(|connection| {
            let (client, accepted, url) = (client.clone(), accepted.clone(), format!("{base}/hooks/hook"));
            tokio::spawn(async move {
                let mut n: u64 = connection * 1_000_000;
                while Instant::now() < deadline && n < (connection + 1) * 1_000_000 {
                    n += 1;
                    if let Ok(response) = client.post(&url).json(&json!({"n": n})).send().await
                        && response.status().as_u16() == 202
                    {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.expect("sender");
    }
    accepted.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// `clients` clients each listing runs at `rate` per second for `duration`:
/// the latencies, and how many lists were answered.
async fn list(base: String, clients: usize, rate: f64, duration: Duration) -> (Vec<Duration>, u64) {
    let paths = [
        "/api/v1/runs?status=failed",
        "/api/v1/runs?limit=50",
        "/api/v1/runs?recipe=rare",
    ];
    let pace = Duration::from_secs_f64(1.0 / rate);
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|client_number| {
            let (http, base) = (reqwest::Client::new(), base.clone());
            tokio::spawn(async move {
                let mut due = started + pace.mul_f64(client_number as f64 / clients as f64);
                let mut latencies = Vec::new();
                for n in 0.. {
                    tokio::time::sleep_until(due.into()).await;
                    due += pace;
                    if Instant::now() >= deadline {
                        break;
                    }
                    let sent = Instant::now();
                    let path = paths[(n + client_number) % paths.len()];
                    if let Ok(response) = http.get(format!("{base}{path}")).send().await
                        && response.status().is_success()
                        && response.bytes().await.is_ok()
                    {
                        latencies.push(sent.elapsed());
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client"));
    }
    let listed = latencies.len() as u64;
    (latencies, listed)
}

fn settings(recipes: std::path::PathBuf, database_url: String) -> Settings {
    Settings {
        recipes,
        database_url,
        bind: "127.0.0.1:0".to_owned(),
        public_url: None,
        environment: Environment::default(),
        api_tokens: None,
        shutdown_grace: Duration::from_secs(30),
        durability: Durability::default(),
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
        // The filled runs are a year old: retention must not prune them.
        retention: None,
        redact_headers: Vec::new(),
        render_budget: ferry::template::RenderBudget::default(),
        disk_low: None,
    }
}

fn percentile(samples: &mut [Duration], quantile: f64) -> String {
    if samples.is_empty() {
        return "-".to_owned();
    }
    samples.sort_unstable();
    let index = ((samples.len() - 1) as f64 * quantile).round() as usize;
    format!("{:.1}", samples[index].as_secs_f64() * 1000.0)
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
