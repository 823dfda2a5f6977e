//! The engine's limits: a recipe's `concurrency`, and a step's per-attempt `timeout`.

use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Sink, TestDaemon, poll_until};

#[tokio::test]
async fn a_recipe_never_has_more_runs_in_flight_than_its_concurrency() {
    // Slow enough that the runs overlap even on a loaded machine.
    let sink = Sink::slow(Duration::from_millis(600)).await;
    let recipe = format!(
        "concurrency: 2\ntrigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: '{}/slow', json: {{n: '{{{{payload.n}}}}'}}}}\n",
        sink.url
    );
    let ferry = TestDaemon::start(&[("limited.yaml", &recipe)]).await;
    let mut ids = Vec::new();
    for n in 0..6 {
        let (_, answer) = ferry.post_hook("limited", &json!({"n": n})).await;
        ids.push(answer["run_id"].as_str().expect("run_id").to_owned());
    }
    for id in &ids {
        let run = ferry.wait_for_end(id).await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
    }
    assert_eq!(sink.received().len(), 6);
    assert_eq!(
        sink.most_in_flight(),
        2,
        "concurrency: 2 means two at once, not more (and not fewer)"
    );
}

#[tokio::test]
async fn an_attempt_that_outlives_its_timeout_fails_the_run() {
    let sink = Sink::slow(Duration::from_secs(5)).await;
    let recipe = format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - id: slow\n    timeout: 200ms\n    http: {{url: '{}/slow'}}\n",
        sink.url
    );
    let ferry = TestDaemon::start(&[("impatient.yaml", &recipe)]).await;
    let (_, answer) = ferry.post_hook("impatient", &json!({})).await;
    let run_id = answer["run_id"].as_str().expect("run_id").to_owned();
    let run = poll_until("the run to fail well before the sink answers", || async {
        let (_, run) = ferry.get_json(&format!("/api/v1/runs/{run_id}")).await;
        (run["status"] == "failed").then_some(run)
    })
    .await;
    assert_eq!(run["error"], "step `slow`: no answer within 200 ms");
    let attempt = &run["steps"][0]["attempts"][0];
    assert_eq!(attempt["response"], json!(null));
    let duration = attempt["duration_ms"].as_u64().expect("duration");
    assert!((200..5000).contains(&duration), "{duration} ms");
}

#[tokio::test]
async fn a_recipe_with_concurrency_one_runs_its_events_in_the_order_they_came() {
    // Runs end while later webhooks still arrive: a new one must not take the
    // freed place ahead of those that wait in the queue.
    let sink = Sink::slow(Duration::from_millis(20)).await;
    let recipe = format!(
        "concurrency: 1\ntrigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: '{}/in', json: {{n: '{{{{payload.n}}}}'}}}}\n",
        sink.url
    );
    let ferry = TestDaemon::start(&[("serial.yaml", &recipe)]).await;
    let mut ids = Vec::new();
    for n in 0..24 {
        let (_, answer) = ferry.post_hook("serial", &json!({"n": n})).await;
        ids.push(answer["run_id"].as_str().expect("run_id").to_owned());
    }
    for id in &ids {
        let run = ferry.wait_for_end(id).await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
    }
    let order: Vec<Value> = sink
        .received()
        .iter()
        .map(|request| request.json()["n"].clone())
        .collect();
    let expected: Vec<Value> = (0..24).map(|n| json!(n)).collect();
    assert_eq!(order, expected);
}
