//! A webhook becomes a stored run whose steps call real HTTP destinations.

use crate::support;

use axum::http::StatusCode;
use serde_json::json;
use support::{Sink, TestDaemon};

fn relay_recipe(sink_url: &str) -> String {
    format!(
        r#"
trigger:
  webhook:
    path: orders/new
steps:
  - id: notify
    http:
      method: PUT
      url: "{sink_url}/notify"
      query:
        source: "{{{{trigger.recipe}}}}"
      headers:
        X-Order: "order-{{{{payload.id}}}}"
      json:
        text: "New order {{{{payload.id}}}} from {{{{payload.customer.name}}}}"
        total: "{{{{payload.total}}}}"
        items: "{{{{payload.items}}}}"
        count: "{{{{len payload.items}}}}"
        missing: "{{{{payload.nothing}}}}"
        literal: 7
"#
    )
}

#[tokio::test]
async fn webhook_delivers_rendered_json_and_records_the_attempt() {
    let sink = Sink::start(200, json!({"ok": true, "ticket": 41})).await;
    let ferry = TestDaemon::start(&[("relay.yaml", &relay_recipe(&sink.url))]).await;

    let payload =
        json!({"id": 17, "total": 12.5, "customer": {"name": "Ada \"the\" Countess"}, "items": ["tea", "cake"]});
    let (status, answer) = ferry.post_hook("orders/new", &payload).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["status"], "queued");
    let run_id = answer["run_id"].as_str().expect("run_id").to_owned();

    let run = ferry.wait_for_end(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["recipe"], "relay");
    assert_eq!(run["trigger"], "webhook");
    assert_eq!(run["payload"], payload);
    assert_eq!(run["error"], json!(null));

    let expected_body = json!({
        "text": "New order 17 from Ada \"the\" Countess",
        "total": 12.5,
        "items": ["tea", "cake"],
        "count": 2,
        "missing": null,
        "literal": 7,
    });
    let received = sink.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "PUT");
    assert_eq!(request.path_and_query, "/notify?source=relay");
    assert_eq!(request.header("x-order"), Some("order-17"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    let idempotency_key = request.header("idempotency-key").expect("Idempotency-Key on PUT");
    assert!(idempotency_key.starts_with(&run_id), "{idempotency_key}");
    assert_eq!(request.json(), expected_body);

    let steps = run["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0]["id"], "notify");
    assert_eq!(steps[0]["status"], "succeeded");
    let attempts = steps[0]["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1);
    let attempt = &attempts[0];
    assert_eq!(attempt["n"], 1);
    assert_eq!(attempt["error"], json!(null));
    assert!(attempt["duration_ms"].is_u64());
    assert_eq!(attempt["request"]["method"], "PUT");
    assert_eq!(attempt["request"]["url"], format!("{}/notify?source=relay", sink.url));
    assert_eq!(attempt["request"]["headers"]["x-order"], "order-17");
    assert_eq!(attempt["request"]["headers"]["idempotency-key"], idempotency_key);
    assert_eq!(attempt["request"]["body"], expected_body);
    assert_eq!(attempt["response"]["status"], 200);
    assert_eq!(attempt["response"]["body"], json!({"ok": true, "ticket": 41}));
    assert_eq!(attempt["response"]["truncated"], false);
}

#[tokio::test]
async fn later_steps_see_earlier_responses_and_when_skips() {
    let sink = Sink::start(201, json!({"id": "crm-9"})).await;
    let recipe = format!(
        r#"
trigger:
  webhook: {{}}
when: '{{{{payload.go}}}}'
steps:
  - id: create
    http:
      url: "{url}/contacts"
      json: {{ email: "{{{{payload.email}}}}" }}
  - id: never
    when: '{{{{eq steps.create.status 500}}}}'
    http: {{ url: "{url}/never" }}
  - id: link
    http:
      url: "{url}/links/{{{{steps.create.body.id}}}}"
      body: "created with status {{{{steps.create.status}}}}"
"#,
        url = sink.url
    );
    let ferry = TestDaemon::start(&[("crm.yaml", &recipe)]).await;

    let (_, skipped) = ferry.post_hook("crm", &json!({"go": false})).await;
    let run = ferry.wait_for_end(skipped["run_id"].as_str().expect("run_id")).await;
    assert_eq!(run["status"], "skipped", "{run:#}");
    assert!(sink.received().is_empty(), "a skipped run sends nothing");

    let (_, accepted) = ferry
        .post_hook("crm", &json!({"go": true, "email": "ada@example.com"}))
        .await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run_id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let received = sink.received();
    let paths: Vec<_> = received.iter().map(|request| request.path_and_query.as_str()).collect();
    assert_eq!(paths, ["/contacts", "/links/crm-9"]);
    assert_eq!(received[1].body, "created with status 201");
    assert_eq!(received[1].header("content-type"), Some("text/plain; charset=utf-8"));
    let statuses: Vec<_> = run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|step| step["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("succeeded"), json!("skipped"), json!("succeeded")]);
    assert_eq!(run["steps"][1]["attempts"], json!([]));
}

#[tokio::test]
async fn unknown_hook_is_404_problem_json() {
    let ferry = TestDaemon::start(&[("a.yaml", "trigger: {webhook: {}}\nsteps: [{log: hi}]\n")]).await;
    let response = ferry
        .http
        .post(format!("{}/hooks/nobody-here", ferry.base))
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok()),
        Some("application/problem+json")
    );
    let problem: serde_json::Value = response.json().await.expect("problem body");
    assert_eq!(problem["status"], 404);
    assert_eq!(problem["title"], "Not Found");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("/hooks/nobody-here"),
        "{problem}"
    );
}

#[tokio::test]
async fn body_claiming_json_that_is_not_json_is_400_and_stores_nothing() {
    let ferry = TestDaemon::start(&[("a.yaml", "trigger: {webhook: {}}\nsteps: [{log: hi}]\n")]).await;
    let response = ferry
        .http
        .post(format!("{}/hooks/a", ferry.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 400);
    let problem: serde_json::Value = response.json().await.expect("problem body");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("not valid JSON"),
        "{problem}"
    );
    let (_, runs) = ferry.get_json("/api/v1/runs").await;
    assert_eq!(runs["runs"], json!([]));
}

#[tokio::test]
async fn the_run_is_stored_before_the_202() {
    // No step can finish before the answer: the destination never answers within
    // the test, so the run must already be visible as stored when 202 arrives.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent = format!("http://{}", listener.local_addr().expect("address"));
    let recipe = format!("trigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: '{silent}/x'}}\n    timeout: 30s\n");
    let ferry = TestDaemon::start(&[("slow.yaml", &recipe)]).await;
    let (status, answer) = ferry.post_hook("slow", &json!({"n": 1})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, run) = ferry
        .get_json(&format!("/api/v1/runs/{}", answer["run_id"].as_str().expect("id")))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        ["queued", "running"].contains(&run["status"].as_str().unwrap_or_default()),
        "{run}"
    );
    assert_eq!(run["payload"], json!({"n": 1}));
    drop(listener);
}

#[tokio::test]
async fn form_bodies_and_auth_are_sent_and_credentials_never_recorded() {
    let sink = Sink::start(200, json!({})).await;
    let recipe = format!(
        r#"
trigger: {{webhook: {{}}}}
steps:
  - id: form
    http:
      url: "{url}/form"
      form:
        text: "hi {{{{payload.name}}}} & co"
        n: "{{{{payload.n}}}}"
      auth:
        basic: {{username: "ada", password: "{{{{payload.pass}}}}"}}
  - id: bearer
    http:
      method: delete
      url: "{url}/item"
      auth: {{bearer: "tok-{{{{payload.n}}}}"}}
"#,
        url = sink.url
    );
    let ferry = TestDaemon::start(&[("forms.yaml", &recipe)]).await;
    let (_, answer) = ferry
        .post_hook("forms", &json!({"name": "Ada", "n": 3, "pass": "open sesame"}))
        .await;
    let run = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");

    let received = sink.received();
    assert_eq!(received[0].method, "POST");
    assert_eq!(received[0].body, "text=hi+Ada+%26+co&n=3");
    assert_eq!(
        received[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    // "ada:open sesame" in base64
    assert_eq!(received[0].header("authorization"), Some("Basic YWRhOm9wZW4gc2VzYW1l"));
    assert_eq!(received[1].method, "DELETE");
    assert_eq!(received[1].header("authorization"), Some("Bearer tok-3"));
    assert!(received[1].header("idempotency-key").is_some());

    let form_request = &run["steps"][0]["attempts"][0]["request"];
    assert_eq!(form_request["body"], "text=hi+Ada+%26+co&n=3");
    assert_eq!(form_request["headers"]["authorization"], "[redacted]");
    assert_eq!(
        run["steps"][1]["attempts"][0]["request"]["headers"]["authorization"],
        "[redacted]"
    );
}
