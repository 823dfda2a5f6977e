//! The `graphql` step against a loopback GraphQL server: variables keep their
//! types, an `errors` answer fails the run with its message and is not retried,
//! a 5xx is retried, `ferry test` and `ferry run --dry-run` show the request,
//! and a query that does not parse is a `file:line:col` diagnostic.

use crate::support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use support::TestDaemon;

/// A GraphQL endpoint on 127.0.0.1 that records each request body and answers
/// a user lookup: `data.user` for a known login, an `errors` list for another,
/// after the scripted statuses it was given (a `503`, say) are used up.
struct GraphqlServer {
    url: String,
    received: Arc<Mutex<Vec<Value>>>,
}

#[derive(Clone)]
struct ServerState {
    received: Arc<Mutex<Vec<Value>>>,
    statuses: Arc<Mutex<VecDeque<u16>>>,
}

impl GraphqlServer {
    async fn start(statuses: &[u16]) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let state = ServerState {
            received: received.clone(),
            statuses: Arc::new(Mutex::new(statuses.iter().copied().collect())),
        };
        let router = axum::Router::new().route("/graphql", post(answer)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/graphql", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, received }
    }

    fn received(&self) -> Vec<Value> {
        self.received.lock().expect("lock").clone()
    }
}

async fn answer(State(state): State<ServerState>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    state.received.lock().expect("lock").push(body.clone());
    if let Some(status) = state.statuses.lock().expect("lock").pop_front() {
        let status = StatusCode::from_u16(status).expect("status");
        return (status, Json(json!({"error": "try again"})));
    }
    let login = body["variables"]["login"].as_str().unwrap_or_default();
    if login == "octocat" {
        let user = json!({"login": login, "name": "The Octocat", "id": body["variables"]["id"]});
        (StatusCode::OK, Json(json!({"data": {"user": user}})))
    } else {
        let message = format!("Could not resolve to a User with the login of '{login}'.");
        (
            StatusCode::OK,
            Json(json!({"data": {"user": null}, "errors": [{"message": message, "type": "NOT_FOUND"}]})),
        )
    }
}

fn recipe(url: &str) -> String {
    format!(
        r#"trigger: {{webhook: {{}}}}
steps:
  - id: lookup
    graphql:
      url: '{url}'
      query: |
        query User($login: String!, $id: Int, $admin: Boolean) {{
          user(login: $login) {{ login name }}
        }}
      variables:
        login: "{{{{payload.login}}}}"
        id: "{{{{payload.id}}}}"
        admin: "{{{{payload.admin}}}}"
        labels: ["{{{{payload.label}}}}", fixed]
    retry: {{attempts: 3, backoff: 10ms}}
  - id: greet
    log: "found {{{{steps.lookup.body.user.name}}}}"
"#
    )
}

#[tokio::test]
async fn variables_keep_their_types_and_data_is_what_later_steps_read() {
    let server = GraphqlServer::start(&[]).await;
    let ferry = TestDaemon::start(&[("users.yaml", &recipe(&server.url))]).await;
    let payload = json!({"login": "octocat", "id": 583231, "admin": false, "label": "vip"});
    let (_, accepted) = ferry.post_hook("users", &payload).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");

    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0]["variables"],
        json!({"login": "octocat", "id": 583231, "admin": false, "labels": ["vip", "fixed"]})
    );
    assert!(
        received[0]["query"]
            .as_str()
            .unwrap_or_default()
            .starts_with("query User($login: String!"),
        "{received:?}"
    );
    assert_eq!(run["steps"][0]["kind"], "graphql", "{run:#}");
    assert_eq!(
        run["steps"][1]["attempts"][0]["request"]["log"], "found The Octocat",
        "{run:#}"
    );
}

#[tokio::test]
async fn an_errors_answer_fails_the_run_with_its_message_and_is_not_retried() {
    let server = GraphqlServer::start(&[]).await;
    let ferry = TestDaemon::start(&[("users.yaml", &recipe(&server.url))]).await;
    let payload = json!({"login": "ghost", "id": 1, "admin": true, "label": "x"});
    let (_, accepted) = ferry.post_hook("users", &payload).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;

    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(error.contains("step `lookup`"), "{error}");
    assert!(
        error.contains("GraphQL error: Could not resolve to a User with the login of 'ghost'."),
        "{error}"
    );
    assert_eq!(server.received().len(), 1, "an errors answer is not retried");
    let steps = run["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1, "the step after the failed one never ran: {run:#}");
    assert_eq!(steps[0]["attempts"][0]["response"]["status"], 200);
}

#[tokio::test]
async fn a_5xx_is_retried() {
    let server = GraphqlServer::start(&[503]).await;
    let ferry = TestDaemon::start(&[("users.yaml", &recipe(&server.url))]).await;
    let payload = json!({"login": "octocat", "id": 2, "admin": false, "label": "x"});
    let (_, accepted) = ferry.post_hook("users", &payload).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;

    assert_eq!(run["status"], "succeeded", "{run:#}");
    let attempts = run["steps"][0]["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2, "{run:#}");
    assert_eq!(attempts[0]["response"]["status"], 503);
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0], received[1], "a retry sends the same operation");
}

#[tokio::test]
async fn ferry_test_and_a_dry_run_show_the_request_and_send_nothing() {
    let server = GraphqlServer::start(&[]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("users.yaml"), recipe(&server.url)).expect("write recipe");
    let payload = r#"{"login": "octocat", "id": 7, "admin": true, "label": "vip"}"#;
    std::fs::write(
        dir.path().join("users.test.yaml"),
        format!(
            r#"- name: looks the user up
  payload: {payload}
  responses:
    lookup: {{status: 200, body: {{data: {{user: {{name: Mona}}}}}}}}
  expect:
    status: succeeded
    steps:
      lookup:
        method: POST
        url: {url}
        json:
          variables: {{login: octocat, id: 7, admin: true, labels: [vip, fixed]}}
      greet:
        log: found Mona
- name: an errors answer fails the step
  payload: {payload}
  responses:
    lookup: {{status: 200, body: {{errors: [{{message: rate limited}}]}}}}
  expect:
    status: failed
"#,
            url = server.url
        ),
    )
    .expect("write test");
    let folder = dir.path().to_str().expect("utf-8 path");
    let (tested_code, stdout, stderr) = support::ferry(&["test", folder]);
    assert_eq!(tested_code, Some(0), "{stdout}{stderr}");
    assert!(stdout.ends_with("1 files, 2 cases, 0 failed\n"), "{stdout}");

    let payload_file = dir.path().join("payload.json");
    std::fs::write(&payload_file, payload).expect("write payload");
    let (dry_code, stdout, stderr) = support::ferry(&[
        "run",
        "users",
        "--dry-run",
        "--payload",
        payload_file.to_str().expect("utf-8 path"),
        "--recipes",
        folder,
    ]);
    assert_eq!(dry_code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout
            .lines()
            .any(|line| line == format!("step lookup: POST {}", server.url)),
        "{stdout}"
    );
    assert!(stdout.contains(r#""login": "octocat""#), "the body is shown: {stdout}");
    assert!(server.received().is_empty(), "nothing is sent: {:?}", server.received());
}

#[test]
fn a_query_that_does_not_parse_is_placed_in_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("broken.yaml"),
        "trigger: {webhook: {}}\nsteps:\n  - graphql:\n      url: http://127.0.0.1:9/graphql\n      query: |\n        query {\n          user(login: \"x\") { login\n        }}}\n",
    )
    .expect("write recipe");
    std::fs::write(
        dir.path().join("two.yaml"),
        "trigger: {webhook: {}}\nsteps:\n  - graphql:\n      url: http://127.0.0.1:9/graphql\n      query: 'query A { a } query B { b }'\n      variables: [1]\n",
    )
    .expect("write recipe");
    let (checked_code, stdout, stderr) = support::ferry_on("check", dir.path());
    let output = format!("{stdout}{stderr}");
    assert_eq!(checked_code, Some(1), "{output}");
    assert!(
        output.contains("broken.yaml:8:11: step `step1` `query` is not valid GraphQL:"),
        "{output}"
    );
    assert!(output.contains("at line 3, column 3 of the query"), "{output}");
    assert!(
        output.contains(
            "two.yaml:5:14: step `step1` `query` holds 2 operations; name the one to run with `operation` (one of A, B)"
        ),
        "{output}"
    );
    assert!(
        output.contains("two.yaml:6:18: step `step1` `variables` must be a map"),
        "{output}"
    );
}
