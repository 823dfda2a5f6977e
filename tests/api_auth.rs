//! Bearer tokens: the run and recipe routes need one when FERRY_API_TOKENS is set;
//! health and webhooks do not.

use crate::support;

use axum::http::StatusCode;
use serde_json::json;
use support::{Setup, TestDaemon};

#[tokio::test]
async fn api_routes_need_a_valid_bearer_token_and_any_rotated_token_works() {
    let ferry = TestDaemon::start_with(
        &[("ok.yaml", "trigger: {webhook: {}}\nsteps: [{log: fine}]\n")],
        Setup {
            api_tokens: Some("current-token-1, previous-token-0"),
            ..Setup::default()
        },
    )
    .await;

    for path in ["/api/v1/runs", "/api/v1/recipes", "/api/v1/recipes/ok"] {
        for authorization in [None, Some("Bearer wrong-token"), Some("Basic Y3VycmVudC10b2tlbi0x")] {
            let mut request = ferry.http.get(format!("{}{path}", ferry.base));
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let response = request.send().await.expect("request");
            assert_eq!(response.status().as_u16(), 401, "{path} with {authorization:?}");
            assert_eq!(
                response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|value| value.to_str().ok()),
                Some("Bearer")
            );
            let problem: serde_json::Value = response.json().await.expect("problem");
            assert_eq!(problem["status"], 401);
        }
        for token in ["current-token-1", "previous-token-0"] {
            let response = ferry
                .http
                .get(format!("{}{path}", ferry.base))
                .bearer_auth(token)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status().as_u16(), 200, "{path} with {token}");
        }
    }
    // A token in the query string is never accepted.
    let response = ferry
        .http
        .get(format!("{}/api/v1/runs?access_token=current-token-1", ferry.base))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 401);

    // Health and webhooks stay open.
    let response = ferry
        .http
        .get(format!("{}/api/v1/health", ferry.base))
        .send()
        .await
        .expect("health");
    assert_eq!(response.status().as_u16(), 200);
    let (status, _) = ferry.post_hook("ok", &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn read_only_tokens_read_but_cannot_start_runs() {
    let ferry = TestDaemon::start_with(
        &[("ok.yaml", "trigger: {webhook: {}}\nsteps: [{log: fine}]\n")],
        Setup {
            api_tokens: Some("writer-token-1"),
            api_read_tokens: Some("reader-token-1"),
            ..Setup::default()
        },
    )
    .await;
    let get = |token: &str| {
        ferry
            .http
            .get(format!("{}/api/v1/runs", ferry.base))
            .bearer_auth(token)
            .send()
    };
    let start = |token: &str| {
        ferry
            .http
            .post(format!("{}/api/v1/recipes/ok/runs", ferry.base))
            .bearer_auth(token)
            .json(&json!({}))
            .send()
    };
    assert_eq!(get("reader-token-1").await.expect("GET").status().as_u16(), 200);
    assert_eq!(get("writer-token-1").await.expect("GET").status().as_u16(), 200);
    let refused = start("reader-token-1").await.expect("POST");
    assert_eq!(refused.status().as_u16(), 403);
    let problem: serde_json::Value = refused.json().await.expect("problem");
    assert!(problem["detail"].as_str().unwrap_or_default().contains("may only read"));
    assert_eq!(start("writer-token-1").await.expect("POST").status().as_u16(), 202);

    // A token in the query string is not a token.
    let in_query = ferry
        .http
        .get(format!("{}/api/v1/runs?access_token=writer-token-1", ferry.base))
        .send()
        .await
        .expect("GET");
    assert_eq!(in_query.status().as_u16(), 401);
}
