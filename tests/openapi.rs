//! The OpenAPI document describes the routes of this build, and the docs page is
//! served by the daemon itself.

use crate::support;

use axum::http::StatusCode;
use serde_json::json;
use support::{Setup, TestDaemon};

#[tokio::test]
async fn openapi_document_lists_every_route_with_the_bearer_scheme() {
    let ferry = TestDaemon::start_with(
        &[("ok.yaml", "trigger: {webhook: {}}\nsteps: [{log: fine}]\n")],
        Setup {
            api_tokens: Some("docs-token"),
            ..Setup::default()
        },
    )
    .await;
    let response = ferry
        .http
        .get(format!("{}/api/v1/openapi.json", ferry.base))
        .send()
        .await
        .expect("openapi");
    assert_eq!(response.status().as_u16(), 200, "the document needs no token");
    let document: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(document["openapi"], "3.1.0");
    let mut paths: Vec<&str> = document["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "/api/v1/health",
            "/api/v1/recipes",
            "/api/v1/recipes/{id}",
            "/api/v1/recipes/{id}/cancel",
            "/api/v1/recipes/{id}/replay",
            "/api/v1/recipes/{id}/runs",
            "/api/v1/runs",
            "/api/v1/runs/{id}",
            "/api/v1/runs/{id}/cancel",
            "/api/v1/runs/{id}/replay",
            "/api/v1/runs/{id}/resume",
            "/hooks/{path}",
            "/metrics"
        ]
    );
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer"})
    );
    assert_eq!(
        document["paths"]["/api/v1/runs"]["get"]["security"],
        json!([{"bearer": []}])
    );
    assert!(document["paths"]["/api/v1/health"]["get"].get("security").is_none());
    let run_fields = document["components"]["schemas"]["RunSummary"]["properties"]
        .as_object()
        .expect("RunSummary");
    for field in [
        "id",
        "recipe",
        "recipe_version",
        "trigger",
        "status",
        "received_at",
        "error",
    ] {
        assert!(run_fields.contains_key(field), "RunSummary lacks {field}");
    }
    // A `for_each` step's elements, each with its attempts.
    let schemas = &document["components"]["schemas"];
    assert!(
        schemas["StepDocument"]["properties"]["items"].is_object(),
        "{:#}",
        schemas["StepDocument"]
    );
    let element_fields = schemas["ElementDocument"]["properties"]
        .as_object()
        .expect("ElementDocument");
    for field in ["index", "status", "attempts"] {
        assert!(element_fields.contains_key(field), "ElementDocument lacks {field}");
    }

    // Every documented route answers (with the token where it needs one).
    for path in [
        "/api/v1/health",
        "/api/v1/recipes",
        "/api/v1/recipes/ok",
        "/api/v1/runs",
    ] {
        let (status, _) = ferry.get_json(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn docs_page_and_its_script_come_from_the_daemon() {
    let ferry = TestDaemon::start(&[]).await;
    let page = ferry
        .http
        .get(format!("{}/api/docs/", ferry.base))
        .send()
        .await
        .expect("docs page");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger-ui-bundle.js"), "{html}");
    assert!(!html.contains("https://"), "the page must not load anything from a CDN");
    let script = ferry
        .http
        .get(format!("{}/api/docs/swagger-ui-bundle.js", ferry.base))
        .send()
        .await
        .expect("script");
    assert_eq!(script.status().as_u16(), 200);
    assert!(script.bytes().await.expect("bytes").len() > 100_000);
    let initializer = ferry
        .http
        .get(format!("{}/api/docs/swagger-initializer.js", ferry.base))
        .send()
        .await
        .expect("initializer");
    assert!(initializer.text().await.expect("text").contains("/api/v1/openapi.json"));
}
