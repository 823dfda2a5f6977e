//! The example recipes shipped in `recipes/` work on a fresh clone, with no
//! network beyond the machine: `hello` posts to `greeted` through `{{ferry.url}}`.

mod support;

use std::path::PathBuf;

use axum::http::StatusCode;
use serde_json::json;
use support::{Setup, TestDaemon, poll_until};

#[tokio::test]
async fn hello_posts_to_greeted_and_both_runs_succeed() {
    let recipes = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("recipes");
    let ferry = TestDaemon::start_in(tempfile::tempdir().expect("temp dir"), recipes, Setup::default()).await;
    assert!(
        ferry.daemon.recipes().problems().is_empty(),
        "{:?}",
        ferry.daemon.recipes().problems()
    );

    let (status, answer) = ferry.post_hook("hello", &json!({"name": "Ada"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let hello = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(hello["status"], "succeeded", "{hello:#}");
    assert_eq!(
        hello["steps"][0]["attempts"][0]["request"]["body"]["greeting"],
        "Hello, Ada!"
    );

    let greeted_id = hello["steps"][0]["attempts"][0]["response"]["body"]["run_id"]
        .as_str()
        .expect("greeted answered with its run id")
        .to_owned();
    let greeted = ferry.wait_for_end(&greeted_id).await;
    assert_eq!(greeted["recipe"], "greeted");
    assert_eq!(greeted["status"], "succeeded", "{greeted:#}");
    let line = greeted["steps"][0]["attempts"][0]["request"]["log"]
        .as_str()
        .expect("log line");
    assert_eq!(
        line,
        format!("Hello, Ada! (from run {})", hello["id"].as_str().expect("id"))
    );

    let runs = poll_until("two runs listed", || async {
        let (_, listing) = ferry.get_json("/api/v1/runs").await;
        let runs = listing["runs"].as_array().cloned().unwrap_or_default();
        (runs.len() == 2).then_some(runs)
    })
    .await;
    assert_eq!(runs[0]["recipe"], "greeted", "newest first");
    assert_eq!(runs[1]["recipe"], "hello");
}
