//! Replays: one run, or a recipe's failed runs in a time range, run again with
//! the same trigger input against the recipe as it is now.

use crate::support;

use axum::http::StatusCode;
use serde_json::json;
use support::{Sink, TestDaemon};

fn recipe(sink: &Sink) -> String {
    format!(
        "trigger:\n  webhook: {{path: orders}}\nsteps:\n  - id: forward\n    http:\n      url: '{}/orders'\n      json: {{order: '{{{{payload.order}}}}'}}\n",
        sink.url
    )
}

async fn failed_run(ferry: &TestDaemon, order: u64) -> String {
    let (status, answer) = ferry.post_hook("orders", &json!({"order": order})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let run_id = answer["run_id"].as_str().expect("run_id").to_owned();
    let run = ferry.wait_for_end(&run_id).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    run_id
}

#[tokio::test]
async fn a_failed_run_is_replayed_with_its_input_and_linked_to_it() {
    // The destination fails once, then works.
    let sink = Sink::scripted(&[(500, &[])]).await;
    let ferry = TestDaemon::start(&[("orders.yaml", &recipe(&sink))]).await;
    let original = failed_run(&ferry, 7).await;

    let (status, answer) = ferry.post_api(&format!("/api/v1/runs/{original}/replay")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let replay = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(replay["status"], "succeeded", "{replay:#}");
    assert_eq!(replay["replay_of"], original.as_str());
    assert_eq!(replay["trigger"], "webhook");
    assert_eq!(replay["payload"], json!({"order": 7}));
    let received = sink.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].json(), json!({"order": 7}));

    let (status, problem) = ferry.post_api("/api/v1/runs/no-such-run/replay").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
}

#[tokio::test]
async fn bulk_replay_runs_the_failed_runs_of_a_time_range_oldest_first() {
    let sink = Sink::scripted(&[(500, &[]), (503, &[]), (500, &[])]).await;
    let ferry = TestDaemon::start(&[("orders.yaml", &recipe(&sink))]).await;
    let mut failed = Vec::new();
    for order in 1..=3 {
        failed.push(failed_run(&ferry, order).await);
    }
    let (_, answer) = ferry.post_hook("orders", &json!({"order": 4})).await;
    let fine = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(fine["status"], "succeeded");

    // A range after every run replays nothing.
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (status, answer) = ferry
        .post_api(&format!("/api/v1/recipes/orders/replay?since={later}"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["run_ids"], json!([]));

    let (status, answer) = ferry
        .post_api("/api/v1/recipes/orders/replay?since=2020-01-01T00:00:00Z")
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["truncated"], false);
    let replays: Vec<String> = answer["run_ids"]
        .as_array()
        .expect("run_ids")
        .iter()
        .map(|id| id.as_str().expect("id").to_owned())
        .collect();
    assert_eq!(replays.len(), 3, "only the failed runs: {answer}");
    for (replay, original) in replays.iter().zip(&failed) {
        let run = ferry.wait_for_end(replay).await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
        assert_eq!(run["replay_of"], original.as_str(), "oldest first");
    }
    let (status, problem) = ferry.post_api("/api/v1/recipes/orders/replay?status=nonsense").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
}
