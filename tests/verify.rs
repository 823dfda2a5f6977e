//! `verify:` over HTTP: a signed delivery is accepted, a wrong or missing one is
//! `401` with no run and no hint of what failed, a provider's delivery id makes a
//! replay a duplicate, and the secret never shows in the recipe's source.

use crate::support;

use base64::Engine as _;
use serde_json::{Value, json};
use support::TestDaemon;
use support::sign::{hex, hmac_sha256};

async fn post(ferry: &TestDaemon, path: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, Value, String) {
    let mut request = ferry
        .http
        .post(format!("{}/hooks/{path}", ferry.base))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("POST");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, response.json().await.unwrap_or(Value::Null), content_type)
}

async fn run_count(ferry: &TestDaemon) -> usize {
    let (_, runs) = ferry.get_json("/api/v1/runs").await;
    runs["runs"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn github_signatures_are_checked_and_a_redelivery_is_a_duplicate() {
    let secret = "It's a Secret to Everybody";
    let recipe = "trigger:\n  webhook:\n    path: github\n    verify: {scheme: github, secret: '${GITHUB_WEBHOOK_SECRET}'}\nsteps:\n  - log: 'push to {{payload.repository.full_name}}'\n";
    let ferry = TestDaemon::start_with_env(&[("github.yaml", recipe)], &[("GITHUB_WEBHOOK_SECRET", secret)]).await;
    let body =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/github_push_payload.json"))
            .expect("payload");
    let signature = format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), &body)));
    let delivery = ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958".to_owned());

    let (status, answer, _) = post(
        &ferry,
        "github",
        &[("x-hub-signature-256", signature.clone()), delivery.clone()],
        &body,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let run = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(run["status"], "succeeded");

    // GitHub redelivers with the same delivery id: one run.
    let (status, again, _) = post(
        &ferry,
        "github",
        &[("x-hub-signature-256", signature.clone()), delivery.clone()],
        &body,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(again, json!({"run_id": answer["run_id"], "duplicate": true}));

    // A tampered body, a wrong signature, no signature: 401, and nothing stored.
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    let wrong = format!("sha256={}", hex(&hmac_sha256(b"another secret", &body)));
    for (headers, body) in [
        (vec![("x-hub-signature-256", signature.clone())], tampered.as_slice()),
        (vec![("x-hub-signature-256", wrong)], body.as_slice()),
        (vec![], body.as_slice()),
    ] {
        let (status, problem, content_type) = post(&ferry, "github", &headers, body).await;
        assert_eq!(status, 401);
        assert_eq!(content_type, "application/problem+json");
        // The same words whatever failed: nothing to learn from the answer.
        assert_eq!(problem["detail"], "the request could not be verified");
    }
    assert_eq!(run_count(&ferry).await, 1);

    let (_, document) = ferry.get_json("/api/v1/recipes/github").await;
    assert!(!document["source"].as_str().unwrap_or_default().contains(secret));
}

#[tokio::test]
async fn standard_webhooks_signed_now_pass_and_old_or_replayed_ones_do_not() {
    // A literal secret in the recipe is a secret too.
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let recipe =
        format!("trigger:\n  webhook:\n    verify: {{scheme: standard, secret: '{secret}'}}\nsteps: [{{log: ok}}]\n");
    let ferry = TestDaemon::start(&[("orders.yaml", &recipe)]).await;
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("base64 secret");
    let body = br#"{"type":"order.created","id":"ord_1"}"#;
    let sign = |id: &str, timestamp: i64| {
        let message = format!("{id}.{timestamp}.{}", String::from_utf8_lossy(body));
        let signature = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&key, message.as_bytes()));
        vec![
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            // Key rotation: an old signature first, the valid one second.
            ("webhook-signature", format!("v1,bm90IHRoaXMgb25l v1,{signature}")),
        ]
    };
    let now = chrono::Utc::now().timestamp();

    let (status, answer, _) = post(&ferry, "orders", &sign("msg_1", now), body).await;
    assert_eq!(status, 202, "{answer}");
    let (status, replay, _) = post(&ferry, "orders", &sign("msg_1", now), body).await;
    assert_eq!(
        (status, &replay["duplicate"]),
        (200, &json!(true)),
        "the webhook-id is the dedup key"
    );
    let (status, _, _) = post(&ferry, "orders", &sign("msg_2", now - 600), body).await;
    assert_eq!(status, 401, "ten minutes old");
    let (status, _, _) = post(&ferry, "orders", &sign("msg_3", now + 600), body).await;
    assert_eq!(status, 401, "ten minutes ahead");
    assert_eq!(run_count(&ferry).await, 1);

    let (_, document) = ferry.get_json("/api/v1/recipes/orders").await;
    let source = document["source"].as_str().unwrap_or_default();
    assert!(
        !source.contains(secret) && source.contains("[redacted:verify.secret]"),
        "{source}"
    );
}
