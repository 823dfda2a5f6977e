//! Where steps may send requests: with `FERRY_DENY_PRIVATE_DESTINATIONS` a
//! loopback destination is refused — as an address and as a name that resolves
//! to one — without retries and without a byte reaching it; GET follows
//! redirects, other methods do not; a proxy in the environment carries requests.
//! Plain-HTTP steps go through hyper's client and the others through reqwest
//! (src/action/sender.rs): both send the same headers.

use crate::support;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;
use support::{Setup, Sink, TestDaemon};

async fn run_of(ferry: &TestDaemon, hook: &str) -> serde_json::Value {
    let (status, answer) = ferry.post_hook(hook, &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await
}

#[tokio::test]
async fn private_destinations_are_refused_when_the_policy_is_on() {
    let sink = Sink::start(200, json!({"ok": true})).await;
    let port = sink.url.rsplit(':').next().expect("a port").to_owned();
    let by_address = format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: '{}/in', json: {{a: 1}}}}\n    retry: {{attempts: 3, backoff: 10ms}}\n",
        sink.url
    );
    let by_name = format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: 'http://localhost:{port}/in'}}\n    retry: {{attempts: 3, backoff: 10ms}}\n"
    );
    let ferry = TestDaemon::start_with(
        &[("address.yaml", &by_address), ("name.yaml", &by_name)],
        Setup {
            deny_private_destinations: true,
            ..Setup::default()
        },
    )
    .await;

    let run = run_of(&ferry, "address").await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let attempts = run["steps"][0]["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1, "a refused destination is not retried");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(error.contains("127.0.0.1 is not a public address"), "{error}");

    let run = run_of(&ferry, "name").await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let attempts = run["steps"][0]["attempts"].as_array().expect("attempts");
    assert_eq!(
        attempts.len(),
        1,
        "a refusal found among the client's error causes is not retried either"
    );
    let error = run["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("`localhost` resolves to") && error.contains("is not a public address"),
        "{error}"
    );

    assert!(sink.received().is_empty(), "nothing reached the loopback sink");
}

#[tokio::test]
async fn get_follows_redirects_and_other_methods_do_not() {
    let router = Router::new()
        .route(
            "/old",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/new")]) })
                .post(|| async { (StatusCode::FOUND, [(header::LOCATION, "/new")]) }),
        )
        .route(
            "/new",
            get(|| async { axum::Json(json!({"moved": true})) }).post(|| async { axum::Json(json!({"moved": true})) }),
        )
        .route(
            "/whoami",
            get(|headers: axum::http::HeaderMap| async move {
                let seen = |name| headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
                axum::Json(json!({"authorization": seen(header::AUTHORIZATION), "trace": seen(header::HeaderName::from_static("x-trace"))}))
            }),
        )
        .route(
            "/login-first",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/whoami")]) }),
        )
        .route(
            "/elsewhere",
            get(|| async {
                (StatusCode::FOUND, [(header::LOCATION, "gopher://127.0.0.1:6379/_INFO")]).into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await });

    let get_recipe = format!("trigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: '{base}/old'}}\n");
    let post_recipe = format!("trigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: '{base}/old', json: {{a: 1}}}}\n");
    let gopher_recipe = format!("trigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: '{base}/elsewhere'}}\n");
    let auth_recipe = format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: '{base}/login-first', headers: {{x-trace: t1}}, auth: {{bearer: secret}}}}\n"
    );
    let ferry = TestDaemon::start(&[
        ("get.yaml", &get_recipe),
        ("post.yaml", &post_recipe),
        ("gopher.yaml", &gopher_recipe),
        ("auth.yaml", &auth_recipe),
    ])
    .await;

    // The hop keeps the step's headers but not the `auth:` credentials.
    let run = run_of(&ferry, "auth").await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(
        run["steps"][0]["attempts"][0]["response"]["body"],
        json!({"authorization": null, "trace": "t1"})
    );

    let run = run_of(&ferry, "get").await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(
        run["steps"][0]["attempts"][0]["response"]["body"],
        json!({"moved": true})
    );

    let run = run_of(&ferry, "post").await;
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(run["steps"][0]["attempts"][0]["response"]["status"], 302);

    let run = run_of(&ferry, "gopher").await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(error.contains("redirect not followed"), "{error}");
}

#[tokio::test]
async fn an_answer_over_the_limit_fails_the_attempt_instead_of_filling_memory() {
    let router = Router::new()
        .route(
            "/huge",
            get(|| async { "x".repeat(ferry::action::http::MAX_RESPONSE_BODY + 1) }),
        )
        .route("/fine", get(|| async { "x".repeat(1024 * 1024) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let huge = format!("trigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: '{base}/huge'}}\n");
    let fine = format!("trigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: '{base}/fine'}}\n");
    let ferry = TestDaemon::start(&[("huge.yaml", &huge), ("fine.yaml", &fine)]).await;

    let run = run_of(&ferry, "huge").await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(error.contains("is larger than 16 MiB"), "{error}");
    let run = run_of(&ferry, "fine").await;
    assert_eq!(run["status"], "succeeded");
}

/// A proxy named in the daemon's environment carries its steps' requests: the
/// destination's name does not resolve, so only the proxy can answer.
#[tokio::test]
async fn a_proxy_in_the_environment_carries_step_requests() {
    let proxy = Sink::start(200, json!({"via": "proxy"})).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let recipes = dir.path().join("recipes");
    std::fs::create_dir(&recipes).expect("recipes dir");
    let recipe = "trigger: {webhook: {}}\nsteps:\n  - http: {method: POST, url: 'http://ferry-proxy-test.invalid/orders', json: {n: '{{payload.n}}'}}\n";
    std::fs::write(recipes.join("proxied.yaml"), recipe).expect("recipe");
    let port = support::free_address().port();
    let mut daemon = support::Running(
        support::ferry_serve(dir.path(), port)
            .env("HTTP_PROXY", &proxy.url)
            .env_remove("http_proxy")
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .spawn()
            .expect("start ferry serve"),
    );

    let http = support::http_client();
    let base = format!("http://127.0.0.1:{port}");
    let answer = support::post_hook_when_up(&http, &base, "proxied", &json!({"n": 7})).await;
    let run_id = answer["run_id"].as_str().expect("run_id").to_owned();
    let run = support::wait_for_success(&http, &base, &run_id).await;
    daemon.0.kill().expect("stop the daemon");
    daemon.0.wait().expect("daemon exit");

    let received = proxy.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].header("host"), Some("ferry-proxy-test.invalid"));
    assert_eq!(received[0].path_and_query, "/orders");
    assert_eq!(received[0].json(), json!({"n": 7}));
    assert_eq!(received[0].header("user-agent"), Some(AGENT));
    assert_eq!(received[0].header("accept"), Some("*/*"));
    assert_eq!(
        run["steps"][0]["attempts"][0]["response"]["body"],
        json!({"via": "proxy"}),
        "{run}"
    );
}

const AGENT: &str = concat!("ferry/", env!("CARGO_PKG_VERSION"));

/// The plain-HTTP sender: reqwest's default headers, a step's own `accept`
/// instead of the default, the body's length; a closed port fails the attempt
/// with the cause.
#[tokio::test]
async fn a_plain_http_step_sends_the_same_headers_and_names_a_refused_connection() {
    let sink = Sink::start(200, json!({"ok": true})).await;
    // Bound and never listening: refused, and no other test can take the port
    // while this one holds it (a port merely found free could be taken).
    let reserved = tokio::net::TcpSocket::new_v4().expect("socket");
    reserved.bind("127.0.0.1:0".parse().expect("address")).expect("bind");
    let closed = reserved.local_addr().expect("address");
    let recipes = [
        (
            "plain.yaml",
            format!(
                "trigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: '{}/in#part', json: {{n: 1}}, headers: {{x-trace: abc}}}}\n",
                sink.url
            ),
        ),
        (
            "accepts.yaml",
            format!(
                "trigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: '{}/get?q=1', headers: {{accept: application/json}}}}\n",
                sink.url
            ),
        ),
        (
            "closed.yaml",
            format!("trigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: 'http://{closed}/in', json: {{n: 1}}}}\n"),
        ),
    ];
    let recipes: Vec<(&str, &str)> = recipes.iter().map(|(name, text)| (*name, text.as_str())).collect();
    let ferry = TestDaemon::start(&recipes).await;

    assert_eq!(run_of(&ferry, "plain").await["status"], "succeeded");
    assert_eq!(run_of(&ferry, "accepts").await["status"], "succeeded");
    let received = sink.received();
    assert_eq!(received.len(), 2, "{received:?}");
    let post = &received[0];
    assert_eq!(post.path_and_query, "/in", "the fragment is not sent");
    assert_eq!(post.header("user-agent"), Some(AGENT));
    assert_eq!(post.header("accept"), Some("*/*"));
    assert_eq!(post.header("x-trace"), Some("abc"));
    assert_eq!(post.header("content-type"), Some("application/json"));
    assert_eq!(post.header("content-length"), Some("7"));
    assert_eq!(post.header("host"), sink.url.strip_prefix("http://"));
    assert!(post.header("idempotency-key").is_some(), "{post:?}");
    assert_eq!(post.json(), json!({"n": 1}));
    let get = &received[1];
    assert_eq!(get.path_and_query, "/get?q=1");
    assert_eq!(get.header("accept"), Some("application/json"));
    assert_eq!(get.header("user-agent"), Some(AGENT));

    let run = run_of(&ferry, "closed").await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(error.contains("Connection refused"), "{error}");
    drop(reserved);
}
