//! `GET /metrics` parses as Prometheus text and counts webhook requests by
//! outcome — a failed verification among them.

use crate::support;

use serde_json::json;
use support::{Setup, TestDaemon};

fn counter(text: &str, outcome: &str) -> Option<f64> {
    let prefix = format!("ferry_webhook_requests_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test]
async fn webhook_outcomes_are_counted_in_prometheus_text() {
    let plain = "trigger: {webhook: {dedup: '{{payload.id}}'}}\nsteps: [{log: ok}]\n";
    let guarded = "trigger:\n  webhook:\n    verify: {scheme: token, header: x-token, secret: 'right-token-123'}\nsteps: [{log: ok}]\n";
    let ferry = TestDaemon::start_with(
        &[("plain.yaml", plain), ("guarded.yaml", guarded)],
        Setup {
            api_tokens: Some("metrics-reader-1"),
            ..Setup::default()
        },
    )
    .await;
    for id in [1, 2, 2] {
        ferry.post_hook("plain", &json!({"id": id})).await;
    }
    let refused = ferry
        .http
        .post(format!("{}/hooks/guarded", ferry.base))
        .header("x-token", "wrong")
        .json(&json!({}))
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status().as_u16(), 401);
    let (status, _) = ferry.post_hook("nowhere", &json!({})).await;
    assert_eq!(status.as_u16(), 404);

    let unauthenticated = ferry
        .http
        .get(format!("{}/metrics", ferry.base))
        .send()
        .await
        .expect("GET");
    assert_eq!(unauthenticated.status().as_u16(), 401);
    let response = ferry
        .http
        .get(format!("{}/metrics", ferry.base))
        .bearer_auth("metrics-reader-1")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.expect("text");
    let sample =
        regex::Regex::new(r#"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? -?[0-9.eE+-]+$"#)
            .expect("regex");
    for line in text.lines().filter(|line| !line.is_empty() && !line.starts_with('#')) {
        assert!(sample.is_match(line), "not Prometheus text: {line}");
    }
    assert_eq!(counter(&text, "accepted"), Some(2.0), "{text}");
    assert_eq!(counter(&text, "duplicate"), Some(1.0), "{text}");
    assert_eq!(counter(&text, "unauthorized"), Some(1.0), "{text}");
    assert_eq!(counter(&text, "not_found"), Some(1.0), "{text}");
}
