//! Limits on `/hooks/*`: an oversized body is `413`; a client over its budget, a
//! scanner over its failure budget (on unknown paths only), and a hook over its own `rate` get `429` with
//! `Retry-After` and the `RateLimit` headers; nothing refused starts a run.

use crate::support;

use ferry::api::{HookLimitSettings, parse_rate_setting};
use serde_json::{Value, json};
use support::{Setup, TestDaemon};

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn post(ferry: &TestDaemon, path: &str, body: Vec<u8>) -> Answer {
    let response = ferry
        .http
        .post(format!("{}/hooks/{path}", ferry.base))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.json().await.unwrap_or(Value::Null),
    }
}

fn header<'a>(answer: &'a Answer, name: &str) -> &'a str {
    answer
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

async fn run_count(ferry: &TestDaemon) -> usize {
    let (_, runs) = ferry.get_json("/api/v1/runs").await;
    runs["runs"].as_array().map_or(0, Vec::len)
}

fn limits(per_ip: &str, failures: &str) -> HookLimitSettings {
    HookLimitSettings {
        per_ip: parse_rate_setting(per_ip).expect("rate"),
        failures_per_ip: parse_rate_setting(failures).expect("rate"),
        trust_forwarded_for: false,
    }
}

const RECIPE: &str = "trigger: {webhook: {}}\nsteps: [{log: ok}]\n";

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_starts_nothing() {
    let ferry = TestDaemon::start_with(
        &[("hook.yaml", RECIPE)],
        Setup {
            max_body: Some(1024),
            ..Setup::default()
        },
    )
    .await;
    let small = json!({"text": "x".repeat(900)}).to_string().into_bytes();
    assert_eq!(post(&ferry, "hook", small).await.status, 202);
    let large = json!({"text": "x".repeat(2000)}).to_string().into_bytes();
    let refused = post(&ferry, "hook", large).await;
    assert_eq!(refused.status, 413);
    assert_eq!(header(&refused, "content-type"), "application/problem+json");
    assert_eq!(
        refused.body["detail"],
        "the body is larger than the limit of 1024 bytes (FERRY_MAX_BODY)"
    );
    assert_eq!(run_count(&ferry).await, 1);
}

#[tokio::test]
async fn a_client_over_its_budget_gets_429_with_the_ratelimit_headers() {
    let ferry = TestDaemon::start_with(
        &[("hook.yaml", RECIPE)],
        Setup {
            hook_limits: Some(limits("5/m", "off")),
            ..Setup::default()
        },
    )
    .await;
    for _ in 0..5 {
        assert_eq!(post(&ferry, "hook", b"{}".to_vec()).await.status, 202);
    }
    let refused = post(&ferry, "hook", b"{}".to_vec()).await;
    assert_eq!(refused.status, 429);
    assert_eq!(header(&refused, "content-type"), "application/problem+json");
    let retry_after: u64 = header(&refused, "retry-after").parse().expect("seconds");
    assert!(
        (1..=12).contains(&retry_after),
        "one of five a minute refills in 12 s: {retry_after}"
    );
    assert_eq!(header(&refused, "ratelimit-policy"), "\"hooks\";q=5;w=60");
    assert_eq!(header(&refused, "ratelimit"), format!("\"hooks\";r=0;t={retry_after}"));
    assert_eq!(run_count(&ferry).await, 5);
}

#[tokio::test]
async fn scanning_for_hooks_is_throttled_quickly_and_closes_no_real_hook() {
    let ferry = TestDaemon::start_with(
        &[("hook.yaml", RECIPE)],
        Setup {
            hook_limits: Some(limits("1000/s", "3/m")),
            ..Setup::default()
        },
    )
    .await;
    for guess in ["admin", "wp-login", "test"] {
        assert_eq!(post(&ferry, guess, b"{}".to_vec()).await.status, 404);
    }
    let refused = post(&ferry, "backup", b"{}".to_vec()).await;
    assert_eq!(refused.status, 429);
    assert_eq!(header(&refused, "ratelimit-policy"), "\"hooks-failures\";q=3;w=60");
    assert_eq!(post(&ferry, "admin", b"{}".to_vec()).await.status, 429, "still locked");
    // Behind a proxy every sender shares the scanner's address: real hooks serve on.
    assert_eq!(post(&ferry, "hook", b"{}".to_vec()).await.status, 202);
    assert_eq!(run_count(&ferry).await, 1);
}

#[tokio::test]
async fn a_recipe_rate_is_one_budget_for_every_sender() {
    let recipe = "trigger: {webhook: {rate: 2/m}}\nsteps: [{log: ok}]\n";
    let ferry = TestDaemon::start(&[("limited.yaml", recipe), ("free.yaml", RECIPE)]).await;
    assert_eq!(post(&ferry, "limited", b"{}".to_vec()).await.status, 202);
    assert_eq!(post(&ferry, "limited", b"{}".to_vec()).await.status, 202);
    let refused = post(&ferry, "limited", b"{}".to_vec()).await;
    assert_eq!(refused.status, 429);
    assert_eq!(header(&refused, "ratelimit-policy"), "\"recipe\";q=2;w=60");
    assert_eq!(post(&ferry, "free", b"{}".to_vec()).await.status, 202);
}
