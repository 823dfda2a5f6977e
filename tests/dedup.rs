//! Webhook `dedup`: deliveries with the same key — at once or after a restart —
//! give exactly one run, and every repeat is answered with the first run's id.

use crate::support;

use serde_json::json;
use support::{Setup, Sink, TestDaemon};

fn recipe(sink: &Sink) -> String {
    format!(
        "trigger:\n  webhook:\n    path: github\n    dedup: '{{{{headers.x-github-delivery}}}}'\nsteps:\n  - http: {{url: '{}/in', json: {{n: '{{{{payload.n}}}}'}}}}\n",
        sink.url
    )
}

async fn deliver(ferry: &TestDaemon, delivery: &str, n: u64) -> (u16, serde_json::Value) {
    let response = ferry
        .http
        .post(format!("{}/hooks/github", ferry.base))
        .header("x-github-delivery", delivery)
        .json(&json!({"n": n}))
        .send()
        .await
        .expect("webhook");
    (response.status().as_u16(), response.json().await.expect("JSON answer"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_deliveries_at_once_and_after_a_restart_yield_one_run() {
    let sink = Sink::start(200, json!({})).await;
    let ferry = TestDaemon::start(&[("github.yaml", &recipe(&sink))]).await;

    let answers = futures_join(&ferry, "delivery-1", 10).await;
    let new: Vec<_> = answers.iter().filter(|(status, _)| *status == 202).collect();
    assert_eq!(new.len(), 1, "{answers:?}");
    let first = new[0].1["run_id"].as_str().expect("run_id").to_owned();
    for (status, answer) in &answers {
        assert_eq!(answer["run_id"], json!(first), "{answer}");
        if *status == 200 {
            assert_eq!(answer["duplicate"], true);
        }
    }
    assert_eq!(ferry.wait_for_end(&first).await["status"], "succeeded");

    let TestDaemon { daemon, dir, .. } = ferry;
    daemon.shutdown().await.expect("shutdown");
    let recipes = dir.path().join("recipes");
    let ferry = TestDaemon::start_in(dir, recipes, Setup::default()).await;

    let (status, answer) = deliver(&ferry, "delivery-1", 99).await;
    assert_eq!(status, 200);
    assert_eq!(answer, json!({"run_id": first, "duplicate": true}));
    let (status, answer) = deliver(&ferry, "delivery-2", 2).await;
    assert_eq!(status, 202, "another key is another delivery: {answer}");
    ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;

    let (_, runs) = ferry.get_json("/api/v1/runs").await;
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(2), "{runs:#}");
    let delivered: Vec<u64> = sink
        .received()
        .iter()
        .filter_map(|request| request.json()["n"].as_u64())
        .collect();
    // The first delivery's payload (whichever of the ten won) and delivery-2's.
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    assert!(delivered.contains(&2), "{delivered:?}");
}

/// `count` deliveries of one key, all at once.
async fn futures_join(ferry: &TestDaemon, delivery: &str, count: u64) -> Vec<(u16, serde_json::Value)> {
    let mut tasks = Vec::new();
    for n in 0..count {
        let http = ferry.http.clone();
        let url = format!("{}/hooks/github", ferry.base);
        let delivery = delivery.to_owned();
        tasks.push(tokio::spawn(async move {
            let response = http
                .post(url)
                .header("x-github-delivery", delivery)
                .json(&json!({"n": n}))
                .send()
                .await
                .expect("webhook");
            (
                response.status().as_u16(),
                response.json::<serde_json::Value>().await.expect("JSON"),
            )
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    answers
}

#[tokio::test]
async fn a_delivery_without_the_key_is_not_deduplicated() {
    let sink = Sink::start(200, json!({})).await;
    let ferry = TestDaemon::start(&[("github.yaml", &recipe(&sink))]).await;
    let (first, _) = ferry.post_hook("github", &json!({"n": 1})).await;
    let (second, _) = ferry.post_hook("github", &json!({"n": 2})).await;
    assert_eq!((first.as_u16(), second.as_u16()), (202, 202));
}
