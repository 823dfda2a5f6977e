//! Bearer tokens: the run and recipe routes need one when FERRY_API_TOKENS is set;
//! health and webhooks do not.

mod support;

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
