//! Poll triggers against a loopback API whose item list changes: the first poll
//! only remembers, each new item runs exactly once, reordered or repeated items
//! run nothing, a restart between polls doubles nothing, and failed polls are
//! visible and lose nothing.

use crate::support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::source::Source;
use support::{Setup, Sink, TestDaemon, poll_until};

fn poll_recipe(source: &Source, sink: &Sink) -> String {
    format!(
        r#"
trigger:
  poll:
    every: 1s
    http:
      url: "{source}/alerts"
      query:
        since: "{{{{trigger.last_success_at}}}}"
    items: "$.features[*]"
    key: "{{{{item.id}}}}"
concurrency: 8
steps:
  - http:
      url: "{sink}/chat"
      json:
        id: "{{{{payload.id}}}}"
        headline: "{{{{payload.headline}}}}"
"#,
        source = source.url,
        sink = sink.url
    )
}

fn alerts(ids: &[&str]) -> Value {
    let features: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "headline": format!("alert {id}")}))
        .collect();
    json!({"type": "FeatureCollection", "features": features})
}

/// Waits until the source has answered two more polls than now: the first of
/// them may have started before the change the test just made, the second saw it
/// and its tick is committed (a recipe polls, stores, then waits for the next).
async fn two_more_polls(source: &Source) {
    let target = source.polls() + 2;
    poll_until(&format!("poll number {target}"), || async {
        (source.polls() >= target).then_some(())
    })
    .await;
}

/// The alert ids the chat received, in order.
fn delivered(sink: &Sink) -> Vec<String> {
    sink.received()
        .iter()
        .map(|request| match &request.json()["id"] {
            Value::String(id) => id.clone(),
            other => other.to_string(),
        })
        .collect()
}

async fn wait_for_delivered(sink: &Sink, expected: &[&str]) {
    poll_until(&format!("the chat to have received {expected:?}"), || async {
        let mut ids = delivered(sink);
        ids.sort();
        (ids == expected).then_some(())
    })
    .await;
}

#[tokio::test]
async fn new_items_run_once_and_nothing_else_does_across_a_restart() {
    let source = Source::start(&alerts(&["a", "b"])).await;
    let sink = Sink::start(200, json!({"ok": true})).await;
    let ferry = TestDaemon::start(&[("alerts.yaml", &poll_recipe(&source, &sink))]).await;

    // The first poll remembers a and b without running them.
    two_more_polls(&source).await;
    assert_eq!(delivered(&sink), Vec::<String>::new());
    let (status, recipe) = ferry.get_json("/api/v1/recipes/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(recipe["trigger"]["kind"], "poll");
    assert_eq!(recipe["last_poll"]["status"], "ok", "{recipe:#}");
    assert_eq!(recipe["last_poll"]["items"], 2);
    assert_eq!(recipe["next_fires"].as_array().map(Vec::len), Some(5));
    assert!(recipe["last_fired_at"].is_string(), "{recipe:#}");

    // A new item runs once.
    source.answer_json(&alerts(&["a", "b", "c"]));
    wait_for_delivered(&sink, &["c"]).await;

    // Reordered, repeated, listed twice in one answer: nothing new.
    source.answer_json(&alerts(&["c", "b", "a"]));
    two_more_polls(&source).await;
    source.answer_json(&alerts(&["b", "b", "c", "c", "a"]));
    two_more_polls(&source).await;
    assert_eq!(delivered(&sink), ["c"]);

    // Two new ones at once, then a restart between polls.
    source.answer_json(&alerts(&["d", "a", "b", "c", "e"]));
    wait_for_delivered(&sink, &["c", "d", "e"]).await;
    let TestDaemon { daemon, dir, .. } = ferry;
    daemon.shutdown().await.expect("clean shutdown");
    let recipes = dir.path().join("recipes");
    let ferry = TestDaemon::start_in(dir, recipes, Setup::default()).await;
    two_more_polls(&source).await;
    source.answer_json(&alerts(&["f", "d", "a", "b", "c", "e"]));
    wait_for_delivered(&sink, &["c", "d", "e", "f"]).await;
    two_more_polls(&source).await;
    assert_eq!(delivered(&sink), ["c", "d", "e", "f"], "each new item exactly once");

    // Every run is a poll run with the item as its payload.
    let (_, runs) = ferry.get_json("/api/v1/runs?recipe=alerts").await;
    let runs = runs["runs"].as_array().expect("runs").clone();
    assert_eq!(runs.len(), 4);
    for run in &runs {
        assert_eq!(run["trigger"], "poll");
        let run = ferry.wait_for_end(run["id"].as_str().expect("id")).await;
        assert_eq!(run["status"], "succeeded");
        assert!(
            run["payload"]["headline"]
                .as_str()
                .is_some_and(|text| text.starts_with("alert "))
        );
    }

    // `trigger.last_success_at` is empty before the first success, then a time.
    let requests = source.requests();
    assert_eq!(requests[0], "/alerts?since=");
    let since = requests
        .last()
        .and_then(|request| request.strip_prefix("/alerts?since="))
        .unwrap_or_default();
    assert!(since.starts_with("20") && since.contains("T"), "{requests:?}");
}

#[tokio::test]
async fn failed_polls_are_recorded_and_lose_nothing() {
    let source = Source::start(&alerts(&["a"])).await;
    let sink = Sink::start(200, json!({"ok": true})).await;
    let ferry = TestDaemon::start(&[("alerts.yaml", &poll_recipe(&source, &sink))]).await;
    two_more_polls(&source).await;

    // The source fails while an item appears.
    source.answer(500, r#"{"error": "overloaded"}"#);
    let recipe = poll_until("a failed poll to be shown", || async {
        let (_, recipe) = ferry.get_json("/api/v1/recipes/alerts").await;
        (recipe["last_poll"]["status"] == "failed").then_some(recipe)
    })
    .await;
    let error = recipe["last_poll"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("HTTP 500"), "{recipe:#}");
    assert!(recipe["last_poll"]["failures_in_a_row"].as_i64() >= Some(1));

    source.answer(200, "<html>maintenance</html>");
    poll_until("a poll of text to fail", || async {
        let (_, recipe) = ferry.get_json("/api/v1/recipes/alerts").await;
        let error = recipe["last_poll"]["error"].as_str().unwrap_or_default().to_owned();
        error.contains("is not JSON").then_some(())
    })
    .await;

    source.answer_json(&json!({"title": "no features here"}));
    poll_until("a poll without the items to fail", || async {
        let (_, recipe) = ferry.get_json("/api/v1/recipes/alerts").await;
        let error = recipe["last_poll"]["error"].as_str().unwrap_or_default().to_owned();
        error.contains("`items: $.features[*]` found nothing").then_some(())
    })
    .await;
    assert_eq!(delivered(&sink), Vec::<String>::new());

    // Back to normal: the item that appeared meanwhile runs, once.
    source.answer_json(&alerts(&["a", "b"]));
    wait_for_delivered(&sink, &["b"]).await;
    let (_, recipe) = ferry.get_json("/api/v1/recipes/alerts").await;
    assert_eq!(recipe["last_poll"]["status"], "ok");
    assert_eq!(recipe["last_poll"]["failures_in_a_row"], 0);
    two_more_polls(&source).await;
    assert_eq!(delivered(&sink), ["b"]);
}

#[tokio::test]
async fn first_emit_runs_what_is_there() {
    let source = Source::start(&json!([{"n": 1}, {"n": 2}])).await;
    let sink = Sink::start(200, json!({"ok": true})).await;
    let recipe = format!(
        "trigger:\n  poll:\n    every: 1s\n    first: emit\n    http: {{url: '{}/list'}}\nsteps:\n  - http: {{url: '{}/got', json: {{id: '{{{{payload.n}}}}'}}}}\n",
        source.url, sink.url
    );
    let _ferry = TestDaemon::start(&[("list.yaml", &recipe)]).await;
    // Without `items` an array's elements are the items; without `key` each is
    // known by its hash.
    wait_for_delivered(&sink, &["1", "2"]).await;
    two_more_polls(&source).await;
    assert_eq!(delivered(&sink).len(), 2);
}
