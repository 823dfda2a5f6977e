//! Retries: which failures are tried again, how long Ferry waits, and that waiting
//! runs live in the store (a restart loses none of them).

use crate::support;

use chrono::DateTime;
use serde_json::{Value, json};
use support::{Setup, Sink, TestDaemon, poll_until};

fn started_at(attempt: &Value) -> DateTime<chrono::FixedOffset> {
    DateTime::parse_from_rfc3339(attempt["started_at"].as_str().expect("started_at")).expect("RFC 3339")
}

#[tokio::test]
async fn a_destination_that_comes_back_gets_the_same_request_with_the_same_key() {
    let address = support::free_address();
    let recipe = format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - id: deliver\n    http:\n      url: 'http://{address}/in'\n      json: {{at: '{{{{now}}}}', id: '{{{{uuid}}}}'}}\n    retry: {{attempts: 20, backoff: 50ms, max: 200ms}}\n"
    );
    let ferry = TestDaemon::start(&[("flaky.yaml", &recipe)]).await;
    let (_, answer) = ferry.post_hook("flaky", &json!({})).await;
    let run_id = answer["run_id"].as_str().expect("run_id").to_owned();

    // While the destination is down, the run waits as `retrying` with a due time.
    let waiting = poll_until("two refused attempts", || async {
        let (_, run) = ferry.get_json(&format!("/api/v1/runs/{run_id}")).await;
        let attempts = run["steps"][0]["attempts"].as_array().map_or(0, Vec::len);
        (attempts >= 2 && run["status"] == "retrying").then_some(run)
    })
    .await;
    assert!(waiting["next_attempt_at"].is_string(), "{waiting:#}");
    assert_eq!(waiting["steps"][0]["status"], "retrying");

    let sink = Sink::start_on(address).await;
    let run = ferry.wait_for_end(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["next_attempt_at"], json!(null));

    let attempts = run["steps"][0]["attempts"].as_array().expect("attempts");
    assert!(attempts.len() >= 3, "{attempts:#?}");
    for (index, attempt) in attempts.iter().enumerate() {
        assert_eq!(attempt["n"], index + 1);
        // Rendered once: `now` and `uuid` are the same in every attempt.
        assert_eq!(attempt["request"], attempts[0]["request"]);
    }
    for attempt in &attempts[..attempts.len() - 1] {
        assert_eq!(attempt["response"], json!(null));
        assert!(
            attempt["error"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase()
                .contains("connect"),
            "{attempt}"
        );
    }
    // Full jitter within a ceiling that doubles from 50 ms and stops at 200 ms.
    for pair in attempts.windows(2) {
        let gap = (started_at(&pair[1]) - started_at(&pair[0])).num_milliseconds();
        assert!(
            gap < 1_500,
            "attempts {} and {} are {gap} ms apart",
            pair[0]["n"],
            pair[1]["n"]
        );
    }
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].header("idempotency-key"),
        Some(format!("{run_id}.deliver").as_str())
    );
    assert_eq!(received[0].json(), attempts[0]["request"]["body"]);
}

#[tokio::test]
async fn retry_after_on_429_delays_the_next_attempt() {
    let sink = Sink::scripted(&[(429, &[("retry-after", "2")])]).await;
    let recipe = format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: '{}/limited', json: {{a: 1}}}}\n    retry: {{attempts: 3, backoff: 10ms, max: 1m}}\n",
        sink.url
    );
    let ferry = TestDaemon::start(&[("polite.yaml", &recipe)]).await;
    let (_, answer) = ferry.post_hook("polite", &json!({})).await;
    let run = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let attempts = run["steps"][0]["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["response"]["status"], 429);
    assert_eq!(attempts[0]["response"]["headers"]["retry-after"], "2");
    let gap = (started_at(&attempts[1]) - started_at(&attempts[0])).num_milliseconds();
    assert!(
        gap >= 2_000,
        "the second attempt came {gap} ms after the first, before Retry-After's 2 s"
    );
    assert_eq!(
        sink.received()[0].header("idempotency-key"),
        sink.received()[1].header("idempotency-key")
    );
}

#[tokio::test]
async fn client_errors_are_not_retried_and_exhausted_attempts_fail_the_run() {
    let rejecting = Sink::start(422, json!({"error": "invalid"})).await;
    let broken = Sink::start(503, json!({})).await;
    let recipe = |url: &str| {
        format!(
            "trigger: {{webhook: {{}}}}\nsteps:\n  - id: call\n    http: {{url: '{url}/x', json: {{a: 1}}}}\n    retry: {{attempts: 3, backoff: 10ms, max: 20ms}}\n"
        )
    };
    let ferry = TestDaemon::start(&[
        ("rejected.yaml", &recipe(&rejecting.url)),
        ("broken.yaml", &recipe(&broken.url)),
    ])
    .await;

    let (_, answer) = ferry.post_hook("rejected", &json!({})).await;
    let run = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(
        run["steps"][0]["attempts"].as_array().map(Vec::len),
        Some(1),
        "a 422 is not retried"
    );
    assert!(
        run["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("step `call`: HTTP 422"),
        "{}",
        run["error"]
    );

    let (_, answer) = ferry.post_hook("broken", &json!({})).await;
    let run = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["steps"][0]["attempts"].as_array().map(Vec::len), Some(3));
    assert!(
        run["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("step `call` after 3 attempts: HTTP 503"),
        "{}",
        run["error"]
    );
    assert_eq!(broken.received().len(), 3);
}

#[tokio::test]
async fn a_restart_while_a_run_waits_to_retry_loses_nothing_and_resends_no_finished_step() {
    let first = Sink::start(200, json!({"id": "c-1"})).await;
    let second = Sink::scripted(&[(503, &[])]).await;
    let recipe = format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - id: create\n    http: {{url: '{}/create', json: {{n: '{{{{payload.n}}}}'}}}}\n  - id: link\n    http: {{url: '{}/link/{{{{steps.create.body.id}}}}', json: {{n: '{{{{payload.n}}}}'}}}}\n    retry: {{attempts: 5, backoff: 1500ms, max: 1500ms}}\n",
        first.url, second.url
    );
    let ferry = TestDaemon::start(&[("two.yaml", &recipe)]).await;
    let (_, answer) = ferry.post_hook("two", &json!({"n": 7})).await;
    let run_id = answer["run_id"].as_str().expect("run_id").to_owned();
    poll_until("the run to wait for its retry", || async {
        let (_, run) = ferry.get_json(&format!("/api/v1/runs/{run_id}")).await;
        (run["status"] == "retrying").then_some(())
    })
    .await;

    // Stop the daemon and start another on the same database and recipes.
    let TestDaemon { daemon, dir, .. } = ferry;
    daemon.shutdown().await.expect("shutdown");
    let recipes = dir.path().join("recipes");
    let ferry = TestDaemon::start_in(dir, recipes, Setup::default()).await;

    let run = ferry.wait_for_end(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(first.received().len(), 1, "a finished step is not sent again");
    let links = second.received();
    assert_eq!(links.len(), 2);
    assert_eq!(
        links[1].path_and_query, "/link/c-1",
        "the resumed step sees the earlier step's answer"
    );
    assert_eq!(links[0].header("idempotency-key"), links[1].header("idempotency-key"));
    assert_eq!(run["steps"][1]["attempts"].as_array().map(Vec::len), Some(2));
}
