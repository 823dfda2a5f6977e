//! 256 concurrent 1 MiB webhooks: what bodies hold in memory is one budget
//! (`FERRY_MAX_BODY_MEMORY`; past it `503` with `Retry-After`), and the WAL
//! starts over before it grows large, so the daemon's peak memory and its WAL
//! stay bounded. Through the real binary, with its peak RSS read from /proc.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::json;
use support::ChildDaemon;

const CLIENTS: usize = 256;
const ROUNDS: usize = 2;
const PEAK_RSS_MIB: f64 = 300.0;
const WAL_MIB: u64 = 256;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_keep_memory_and_the_wal_bounded() {
    let child = ChildDaemon::start(
        &[("big.yaml", "trigger: {webhook: {}}\nsteps: [{log: stored}]\n")],
        "big",
    )
    .await;

    let (dir, daemon, http, base) = (&child.dir, &child.daemon, &child.http, &child.base);
    // The WAL's size, sampled while the bodies arrive.
    let wal = dir.path().join("ferry.db-wal");
    let largest_wal = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (largest_wal, done) = (largest_wal.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                if let Ok(metadata) = std::fs::metadata(&wal) {
                    largest_wal.fetch_max(metadata.len(), Ordering::SeqCst);
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
    };

    let body = Arc::new(json!({"blob": "x".repeat(1024 * 1024 - 16)}).to_string().into_bytes());
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (http, base, body) = (http.clone(), base.clone(), body.clone());
        clients.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..ROUNDS {
                let response = http
                    .post(format!("{base}/hooks/big"))
                    .header("content-type", "application/json")
                    .body(body.as_ref().clone())
                    .send()
                    .await
                    .expect("POST");
                let status = response.status().as_u16();
                if status == 503 {
                    assert!(
                        response.headers().contains_key("retry-after"),
                        "503 without Retry-After"
                    );
                }
                statuses.push(status);
            }
            statuses
        }));
    }
    let (mut accepted, mut refused) = (0, 0);
    for client in clients {
        for status in client.await.expect("client") {
            match status {
                202 => accepted += 1,
                503 => refused += 1,
                other => panic!("a 1 MiB webhook got {other}"),
            }
        }
    }
    done.store(true, Ordering::SeqCst);
    sampler.await.expect("sampler");
    let peak = daemon.peak_rss_mib();
    let wal = largest_wal.load(Ordering::SeqCst) / (1024 * 1024);
    println!("{accepted} accepted, {refused} refused with 503; peak RSS {peak:.1} MiB, largest WAL {wal} MiB");
    assert!(accepted > 0, "no large webhook was accepted");
    assert!(peak <= PEAK_RSS_MIB, "peak RSS {peak:.1} MiB");
    assert!(wal <= WAL_MIB, "WAL reached {wal} MiB");
}
