//! Retention: finished runs past `FERRY_RETENTION` are pruned in the background
//! while webhooks keep being accepted, unfinished runs are kept, and the database
//! file stops growing.

use crate::support;

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use support::{Setup, TestDaemon, poll_until};

/// Posts `count` webhooks from 16 concurrent clients; every one must be accepted.
async fn post_many(ferry: &TestDaemon, count: usize) {
    let clients = 16;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let (http, url) = (ferry.http.clone(), format!("{}/hooks/busy", ferry.base));
        tasks.spawn(async move {
            for n in (client..count).step_by(clients) {
                let response = http.post(&url).json(&json!({"n": n})).send().await.expect("POST");
                assert_eq!(response.status().as_u16(), 202, "webhook {n} while pruning");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("client task");
    }
}

async fn runs_of(ferry: &TestDaemon, recipe: &str) -> usize {
    let (status, page) = ferry.get_json(&format!("/api/v1/runs?recipe={recipe}&limit=500")).await;
    assert_eq!(status, StatusCode::OK);
    page["runs"].as_array().map_or(0, Vec::len)
}

fn database_size(ferry: &TestDaemon) -> u64 {
    std::fs::metadata(ferry.dir.path().join("ferry.db"))
        .expect("database file")
        .len()
}

#[tokio::test]
async fn old_runs_are_pruned_under_load_and_the_file_stops_growing() {
    let busy = "trigger: {webhook: {}}\nsteps: [{log: 'order {{payload.n}} with some text to store'}]\n";
    // Waits an hour for its second attempt: unfinished, never pruned.
    let waiting = "trigger: {webhook: {}}\nsteps:\n  - http: {url: 'http://127.0.0.1:9/down'}\n    retry: {attempts: 3, backoff: 1h, max: 1h}\n";
    let ferry = TestDaemon::start_with(
        &[("busy.yaml", busy), ("waiting.yaml", waiting)],
        Setup {
            retention: Some(Duration::from_secs(1)),
            ..Setup::default()
        },
    )
    .await;
    let (_, answer) = ferry.post_hook("waiting", &json!({})).await;
    let waiting_run = answer["run_id"].as_str().expect("run_id").to_owned();
    poll_until("the waiting run to wait", || async {
        let (_, run) = ferry.get_json(&format!("/api/v1/runs/{waiting_run}")).await;
        (run["status"] == "retrying").then_some(())
    })
    .await;

    let rounds = 4;
    let per_round = 300;
    let mut sizes = Vec::new();
    for _ in 0..rounds {
        let started = std::time::Instant::now();
        // The runs of the round before are pruned while these are taken.
        post_many(&ferry, per_round).await;
        post_many(&ferry, per_round).await;
        println!("posted {} in {} ms", 2 * per_round, started.elapsed().as_millis());
        poll_until("every finished run to be pruned", || async {
            (runs_of(&ferry, "busy").await == 0).then_some(())
        })
        .await;
        sizes.push(database_size(&ferry));
    }
    println!("database size after each round: {sizes:?}");
    let (first, last) = (sizes[0], sizes[rounds - 1]);
    assert!(
        last <= first + first / 4 + 256 * 1024,
        "the file kept growing: {sizes:?} after {} runs",
        rounds * 2 * per_round
    );
    let (_, run) = ferry.get_json(&format!("/api/v1/runs/{waiting_run}")).await;
    assert_eq!(run["status"], "retrying", "an unfinished run is kept: {run}");
}
