//! A value from the environment never reaches the database file, the logs or an
//! API answer; the sender's credentials are not stored either.

mod support;

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
    let mut files_read = 0;
    for entry in std::fs::read_dir(&database_dir).expect("database dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default()
            .to_owned();
        if !name.starts_with("ferry.db") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read database file");
        files_read += 1;
        let haystack = String::from_utf8_lossy(&bytes);
        assert!(!haystack.contains(SECRET), "{name} holds the secret");
        assert!(!haystack.contains(CALLER_TOKEN), "{name} holds the caller's token");
    }
    assert!(files_read >= 1, "the database file was not found");
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
    let mut daemon = support::ferry_serve(dir.path(), port)
        .env("SINK_KEY", SECRET)
        .env("FERRY_LOG", "debug")
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .spawn()
        .expect("start ferry serve");

    let http = support::http_client();
    let base = format!("http://127.0.0.1:{port}");
    let answer: serde_json::Value = poll_until("the daemon to accept the webhook", || async {
        let response = http
            .post(format!("{base}/hooks/keyed"))
            .json(&json!({}))
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    })
    .await;
    let run_id = answer["run_id"].as_str().expect("run_id").to_owned();
    support::wait_for_success(&http, &base, &run_id).await;
    daemon.kill().expect("stop the daemon");
    daemon.wait().expect("daemon exit");

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
