//! `delay`: a run waits in the store (`waiting`, with `next_attempt_at`),
//! holding no worker, and goes on at its time — also after a restart; a time in
//! the past goes on at once.

use crate::support;

use serde_json::{Value, json};
use support::{Sink, TestDaemon, http_client, poll_until, step};

fn time(text: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text.as_str().unwrap_or_default())
        .unwrap_or_else(|error| panic!("{text}: {error}"))
        .to_utc()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_survives_a_restart_and_fires_once_on_time() {
    let sink = Sink::start(200, json!({"ok": true})).await;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("recipes")).expect("recipes dir");
    let recipe = format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - id: wait\n    delay: 3s\n  - id: remind\n    http: {{url: '{}/remind', json: {{who: '{{{{payload.who}}}}'}}}}\n",
        sink.url
    );
    std::fs::write(dir.path().join("recipes/remind.yaml"), recipe).expect("recipe");
    let port = support::free_address().port();
    let base = format!("http://127.0.0.1:{port}");
    let http = http_client();
    let mut ferry = support::Running(support::ferry_serve(dir.path(), port).spawn().expect("start ferry"));
    let accepted = support::post_hook_when_up(&http, &base, "remind", &json!({"who": "ada"})).await;
    let run_id = accepted["run_id"].as_str().expect("run id").to_owned();

    let waiting: Value = poll_until("the run to wait", || async {
        let run: Value = http
            .get(format!("{base}/api/v1/runs/{run_id}"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (run["status"] == "waiting").then_some(run)
    })
    .await;
    assert!(waiting["next_attempt_at"].is_string(), "{waiting:#}");
    assert_eq!(step(&waiting, "wait")["status"], "waiting");
    let (_, listed) = {
        let response = http
            .get(format!("{base}/api/v1/runs?status=waiting"))
            .send()
            .await
            .expect("list");
        (response.status(), response.json::<Value>().await.expect("json"))
    };
    assert_eq!(listed["runs"][0]["id"], run_id.as_str(), "{listed:#}");
    ferry.0.kill().expect("kill -9");
    ferry.0.wait().expect("reap");
    assert!(sink.received().is_empty(), "nothing before its time");

    let _ferry = support::Running(support::ferry_serve(dir.path(), port).spawn().expect("restart ferry"));
    let run = support::wait_for_success(&http, &base, &run_id).await;
    assert_eq!(sink.received().len(), 1, "once");
    let wait = step(&run, "wait");
    assert_eq!(wait["kind"], "delay");
    let until = time(&wait["attempts"][0]["request"]["until"]);
    assert_eq!(wait["attempts"][0]["request"]["delay"], "3s");
    let sent_at = time(&step(&run, "remind")["attempts"][0]["started_at"]);
    assert!(sent_at >= until, "sent at {sent_at}, due at {until}");
    let received = time(&run["received_at"]);
    assert!(until - received >= chrono::Duration::seconds(3), "{received} → {until}");
}

#[tokio::test]
async fn a_time_in_the_past_goes_on_at_once_and_a_bad_time_fails_the_step() {
    let sink = Sink::start(200, json!({})).await;
    let recipe = format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - id: wait\n    delay: {{until: '{{{{payload.remind_at}}}}'}}\n  - http: {{url: '{}/remind'}}\n",
        sink.url
    );
    let ferry = TestDaemon::start(&[("remind.yaml", &recipe)]).await;
    let (_, accepted) = ferry
        .post_hook("remind", &json!({"remind_at": "2020-01-01T09:00:00Z"}))
        .await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(sink.received().len(), 1);
    assert_eq!(
        step(&run, "wait")["attempts"][0]["request"]["until"],
        "2020-01-01T09:00:00.000Z"
    );

    let (_, accepted) = ferry.post_hook("remind", &json!({"remind_at": "next tuesday"})).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("step `wait`: `delay.until` gave `next tuesday`, not an RFC 3339 time"),
        "{error}"
    );
    assert_eq!(sink.received().len(), 1);
}

#[test]
fn check_places_bad_delays_and_ferry_test_does_not_wait() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("bad.yaml"),
        "trigger: {webhook: {}}\nsteps:\n  - id: zero\n    delay: 0s\n  - id: words\n    delay: soon\n",
    )
    .expect("write recipe");
    let (code, _, stderr) = support::ferry_on("check", dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("bad.yaml:4:5: step `zero` `delay` must be more than zero"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.yaml:6:5: step `words` `delay`: `soon` is not a duration"),
        "{stderr}"
    );

    let good = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        good.path().join("remind.yaml"),
        "trigger: {webhook: {}}\nsteps:\n  - delay: 10m\n  - id: remind\n    log: 'reminded {{payload.who}}'\n",
    )
    .expect("write recipe");
    std::fs::write(
        good.path().join("remind.test.yaml"),
        "- name: the reminder goes out after the delay\n  payload: {who: ada}\n  expect:\n    steps:\n      remind: {log: reminded ada}\n",
    )
    .expect("write test");
    let (code, stdout, _) = support::ferry_on("test", good.path());
    assert_eq!(code, Some(0), "{stdout}");
}
