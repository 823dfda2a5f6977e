//! A step that fails fails its run, with a clear error, and later steps never start.

use crate::support;

use serde_json::json;
use support::{Sink, TestDaemon};

#[tokio::test]
async fn destination_500_fails_the_run_with_the_status_in_its_error() {
    let sink = Sink::start(500, json!({"error": "database down"})).await;
    let after = Sink::start(200, json!({})).await;
    let recipe = format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - id: post\n    http:\n      url: '{}/fail'\n      json: {{a: 1}}\n  - id: after\n    http: {{url: '{}/after'}}\n",
        sink.url, after.url
    );
    let ferry = TestDaemon::start(&[("failing.yaml", &recipe)]).await;

    let (_, answer) = ferry.post_hook("failing", &json!({})).await;
    let run = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;

    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["error"].as_str().expect("error text");
    assert!(error.contains("step `post`"), "{error}");
    assert!(error.contains("HTTP 500 Internal Server Error"), "{error}");
    let steps = run["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1, "steps after a failed one are absent: {run:#}");
    assert_eq!(steps[0]["status"], "failed");
    let attempt = &steps[0]["attempts"][0];
    assert_eq!(attempt["response"]["status"], 500);
    assert_eq!(attempt["response"]["body"], json!({"error": "database down"}));
    assert!(
        attempt["error"].as_str().unwrap_or_default().contains("HTTP 500"),
        "{attempt}"
    );
    assert_eq!(sink.received().len(), 1);
    assert!(after.received().is_empty(), "the step after a failed one must not run");
}

#[tokio::test]
async fn accept_lists_non_2xx_statuses_that_succeed() {
    let sink = Sink::start(404, json!({"found": false})).await;
    let recipe = format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - http:\n      url: '{}/maybe'\n      accept: [404]\n",
        sink.url
    );
    let ferry = TestDaemon::start(&[("lookup.yaml", &recipe)]).await;
    let (_, answer) = ferry.post_hook("lookup", &json!({})).await;
    let run = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["steps"][0]["id"], "step1");
    assert_eq!(run["steps"][0]["attempts"][0]["response"]["status"], 404);
    assert_eq!(sink.received()[0].method, "GET");
    assert_eq!(
        sink.received()[0].header("idempotency-key"),
        None,
        "GET carries no Idempotency-Key"
    );
}

#[tokio::test]
async fn unreachable_destination_fails_with_no_response() {
    // Bind and drop to get a port where nothing listens.
    let port = support::free_address().port();
    let recipe = format!("trigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: 'http://127.0.0.1:{port}/x'}}\n");
    let ferry = TestDaemon::start(&[("down.yaml", &recipe)]).await;
    let (_, answer) = ferry.post_hook("down", &json!({})).await;
    let run = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let attempt = &run["steps"][0]["attempts"][0];
    assert_eq!(attempt["response"], json!(null));
    let error = attempt["error"].as_str().expect("attempt error");
    assert!(error.to_lowercase().contains("connect"), "{error}");
}
