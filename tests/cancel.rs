//! Cancel: a waiting run ends `cancelled` and never sends; a running one ends
//! when its attempt in flight is recorded, starting no other; an ended one is a
//! 409; a recipe's unfinished runs are cancelled together.

use crate::support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use support::{Sink, TestDaemon, poll_until, step};

fn recipe(url: &str, delay: &str) -> String {
    format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - id: wait\n    delay: {delay}\n  - id: remind\n    http: {{url: '{url}/remind', json: {{n: '{{{{payload.n}}}}'}}}}\n"
    )
}

async fn wait_for_status(ferry: &TestDaemon, run_id: &str, status: &str) -> Value {
    poll_until(&format!("run {run_id} to be {status}"), || async {
        let (_, run) = ferry.get_json(&format!("/api/v1/runs/{run_id}")).await;
        (run["status"] == status).then_some(run)
    })
    .await
}

#[tokio::test]
async fn a_cancelled_waiting_run_never_sends_and_an_ended_one_is_a_conflict() {
    let sink = Sink::start(200, json!({})).await;
    let ferry = TestDaemon::start(&[("remind.yaml", &recipe(&sink.url, "1s"))]).await;
    let (_, first) = ferry.post_hook("remind", &json!({"n": 1})).await;
    let first = first["run_id"].as_str().expect("run id").to_owned();
    wait_for_status(&ferry, &first, "waiting").await;

    let (status, answer) = ferry.post_api(&format!("/api/v1/runs/{first}/cancel")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!({"run_id": first, "status": "cancelled", "was": "waiting"})
    );

    // A run queued after it waits its second and goes out: by then the
    // cancelled one was due too, and did not go.
    let (_, second) = ferry.post_hook("remind", &json!({"n": 2})).await;
    let second = second["run_id"].as_str().expect("run id").to_owned();
    wait_for_status(&ferry, &second, "succeeded").await;
    let sent: Vec<Value> = sink
        .received()
        .iter()
        .map(|request| request.json()["n"].clone())
        .collect();
    assert_eq!(sent, [json!(2)], "only the run not cancelled sent");
    let (_, run) = ferry.get_json(&format!("/api/v1/runs/{first}")).await;
    assert_eq!(run["status"], "cancelled", "{run:#}");
    assert!(
        run["finished_at"].is_string() && run["next_attempt_at"].is_null(),
        "{run:#}"
    );

    let (status, problem) = ferry.post_api(&format!("/api/v1/runs/{second}/cancel")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("has ended (succeeded)"),
        "{problem}"
    );
    let (status, _) = ferry.post_api("/api/v1/runs/no-such-run/cancel").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, listed) = ferry.get_json("/api/v1/runs?status=cancelled").await;
    assert_eq!(listed["runs"][0]["id"], first.as_str(), "{listed:#}");
    let (_, recipe) = ferry.get_json("/api/v1/recipes/remind").await;
    assert_eq!(recipe["runs"]["cancelled"], 1, "{recipe:#}");
}

#[tokio::test]
async fn a_running_run_records_its_attempt_in_flight_and_starts_no_other() {
    let sink = Sink::slow(Duration::from_millis(400)).await;
    let recipe = format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - id: first\n    http: {{url: '{url}/first'}}\n  - id: second\n    http: {{url: '{url}/second'}}\n",
        url = sink.url
    );
    let ferry = TestDaemon::start(&[("two.yaml", &recipe)]).await;
    let (_, accepted) = ferry.post_hook("two", &json!({})).await;
    let run_id = accepted["run_id"].as_str().expect("run id").to_owned();
    poll_until("the first request in flight", || async {
        (sink.most_in_flight() == 1).then_some(())
    })
    .await;
    let (status, answer) = ferry.post_api(&format!("/api/v1/runs/{run_id}/cancel")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["was"], "running");

    let run = poll_until("the attempt in flight to be recorded", || async {
        let (_, run) = ferry.get_json(&format!("/api/v1/runs/{run_id}")).await;
        let first = run["steps"]
            .as_array()?
            .iter()
            .find(|step| step["id"] == "first")?
            .clone();
        (first["attempts"].as_array()?.len() == 1).then_some(run)
    })
    .await;
    assert_eq!(run["status"], "cancelled", "{run:#}");
    assert_eq!(sink.received().len(), 1, "the second step never went out");
    assert!(
        run["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|step| step["id"] != "second"),
        "{run:#}"
    );
}

#[tokio::test]
async fn a_recipe_s_unfinished_runs_are_cancelled_together_and_the_page_has_a_button() {
    let sink = Sink::start(200, json!({})).await;
    let ferry = TestDaemon::start(&[("remind.yaml", &recipe(&sink.url, "1h"))]).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let (_, accepted) = ferry.post_hook("remind", &json!({"n": n})).await;
        ids.push(accepted["run_id"].as_str().expect("run id").to_owned());
    }
    for id in &ids {
        wait_for_status(&ferry, id, "waiting").await;
    }
    let page = ferry.get_page(&format!("/runs/{}", ids[0])).await;
    assert!(
        page.contains(r#"<button type="submit" id="cancel">Cancel</button>"#),
        "{page}"
    );

    let (status, answer) = ferry.post_api("/api/v1/recipes/remind/cancel?status=succeeded").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, answer) = ferry.post_api("/api/v1/recipes/remind/cancel").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let mut cancelled: Vec<String> = answer["run_ids"]
        .as_array()
        .expect("run ids")
        .iter()
        .filter_map(|id| id.as_str().map(str::to_owned))
        .collect();
    cancelled.sort();
    assert_eq!(cancelled, ids);
    assert_eq!(answer["truncated"], false);
    for id in &ids {
        wait_for_status(&ferry, id, "cancelled").await;
    }
    let page = ferry.get_page(&format!("/runs/{}", ids[0])).await;
    assert!(!page.contains(r#"id="cancel""#), "no button on an ended run");
}

#[tokio::test]
async fn ferry_runs_cancel_ends_a_waiting_run_in_the_database() {
    let sink = Sink::start(200, json!({})).await;
    let ferry = TestDaemon::start(&[("remind.yaml", &recipe(&sink.url, "1h"))]).await;
    let (_, accepted) = ferry.post_hook("remind", &json!({"n": 1})).await;
    let run_id = accepted["run_id"].as_str().expect("run id").to_owned();
    wait_for_status(&ferry, &run_id, "waiting").await;
    let TestDaemon { daemon, dir, .. } = ferry;
    daemon.shutdown().await.expect("the daemon stops");

    let database = format!("sqlite://{}", dir.path().join("ferry.db").display());
    let (code, stdout, stderr) = support::ferry(&["runs", "cancel", &run_id, "--database", &database]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, format!("{run_id}: cancelled (it was waiting)\n"));
    let (code, _, stderr) = support::ferry(&["runs", "cancel", &run_id, "--database", &database]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("has ended (cancelled)"), "{stderr}");
    let (_, listing, _) = support::ferry(&["runs", "--status", "cancelled", "--database", &database]);
    assert!(listing.lines().any(|line| line.starts_with(&run_id)), "{listing}");

    let (code, stdout, stderr) = support::ferry(&["runs", "resume", &run_id, "--database", &database]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, format!("{run_id}: queued to go on (it was cancelled)\n"));
    let (_, listing, _) = support::ferry(&["runs", "--status", "queued", "--database", &database]);
    assert!(listing.lines().any(|line| line.starts_with(&run_id)), "{listing}");
    let (code, _, stderr) = support::ferry(&["runs", "resume", &run_id, "--database", &database]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("is queued; only a failed or cancelled run resumes"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cancelled_in_the_database_sends_no_request_after_the_one_in_flight() {
    // `one` takes a second to answer; `ferry runs cancel` comes meanwhile.
    let slow = Sink::slow(std::time::Duration::from_secs(1)).await;
    let after = Sink::start(200, json!({})).await;
    let recipe = format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - id: one\n    http: {{url: '{}/one'}}\n  - id: two\n    http: {{url: '{}/two', json: {{n: 2}}}}\n",
        slow.url, after.url
    );
    let ferry = TestDaemon::start(&[("pair.yaml", &recipe)]).await;
    let (_, accepted) = ferry.post_hook("pair", &json!({})).await;
    let run_id = accepted["run_id"].as_str().expect("run id").to_owned();
    wait_for_status(&ferry, &run_id, "running").await;

    let database = format!("sqlite://{}", ferry.dir.path().join("ferry.db").display());
    let (code, stdout, stderr) = support::ferry(&["runs", "cancel", &run_id, "--database", &database]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, format!("{run_id}: cancelled (it was running)\n"));
    assert!(
        stderr.contains("finds the cancel before it sends another request"),
        "{stderr}"
    );

    // `one` is answered and recorded; `two` never goes out.
    let run = poll_until("the attempt in flight to be recorded", || async {
        let (_, run) = ferry.get_json(&format!("/api/v1/runs/{run_id}")).await;
        let steps = run["steps"].as_array()?;
        steps
            .iter()
            .any(|step| step["id"] == "one" && step["status"] == "succeeded")
            .then_some(run)
    })
    .await;
    assert_eq!(run["status"], "cancelled", "{run:#}");
    assert_eq!(slow.received().len(), 1);
    // The daemon found the cancel at `two`'s write and let go of the run,
    // counting it then (a cancel through its API is counted at once).
    poll_until("the daemon to count the cancel", || async {
        let metrics = ferry
            .http
            .get(format!("{}/metrics", ferry.base))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        metrics
            .lines()
            .any(|line| line == r#"ferry_runs_total{recipe="pair",status="cancelled"} 1"#)
            .then_some(())
    })
    .await;
    let (_, run) = ferry.get_json(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(run["status"], "cancelled", "{run:#}");
    assert!(after.received().is_empty(), "no request after the cancel: {run:#}");
    let two = step(&run, "two");
    assert_eq!(two["status"], "running", "its request stored, not sent: {two:#}");
    assert_eq!(two["attempts"], json!([]));
}
