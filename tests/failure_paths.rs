//! What a run does when a step fails: `continue_on_error` records the failure
//! and goes on, with `steps.ID.error` for the steps after it.

use crate::support;

use serde_json::json;
use support::{Sink, TestDaemon, step};

fn recipe(url: &str) -> String {
    format!(
        r#"trigger: {{webhook: {{}}}}
steps:
  - id: email
    continue_on_error: true
    retry: {{attempts: 2, backoff: 10ms, max: 20ms}}
    http: {{url: '{url}/send', json: {{to: "{{{{payload.email}}}}"}}}}
  - id: note
    log: "email {{{{#if steps.email.error}}}}failed ({{{{steps.email.status}}}}): {{{{steps.email.error}}}}{{{{else}}}}sent{{{{/if}}}}"
"#
    )
}

#[tokio::test]
async fn continue_on_error_records_the_failure_and_the_next_step_reads_it() {
    let sink = Sink::start(503, json!({"message": "mail server down"})).await;
    let ferry = TestDaemon::start(&[("signup.yaml", &recipe(&sink.url))]).await;
    let (_, accepted) = ferry.post_hook("signup", &json!({"email": "ada@example.com"})).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "succeeded", "the run goes on: {run:#}");
    assert_eq!(run["error"], serde_json::Value::Null);
    assert_eq!(sink.received().len(), 2, "its retries first");
    let email = step(&run, "email");
    assert_eq!(email["status"], "failed");
    assert_eq!(email["attempts"].as_array().map(Vec::len), Some(2));
    let line = step(&run, "note")["attempts"][0]["request"]["log"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(line.starts_with("email failed (503): "), "{line}");
    assert!(line.contains("503"), "{line}");

    // Without the key the same failure fails the run and the note never runs.
    let strict = recipe(&sink.url).replace("    continue_on_error: true\n", "");
    let ferry = TestDaemon::start(&[("signup.yaml", &strict)]).await;
    let (_, accepted) = ferry.post_hook("signup", &json!({"email": "ada@example.com"})).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    assert!(
        run["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|step| step["id"] != "note")
    );
}

#[test]
fn ferry_test_goes_on_after_a_step_that_may_fail() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("signup.yaml"), recipe("https://mail.example.com")).expect("write recipe");
    std::fs::write(
        dir.path().join("signup.test.yaml"),
        r#"- name: a refused email is noted and the run succeeds
  payload: {email: ada@example.com}
  responses:
    email: {status: 422, body: {message: bad address}}
  expect:
    status: succeeded
    steps:
      note: {log: "email failed (422): HTTP 422 Unprocessable Entity from POST https://mail.example.com/send"}
"#,
    )
    .expect("write test");
    let (code, stdout, _) = support::ferry_on("test", dir.path());
    assert_eq!(code, Some(0), "{stdout}");
}

#[tokio::test]
async fn a_run_past_its_timeout_fails_and_starts_no_attempt_after_it() {
    let sink = Sink::start(503, json!({"message": "busy"})).await;
    let ops = Sink::start(200, json!({})).await;
    let recipe = format!(
        "timeout: 2s\ntrigger: {{webhook: {{}}}}\nsteps:\n  - id: post\n    retry: {{attempts: 100, backoff: 300ms, max: 300ms}}\n    http: {{url: '{}/busy'}}\non_failure:\n  - http: {{url: '{}/ops', json: {{message: '{{{{error.message}}}}', step: '{{{{error.step}}}}'}}}}\n",
        sink.url, ops.url
    );
    let ferry = TestDaemon::start(&[("busy.yaml", &recipe)]).await;
    let (_, accepted) = ferry.post_hook("busy", &json!({})).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(run["error"], "timed out after 2s");
    let time = |value: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap_or_default()).expect("a time")
    };
    let deadline = time(&run["started_at"]) + chrono::Duration::seconds(2);
    let attempts = step(&run, "post")["attempts"].as_array().expect("attempts").clone();
    assert!(attempts.len() >= 2, "it retried until then: {run:#}");
    for attempt in &attempts {
        assert!(time(&attempt["started_at"]) < deadline, "{attempt:#} after {deadline}");
    }
    assert!(time(&run["finished_at"]) >= deadline, "{run:#}");
    assert_eq!(sink.received().len(), attempts.len());
    let told: Vec<serde_json::Value> = ops.received().iter().map(|request| request.json()).collect();
    assert_eq!(
        told,
        [json!({"message": "timed out after 2s", "step": null})],
        "on_failure runs after a timeout, itself not held to it"
    );
}

#[test]
fn check_refuses_a_timeout_that_is_not_a_duration() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("bad.yaml"),
        "timeout: soon\ntrigger: {webhook: {}}\nsteps:\n  - log: x\n",
    )
    .expect("write recipe");
    let (code, _, stderr) = support::ferry_on("check", dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("bad.yaml:1:10: `timeout`: `soon` is not a duration"),
        "{stderr}"
    );
}

#[tokio::test]
async fn resume_goes_on_from_the_failed_step_with_its_key_and_the_earlier_results() {
    // Step one succeeds; step two is refused once, then accepted.
    let sink = Sink::scripted(&[(200, &[]), (422, &[])]).await;
    let recipe = format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - id: one\n    http: {{url: '{url}/one'}}\n  - id: two\n    http: {{url: '{url}/two', json: {{one_said: '{{{{steps.one.body.ok}}}}'}}}}\n",
        url = sink.url
    );
    let ferry = TestDaemon::start(&[("pair.yaml", &recipe)]).await;
    let (_, accepted) = ferry.post_hook("pair", &json!({})).await;
    let run_id = accepted["run_id"].as_str().expect("run id").to_owned();
    let run = ferry.wait_for_end(&run_id).await;
    assert_eq!(run["status"], "failed", "{run:#}");

    let (status, answer) = ferry.post_api(&format!("/api/v1/runs/{run_id}/resume")).await;
    assert_eq!(status.as_u16(), 202, "{answer}");
    assert_eq!(answer, json!({"run_id": run_id, "status": "queued", "was": "failed"}));
    let run = ferry.wait_for_end(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["error"], serde_json::Value::Null);

    let sent: Vec<(String, String, String)> = sink
        .received()
        .iter()
        .map(|request| {
            (
                request.path_and_query.clone(),
                request.header("idempotency-key").unwrap_or_default().to_owned(),
                String::from_utf8_lossy(&request.body).into_owned(),
            )
        })
        .collect();
    let key = |step: &str| format!("{run_id}.{step}");
    assert_eq!(
        sent,
        [
            // A GET carries no key.
            ("/one".to_owned(), String::new(), String::new()),
            ("/two".to_owned(), key("two"), r#"{"one_said":true}"#.to_owned()),
            ("/two".to_owned(), key("two"), r#"{"one_said":true}"#.to_owned()),
        ],
        "one is not sent again; two again with its key and what one answered"
    );
    let two = step(&run, "two");
    assert_eq!(two["attempts"].as_array().map(Vec::len), Some(2), "{two:#}");

    let (status, problem) = ferry.post_api(&format!("/api/v1/runs/{run_id}/resume")).await;
    assert_eq!(status.as_u16(), 409, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap_or_default().contains("is succeeded"),
        "{problem}"
    );
}

#[tokio::test]
async fn a_resumed_step_has_its_retries_afresh_and_its_attempts_keep_their_numbers() {
    // Two failures spend `attempts: 2`; after the resume a third fails and a
    // fourth, its retry, is accepted.
    let sink = Sink::scripted(&[(503, &[]), (503, &[]), (503, &[])]).await;
    let recipe = format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - id: send\n    retry: {{attempts: 2, backoff: 10ms, max: 20ms}}\n    http: {{url: '{}/send', json: {{n: 1}}}}\n",
        sink.url
    );
    let ferry = TestDaemon::start(&[("flaky.yaml", &recipe)]).await;
    let (_, accepted) = ferry.post_hook("flaky", &json!({})).await;
    let run_id = accepted["run_id"].as_str().expect("run id").to_owned();
    let run = ferry.wait_for_end(&run_id).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(sink.received().len(), 2);

    let (status, answer) = ferry.post_api(&format!("/api/v1/runs/{run_id}/resume")).await;
    assert_eq!(status.as_u16(), 202, "{answer}");
    let run = ferry.wait_for_end(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let numbers: Vec<u64> = step(&run, "send")["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter_map(|attempt| attempt["n"].as_u64())
        .collect();
    assert_eq!(numbers, [1, 2, 3, 4], "{run:#}");
    let keys: Vec<String> = sink
        .received()
        .iter()
        .map(|request| request.header("idempotency-key").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(keys, vec![format!("{run_id}.send"); 4], "one key for all four");
}

#[tokio::test]
async fn on_failure_runs_after_the_retries_with_the_error_and_the_input() {
    let email = Sink::start(503, json!({"message": "mail server down"})).await;
    let ops = Sink::start(200, json!({"ok": true})).await;
    let recipe = format!(
        r#"trigger: {{webhook: {{}}}}
steps:
  - id: email
    retry: {{attempts: 2, backoff: 10ms, max: 20ms}}
    http: {{url: '{email}/send', json: {{to: "{{{{payload.email}}}}"}}}}
on_failure:
  - id: tell_ops
    http:
      url: '{ops}/alert'
      json: {{step: "{{{{error.step}}}}", message: "{{{{error.message}}}}", status: "{{{{error.status}}}}", email: "{{{{payload.email}}}}"}}
"#,
        email = email.url,
        ops = ops.url
    );
    let ferry = TestDaemon::start(&[("signup.yaml", &recipe)]).await;
    let (_, accepted) = ferry.post_hook("signup", &json!({"email": "ada@example.com"})).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "failed", "the run stays failed: {run:#}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("step `email` after 2 attempts: HTTP 503"), "{error}");
    assert_eq!(email.received().len(), 2);
    let alerts = ops.received();
    assert_eq!(alerts.len(), 1, "once");
    let alert = alerts[0].json();
    assert_eq!(alert["step"], "email");
    assert_eq!(alert["status"], 503);
    assert_eq!(alert["email"], "ada@example.com");
    assert!(
        alert["message"].as_str().unwrap_or_default().starts_with("HTTP 503"),
        "{alert}"
    );

    let ids = |section: &str| -> Vec<String> {
        run[section]
            .as_array()
            .map(|steps| {
                steps
                    .iter()
                    .filter_map(|step| step["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(ids("steps"), ["email"]);
    assert_eq!(ids("on_failure"), ["tell_ops"], "its own section: {run:#}");
    assert_eq!(run["on_failure"][0]["status"], "succeeded");
    let page = ferry
        .get_page(&format!("/runs/{}", run["id"].as_str().unwrap_or_default()))
        .await;
    let section = page
        .find(r#"<h2 id="on-failure">On failure</h2>"#)
        .expect("an on_failure section");
    assert!(page[section..].contains("Step tell_ops"), "{page}");
    assert!(page.contains(r#"id="resume""#), "a failed run can be resumed: {page}");

    // A run that succeeds runs no on_failure, and its document has no section.
    let fine = recipe.replace(&email.url, &ops.url);
    let ferry = TestDaemon::start(&[("signup.yaml", &fine)]).await;
    let (_, accepted) = ferry.post_hook("signup", &json!({"email": "bob@example.com"})).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert!(run.get("on_failure").is_none(), "{run:#}");
    assert_eq!(ops.received().len(), 2, "one alert before, one send now");
}

#[test]
fn only_on_failure_reads_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("bad.yaml"),
        "trigger: {webhook: {}}\nsteps:\n  - log: '{{error.message}}'\non_failure:\n  - log: '{{error.message}} {{payload.x}}'\n",
    )
    .expect("write recipe");
    let (code, _, stderr) = support::ferry_on("check", dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("bad.yaml:3:13:") && stderr.contains("`error.message` starts with `error`"),
        "{stderr}"
    );
    assert!(!stderr.contains("bad.yaml:5:"), "{stderr}");
}
