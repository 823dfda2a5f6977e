//! `cargo bench --bench waiting`: what runs waiting on a `delay` cost the daemon's
//! memory. The `ferry` binary runs as a child process (its RSS is its own, not
//! the load generator's) on a temporary SQLite file, with two recipes taking the
//! same payload (`tests/data/github_push_payload.json`, 7.3 KB):
//!
//! ```yaml
//! # plain.yaml: ends at once
//! trigger: {webhook: {path: plain}}
//! steps: [{log: '{{payload.repository.full_name}}'}]
//! # later.yaml: waits an hour
//! trigger: {webhook: {path: later}}
//! steps: [{delay: 1h}, {log: '{{payload.repository.full_name}}'}]
//! ```
//!
//! For each recipe in turn, a fresh daemon takes `WAITING_RUNS` (10000) webhooks
//! on 16 connections, and the daemon's RSS is read from `/proc/PID/status` when
//! it is up, once every run has ended (plain) or waits (later), and after a
//! restart on the same database. Throughput beside waiting runs is the relay
//! benchmark's `waiting` target.

// Benchmarks stop at the first thing that is not as expected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const RECIPES: [(&str, &str); 2] = [
    (
        "plain",
        "trigger: {webhook: {path: plain}}\nsteps:\n  - log: '{{payload.repository.full_name}}'\n",
    ),
    (
        "later",
        "trigger: {webhook: {path: later}}\nsteps:\n  - delay: 1h\n  - log: '{{payload.repository.full_name}}'\n",
    ),
];

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let count: u64 = std::env::var("WAITING_RUNS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10_000);
    let payload: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/github_push_payload.json"))
            .expect("the GitHub push payload"),
    )
    .expect("JSON");
    println!("waiting benchmark: {count} webhooks per recipe, 16 connections");
    println!("| recipe | RSS up, MB | RSS with the runs, MB | peak, MB | webhooks/s | RSS after a restart, MB |");
    println!("|---|---|---|---|---|---|");
    for (recipe, _) in RECIPES {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("recipes")).expect("recipes dir");
        for (name, text) in RECIPES {
            std::fs::write(dir.path().join("recipes").join(format!("{name}.yaml")), text).expect("recipe");
        }
        let client = reqwest::Client::new();
        let (mut daemon, base) = start(dir.path(), &client).await;
        let up = rss_mb(&daemon, "VmRSS");
        let started = Instant::now();
        send(&client, &format!("{base}/hooks/{recipe}"), &payload, count).await;
        let rate = count as f64 / started.elapsed().as_secs_f64();
        settle(&client, &base, recipe, count).await;
        let with_runs = rss_mb(&daemon, "VmRSS");
        let peak = rss_mb(&daemon, "VmHWM");
        daemon.kill().expect("stop");
        daemon.wait().expect("reap");
        let (mut daemon, base) = start(dir.path(), &client).await;
        settle(&client, &base, recipe, count).await;
        let restarted = rss_mb(&daemon, "VmRSS");
        daemon.kill().expect("stop");
        daemon.wait().expect("reap");
        println!("| {recipe} | {up:.1} | {with_runs:.1} | {peak:.1} | {rate:.0} | {restarted:.1} |");
    }
}

/// `ferry serve` on a free port of the loopback, once it answers.
async fn start(dir: &Path, client: &reqwest::Client) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("address")
        .port();
    let daemon = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--recipes")
        .arg(dir.join("recipes"))
        .arg("--database")
        .arg(format!("sqlite://{}", dir.join("ferry.db").display()))
        // One load generator on one address is not a sender to throttle.
        .args(["--hook-rate-per-ip", "off"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ferry serve");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/api/v1/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "ferry serve did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (daemon, base)
}

/// `count` webhooks on 16 connections, each accepted.
async fn send(client: &reqwest::Client, url: &str, payload: &Value, count: u64) {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let senders: Vec<_> = (0..16)
        .map(|_| {
            let (client, next, url, payload) = (client.clone(), next.clone(), url.to_owned(), payload.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                    let response = client.post(&url).json(&payload).send().await.expect("a webhook");
                    assert_eq!(response.status().as_u16(), 202, "a webhook is accepted");
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.expect("sender");
    }
}

/// Waits (at most two minutes) until the recipe's `count` runs have all ended
/// (`plain`) or all wait (`later`).
async fn settle(client: &reqwest::Client, base: &str, recipe: &str, count: u64) {
    let status = if recipe == "later" { "waiting" } else { "succeeded" };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let document: Value = client
            .get(format!("{base}/api/v1/recipes/{recipe}"))
            .send()
            .await
            .expect("the recipe")
            .json()
            .await
            .expect("JSON");
        if document["runs"][status].as_u64() == Some(count) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{recipe}: not all {count} runs {status}: {}",
            document["runs"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A line of the child's /proc/PID/status in MB (`VmRSS` now, `VmHWM` the peak).
fn rss_mb(child: &Child, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{}/status", child.id()))
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
