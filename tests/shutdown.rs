//! Graceful shutdown: webhooks get 503 with Retry-After, runs in flight finish
//! within the grace period, the rest wait in the queue for the next start.

use crate::support;

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::{Setup, Sink, TestDaemon, http_client, poll_until};

fn slow_recipe(sink: &Sink) -> String {
    format!(
        "concurrency: 2\ntrigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: '{}/slow', json: {{n: '{{{{payload.n}}}}'}}}}\n",
        sink.url
    )
}

#[tokio::test]
async fn shutdown_refuses_new_webhooks_finishes_runs_in_flight_and_keeps_the_rest_queued() {
    let sink = Sink::slow(Duration::from_millis(800)).await;
    let ferry = TestDaemon::start(&[("slow.yaml", &slow_recipe(&sink))]).await;
    let mut ids = Vec::new();
    for n in 0..4 {
        let (_, answer) = ferry.post_hook("slow", &json!({"n": n})).await;
        ids.push(answer["run_id"].as_str().expect("run_id").to_owned());
    }
    poll_until("two runs in flight", || async {
        (sink.most_in_flight() == 2).then_some(())
    })
    .await;

    let TestDaemon {
        daemon,
        dir,
        base,
        http,
        ..
    } = ferry;
    let stopping = tokio::spawn(daemon.shutdown());
    let refused = poll_until("a webhook refused with 503", || async {
        let response = http
            .post(format!("{base}/hooks/slow"))
            .json(&json!({"n": 99}))
            .send()
            .await
            .ok()?;
        (response.status().as_u16() == 503).then_some(response)
    })
    .await;
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok()),
        Some("5")
    );
    assert_eq!(
        refused
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok()),
        Some("application/problem+json")
    );
    stopping.await.expect("shutdown task").expect("clean shutdown");
    assert_eq!(
        sink.received().len(),
        2,
        "the two runs in flight finished, the queued ones did not start"
    );

    let recipes = dir.path().join("recipes");
    let ferry = TestDaemon::start_in(dir, recipes, Setup::default()).await;
    for id in &ids {
        assert_eq!(ferry.wait_for_end(id).await["status"], "succeeded");
    }
    let mut delivered: Vec<u64> = sink
        .received()
        .iter()
        .filter_map(|request| request.json()["n"].as_u64())
        .collect();
    delivered.sort_unstable();
    assert_eq!(
        delivered,
        [0, 1, 2, 3],
        "each exactly once: nothing lost, nothing doubled, 99 never accepted"
    );
}

#[tokio::test]
async fn runs_still_in_flight_after_the_grace_period_are_handed_back() {
    let sink = Sink::slow(Duration::from_secs(3)).await;
    let ferry = TestDaemon::start_with(
        &[("slow.yaml", &slow_recipe(&sink))],
        Setup {
            shutdown_grace: Some(Duration::from_millis(200)),
            ..Setup::default()
        },
    )
    .await;
    let (_, answer) = ferry.post_hook("slow", &json!({"n": 1})).await;
    let run_id = answer["run_id"].as_str().expect("run_id").to_owned();
    poll_until("the run in flight", || async {
        (sink.most_in_flight() == 1).then_some(())
    })
    .await;

    let TestDaemon { daemon, dir, .. } = ferry;
    daemon.shutdown().await.expect("clean shutdown");
    assert!(
        sink.received().is_empty(),
        "the shutdown did not wait for the 3 s answer"
    );

    let recipes = dir.path().join("recipes");
    let ferry = TestDaemon::start_in(dir, recipes, Setup::default()).await;
    let run = ferry.wait_for_end(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
}

#[tokio::test]
async fn sigterm_stops_ferry_serve_with_exit_code_0() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("recipes")).expect("recipes");
    std::fs::write(
        dir.path().join("recipes/ok.yaml"),
        "trigger: {webhook: {}}\nsteps: [{log: ok}]\n",
    )
    .expect("recipe");
    let port = support::free_address().port();
    let ferry = support::Running(
        support::ferry_serve(dir.path(), port)
            .args(["--shutdown-grace", "2s"])
            .spawn()
            .expect("start ferry serve"),
    );
    let http = http_client();
    poll_until("the daemon to answer", || async {
        http.get(format!("http://127.0.0.1:{port}/api/v1/health"))
            .send()
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    let status = Command::new("kill")
        .args(["-TERM", &ferry.0.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let ferry = std::sync::Mutex::new(ferry);
    let exit = poll_until("ferry serve to exit", || {
        let exited = ferry.lock().expect("lock").0.try_wait().expect("wait");
        async move { exited }
    })
    .await;
    assert_eq!(exit.code(), Some(0));
}
