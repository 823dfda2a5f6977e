//! `respond: wait`: the webhook answers with the last step's status and body when
//! the run ends, 502 when it fails, 504 when it takes longer than `timeout`.

use crate::support;

use std::time::Duration;

use serde_json::json;
use support::{Sink, TestDaemon};

fn slash_recipe(url: &str, timeout: &str) -> String {
    format!(
        r#"
trigger:
  webhook:
    path: slack/weather
    respond: wait
    timeout: {timeout}
when: '{{{{ne payload.text "skip"}}}}'
steps:
  - id: lookup
    http:
      url: "{url}/forecast"
      query: {{city: "{{{{payload.text}}}}"}}
"#
    )
}

#[tokio::test]
async fn a_slack_slash_command_is_answered_with_the_api_response() {
    let api = Sink::start(200, json!({"response_type": "in_channel", "text": "Sunny, 21 °C"})).await;
    let ferry = TestDaemon::start(&[("weather.yaml", &slash_recipe(&api.url, "5s"))]).await;
    let form = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/slack_slash_command.form"),
    )
    .expect("fixture");
    let response = ferry
        .http
        .post(format!("{}/hooks/slack/weather", ferry.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.trim().to_owned())
        .send()
        .await
        .expect("slash command");
    assert_eq!(response.status().as_u16(), 200);
    let run_id = response
        .headers()
        .get("ferry-run-id")
        .and_then(|value| value.to_str().ok())
        .expect("ferry-run-id header")
        .to_owned();
    let answer: serde_json::Value = response.json().await.expect("JSON answer");
    assert_eq!(answer, json!({"response_type": "in_channel", "text": "Sunny, 21 °C"}));

    let run = ferry.wait_for_end(&run_id).await;
    assert_eq!(run["status"], "succeeded");
    let city = run["payload"]["text"].as_str().expect("the command's text").to_owned();
    let expected_query = format!(
        "city={}",
        form_urlencoded::byte_serialize(city.as_bytes()).collect::<String>()
    );
    assert_eq!(api.received()[0].path_and_query, format!("/forecast?{expected_query}"));
}

#[tokio::test]
async fn a_slow_run_gives_504_and_goes_on_a_failed_one_502_a_skipped_one_says_so() {
    let slow = Sink::slow(Duration::from_secs(1)).await;
    let down = Sink::start(500, json!({"error": "boom"})).await;
    let ferry = TestDaemon::start(&[
        (
            "slow.yaml",
            &slash_recipe(&slow.url, "200ms").replace("slack/weather", "slow"),
        ),
        (
            "down.yaml",
            &slash_recipe(&down.url, "5s").replace("slack/weather", "down"),
        ),
    ])
    .await;

    let (status, problem) = ferry.post_hook("slow", &json!({"text": "Oslo"})).await;
    assert_eq!(status.as_u16(), 504, "{problem}");
    assert_eq!(problem["status"], 504);
    let detail = problem["detail"].as_str().expect("detail");
    let run_id = detail
        .split_whitespace()
        .nth(1)
        .expect("run id in the detail")
        .to_owned();
    let run = ferry.wait_for_end(&run_id).await;
    assert_eq!(run["status"], "succeeded", "the run goes on after the 504: {run:#}");

    let (status, problem) = ferry.post_hook("down", &json!({"text": "Oslo"})).await;
    assert_eq!(status.as_u16(), 502, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap_or_default().contains("HTTP 500"),
        "{problem}"
    );

    let (status, answer) = ferry.post_hook("down", &json!({"text": "skip"})).await;
    assert_eq!(status.as_u16(), 200);
    assert_eq!(answer["status"], "skipped");
}
