//! A value from the environment never reaches the database file, the logs or an
//! API answer; the sender's credentials are not stored either.

use crate::support;

use std::io::Read;

use serde_json::json;
use support::{Sink, TestDaemon, poll_until};

const SECRET: &str = "sk_live_51Habc0123456789xyz";
const CALLER_TOKEN: &str = "caller-token-98765";

fn recipe(sink_url: &str) -> String {
    format!(
        r#"
trigger: {{webhook: {{}}}}
steps:
  - id: call
    http:
      url: "{sink_url}/api?key=${{SINK_KEY}}"
      headers:
        X-Api-Key: "${{SINK_KEY}}"
      json:
        note: "key is ${{SINK_KEY}}"
  - id: note
    log: "called with ${{SINK_KEY}}, answer {{{{json steps.call.body}}}}"
"#
    )
}

#[tokio::test]
async fn a_secret_used_in_a_header_is_redacted_everywhere_it_is_stored_or_served() {
    let sink = Sink::echo().await;
    let ferry = TestDaemon::start_with_env(&[("keyed.yaml", &recipe(&sink.url))], &[("SINK_KEY", SECRET)]).await;

    let response = ferry
        .http
        .post(format!("{}/hooks/keyed", ferry.base))
        .header("authorization", format!("Bearer {CALLER_TOKEN}"))
        .json(&json!({"order": 1}))
        .send()
        .await
        .expect("webhook");
    assert_eq!(response.status().as_u16(), 202);
    let answer: serde_json::Value = response.json().await.expect("answer");
    let run_id = answer["run_id"].as_str().expect("run_id").to_owned();
    let run = ferry.wait_for_end(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");

    // The destination got the real value: the secret was used, not lost.
    let received = sink.received();
    assert_eq!(received[0].header("x-api-key"), Some(SECRET));
    assert_eq!(received[0].json(), json!({"note": format!("key is {SECRET}")}));

    let attempt = &run["steps"][0]["attempts"][0];
    assert_eq!(attempt["request"]["headers"]["x-api-key"], "[redacted:SINK_KEY]");
    assert_eq!(
        attempt["request"]["url"],
        format!("{}/api?key=[redacted:SINK_KEY]", sink.url)
    );
    assert_eq!(
        attempt["request"]["body"],
        json!({"note": "key is [redacted:SINK_KEY]"})
    );
    assert_eq!(
        attempt["response"]["body"]["headers"]["x-api-key"],
        "[redacted:SINK_KEY]"
    );
    assert_eq!(run["headers"]["authorization"], "[redacted]");

    let mut answers = String::new();
    for path in [format!("/api/v1/runs/{run_id}"), "/api/v1/runs".to_owned()] {
        answers.push_str(
            &ferry
                .http
                .get(format!("{}{path}", ferry.base))
                .send()
                .await
                .expect("GET")
                .text()
                .await
                .expect("text"),
        );
    }
    assert!(answers.contains("[redacted:SINK_KEY]"));
    assert!(!answers.contains(SECRET), "an API answer shows the secret");
    assert!(
        !answers.contains(CALLER_TOKEN),
        "an API answer shows the caller's token"
    );

    let database_dir = ferry.dir.path().to_owned();
    ferry.daemon.shutdown().await.expect("clean shutdown");
    for (name, haystack) in support::database_files(&database_dir) {
        assert!(!haystack.contains(SECRET), "{name} holds the secret");
        assert!(!haystack.contains(CALLER_TOKEN), "{name} holds the caller's token");
    }
}

#[tokio::test]
async fn the_daemon_log_never_shows_the_secret() {
    let sink = Sink::echo().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let recipes = dir.path().join("recipes");
    std::fs::create_dir(&recipes).expect("recipes dir");
    std::fs::write(recipes.join("keyed.yaml"), recipe(&sink.url)).expect("recipe");
    let port = support::free_address().port();
    let log_path = dir.path().join("ferry.log");
    let mut daemon = support::Running(
        support::ferry_serve(dir.path(), port)
            .env("SINK_KEY", SECRET)
            .env("FERRY_LOG", "debug")
            .stderr(std::fs::File::create(&log_path).expect("log file"))
            .spawn()
            .expect("start ferry serve"),
    );

    let http = support::http_client();
    let base = format!("http://127.0.0.1:{port}");
    let answer = support::post_hook_when_up(&http, &base, "keyed", &json!({})).await;
    let run_id = answer["run_id"].as_str().expect("run_id").to_owned();
    support::wait_for_success(&http, &base, &run_id).await;
    daemon.0.kill().expect("stop the daemon");
    daemon.0.wait().expect("daemon exit");

    let mut log = String::new();
    std::fs::File::open(&log_path)
        .expect("log")
        .read_to_string(&mut log)
        .expect("read log");
    assert!(
        log.contains("called with [redacted:SINK_KEY]"),
        "the log step's line is logged redacted:\n{log}"
    );
    assert!(!log.contains(SECRET), "the log shows the secret:\n{log}");
}

/// Every kind of secret at once, through the real binary: environment values in
/// a header, a query, URL userinfo and `auth: bearer`; a verify secret; the API's
/// bearer token; the caller's `Authorization` header. None of them may appear in
/// the database files, the log (at debug) or any API answer.
#[tokio::test]
async fn every_kind_of_secret_stays_out_of_the_database_the_log_and_the_api() {
    use hmac::{Hmac, KeyInit, Mac};

    const SINK_PASS: &str = "userinfo-pass-24680";
    const GITHUB_SECRET: &str = "gh-verify-secret-13579";
    const API_TOKEN: &str = "api-token-1122334455";
    let sink = Sink::echo().await;
    let address = sink.url.trim_start_matches("http://").to_owned();
    let recipe = format!(
        r#"
trigger:
  webhook:
    path: signed
    verify: {{scheme: github, secret: "${{GITHUB_SECRET}}"}}
steps:
  - http:
      url: "http://ferry:${{SINK_PASS}}@{address}/in?key=${{SINK_KEY}}"
      auth: {{bearer: "${{SINK_KEY}}"}}
      headers:
        X-Api-Key: "${{SINK_KEY}}"
      json: {{ref: "{{{{payload.ref}}}}"}}
"#
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let recipes = dir.path().join("recipes");
    std::fs::create_dir(&recipes).expect("recipes dir");
    std::fs::write(recipes.join("signed.yaml"), recipe).expect("recipe");
    let port = support::free_address().port();
    let log_path = dir.path().join("ferry.log");
    let mut daemon = support::Running(
        support::ferry_serve(dir.path(), port)
            .env("SINK_KEY", SECRET)
            .env("SINK_PASS", SINK_PASS)
            .env("GITHUB_SECRET", GITHUB_SECRET)
            .env("FERRY_API_TOKENS", API_TOKEN)
            .env("FERRY_LOG", "debug")
            .stderr(std::fs::File::create(&log_path).expect("log file"))
            .spawn()
            .expect("start ferry serve"),
    );

    let http = support::http_client();
    let base = format!("http://127.0.0.1:{port}");
    let body = br#"{"ref":"refs/heads/main"}"#;
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(GITHUB_SECRET.as_bytes()).expect("key");
    mac.update(body);
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let send = |signature: String| {
        http.post(format!("{base}/hooks/signed"))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {CALLER_TOKEN}"))
            .header("x-hub-signature-256", format!("sha256={signature}"))
            .body(body.to_vec())
            .send()
    };
    let answer: serde_json::Value = poll_until("the daemon to accept the signed webhook", || async {
        let response = send(signature.clone()).await.ok()?;
        (response.status().as_u16() == 202).then_some(())?;
        response.json().await.ok()
    })
    .await;
    let refused = send("00".repeat(32)).await.expect("POST");
    assert_eq!(refused.status().as_u16(), 401);
    let run_id = answer["run_id"].as_str().expect("run_id").to_owned();

    let mut answers = String::new();
    let run = poll_until("the run to succeed", || async {
        let response = http
            .get(format!("{base}/api/v1/runs/{run_id}"))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .ok()?;
        let text = response.text().await.ok()?;
        let run: serde_json::Value = serde_json::from_str(&text).ok()?;
        (run["status"] == "succeeded").then_some((run, text))
    })
    .await;
    answers.push_str(&run.1);
    for path in ["/api/v1/runs", "/api/v1/recipes", "/api/v1/recipes/signed"] {
        let response = http
            .get(format!("{base}{path}"))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .expect("GET");
        answers.push_str(&response.text().await.expect("text"));
    }
    let attempt = &run.0["steps"][0]["attempts"][0];
    assert_eq!(
        attempt["request"]["url"],
        format!("http://[redacted]@{address}/in?key=[redacted:SINK_KEY]")
    );
    assert_eq!(attempt["request"]["headers"]["authorization"], "[redacted]");
    assert_eq!(run.0["headers"]["x-hub-signature-256"], "[redacted]");
    // The destination got the real credentials.
    assert_eq!(sink.received()[0].header("x-api-key"), Some(SECRET));

    daemon.0.kill().expect("stop the daemon");
    daemon.0.wait().expect("daemon exit");
    let mut places = vec![("API answers".to_owned(), answers)];
    places.push(("the log".to_owned(), std::fs::read_to_string(&log_path).expect("log")));
    places.extend(support::database_files(dir.path()));
    for (place, text) in &places {
        for secret in [SECRET, SINK_PASS, GITHUB_SECRET, API_TOKEN, CALLER_TOKEN] {
            assert!(!text.contains(secret), "{place} holds `{secret}`");
        }
    }
}
