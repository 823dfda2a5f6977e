//! `/metrics` counts what runs did: runs by recipe and status, step attempts by
//! outcome with a latency histogram, poll failures, and the queue.

use crate::support;

use std::collections::HashMap;

use serde_json::json;
use support::{Sink, TestDaemon, poll_until};

/// Every sample of a Prometheus text, by its name with labels as written.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(ferry: &TestDaemon) -> HashMap<String, f64> {
    let response = ferry
        .http
        .get(format!("{}/metrics", ferry.base))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status().as_u16(), 200);
    samples(&response.text().await.expect("text"))
}

#[tokio::test]
async fn runs_attempts_latency_polls_and_queue_are_counted() {
    // Fails the first request, then answers.
    let sink = Sink::scripted(&[(500, &[])]).await;
    let forward = format!(
        "trigger: {{webhook: {{path: metered}}}}\nsteps:\n  - http: {{url: '{}/x', json: {{n: '{{{{payload.n}}}}'}}}}\n",
        sink.url
    );
    let skipper = "trigger: {webhook: {}}\nwhen: '{{payload.go}}'\nsteps: [{log: ok}]\n";
    // A source that refuses connections: every poll fails.
    let poller = "trigger:\n  poll:\n    every: 1s\n    http: {url: 'http://127.0.0.1:9/feed'}\nsteps: [{log: item}]\n";
    let ferry = TestDaemon::start(&[
        ("metered.yaml", &forward),
        ("skipper.yaml", skipper),
        ("failing-feed.yaml", poller),
    ])
    .await;

    for n in 1..=3 {
        let (_, answer) = ferry.post_hook("metered", &json!({"n": n})).await;
        ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    }
    let (_, answer) = ferry.post_hook("skipper", &json!({"go": false})).await;
    ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    let metrics = poll_until("two failed polls counted", || async {
        let metrics = scrape(&ferry).await;
        (metrics
            .get(r#"ferry_poll_failures_total{recipe="failing-feed"}"#)
            .copied()
            .unwrap_or(0.0)
            >= 2.0)
            .then_some(metrics)
    })
    .await;

    let value = |name: &str| {
        metrics
            .get(name)
            .copied()
            .unwrap_or_else(|| panic!("no sample {name} in {metrics:#?}"))
    };
    assert_eq!(value(r#"ferry_runs_total{recipe="metered",status="failed"}"#), 1.0);
    assert_eq!(value(r#"ferry_runs_total{recipe="metered",status="succeeded"}"#), 2.0);
    assert_eq!(value(r#"ferry_runs_total{recipe="skipper",status="skipped"}"#), 1.0);
    assert_eq!(
        value(r#"ferry_step_attempts_total{recipe="metered",outcome="failed"}"#),
        1.0
    );
    assert_eq!(
        value(r#"ferry_step_attempts_total{recipe="metered",outcome="succeeded"}"#),
        2.0
    );
    assert_eq!(value(r#"ferry_step_duration_seconds_count{recipe="metered"}"#), 3.0);
    assert_eq!(
        value(r#"ferry_step_duration_seconds_bucket{recipe="metered",le="+Inf"}"#),
        3.0
    );
    assert_eq!(value(r#"ferry_webhook_requests_total{outcome="accepted"}"#), 4.0);
    assert_eq!(value("ferry_queue_depth"), 0.0);
    assert_eq!(value("ferry_oldest_queued_seconds"), 0.0);
}
