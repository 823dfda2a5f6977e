//! A run's trigger input is stored compressed from 1 KiB and reads back the
//! same: through the API, and for a run that waited in the queue and was
//! claimed from the store before it ran.

use crate::support;

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::{Sink, TestDaemon};

#[tokio::test]
async fn a_large_payload_is_stored_compressed_and_runs_from_the_queue_unchanged() {
    let sink = Sink::slow(Duration::from_millis(300)).await;
    let recipe = format!(
        "concurrency: 1\ntrigger: {{webhook: {{path: push}}}}\nsteps:\n  - http: {{method: POST, url: '{}', json: {{repo: '{{{{payload.repository.full_name}}}}', commits: '{{{{len payload.commits}}}}'}}}}\n",
        sink.url
    );
    let ferry = TestDaemon::start(&[("push.yaml", &recipe)]).await;
    let push: Value = serde_json::from_str(include_str!("data/github_push_payload.json")).expect("payload");
    let repository = push["repository"]["full_name"].as_str().expect("repository").to_owned();
    let commits = push["commits"].as_array().expect("commits").len();

    // With one run at a time against a slow destination, the later ones wait in
    // the queue and are claimed back from the store.
    let mut runs = Vec::new();
    for _ in 0..3 {
        let (status, answer) = ferry.post_hook("push", &push).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        runs.push(answer["run_id"].as_str().expect("run_id").to_owned());
    }
    let (status, answer) = ferry
        .post_hook("push", &json!({"repository": {"full_name": "small"}, "commits": []}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let small = answer["run_id"].as_str().expect("run_id").to_owned();

    for run_id in &runs {
        let run = ferry.wait_for_end(run_id).await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
        assert_eq!(run["payload"], push, "the payload reads back as it came");
    }
    let sent: Vec<Value> = sink
        .received()
        .iter()
        .map(|received| serde_json::from_slice(&received.body).expect("json"))
        .collect();
    let expected = json!({"repo": repository, "commits": commits});
    assert_eq!(sent.iter().filter(|body| **body == expected).count(), 3, "{sent:#?}");
    let run = ferry.wait_for_end(&small).await;
    assert_eq!(run["payload"]["repository"]["full_name"], "small");

    let database = rusqlite::Connection::open(ferry.dir.path().join("ferry.db")).expect("open");
    let stored_as = |run_id: &str| -> (String, i64) {
        database
            .query_row(
                "SELECT typeof(payload), length(CAST(payload AS BLOB)) FROM runs WHERE id = ?1",
                [run_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .expect("stored run")
    };
    let (kind, bytes) = stored_as(&runs[0]);
    let sent_bytes = serde_json::to_string(&push).expect("text").len() as i64;
    assert_eq!(kind, "blob", "a 7 KB payload is compressed");
    assert!(bytes * 2 < sent_bytes, "{bytes} stored bytes for {sent_bytes}");
    assert_eq!(stored_as(&small).0, "text", "a small one stays text");
}
