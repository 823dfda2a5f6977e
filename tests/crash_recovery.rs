//! `kill -9` of `ferry serve` while it takes webhooks at full speed, then a restart:
//! every webhook that got a 202 is delivered at least once and every run succeeds.

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Sink, http_client, poll_until};

/// Ended when the test ends, also when it fails before its own kill.
fn start_ferry(dir: &Path, port: u16) -> support::Running {
    support::Running(support::ferry_serve(dir, port).spawn().expect("start ferry serve"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_webhook_is_delivered_after_a_kill_9() {
    let sink = Sink::slow(Duration::from_millis(5)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("recipes")).expect("recipes dir");
    let recipe = format!(
        "concurrency: 16\ntrigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: '{}/in', json: {{n: '{{{{payload.n}}}}'}}}}\n    retry: {{attempts: 5, backoff: 50ms, max: 500ms}}\n",
        sink.url
    );
    std::fs::write(dir.path().join("recipes/relay.yaml"), recipe).expect("recipe");

    let port = support::free_address().port();
    let mut ferry = start_ferry(dir.path(), port);
    let http = http_client();
    let base = format!("http://127.0.0.1:{port}");
    poll_until("the daemon to answer", || async {
        http.get(format!("{base}/api/v1/health")).send().await.ok().map(|_| ())
    })
    .await;

    // Eight senders, at most 400 requests and 10 s in all; the kill comes after 150 acks.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<(u64, String)>::new()));
    let mut senders = Vec::new();
    for sender in 0..8u64 {
        let (http, base, stop, acknowledged) = (http.clone(), base.clone(), stop.clone(), acknowledged.clone());
        senders.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            for i in 0..50u64 {
                if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
                    break;
                }
                let n = sender * 1000 + i;
                let Ok(response) = http
                    .post(format!("{base}/hooks/relay"))
                    .json(&json!({"n": n}))
                    .send()
                    .await
                else {
                    break; // the daemon is gone
                };
                if response.status().as_u16() == 202
                    && let Ok(answer) = response.json::<serde_json::Value>().await
                    && let Some(id) = answer["run_id"].as_str()
                {
                    acknowledged.lock().expect("lock").push((n, id.to_owned()));
                }
            }
        }));
    }
    poll_until("150 acknowledged webhooks", || async {
        (acknowledged.lock().expect("lock").len() >= 150).then_some(())
    })
    .await;
    ferry.0.kill().expect("kill -9");
    ferry.0.wait().expect("reap");
    stop.store(true, Ordering::SeqCst);
    for sender in senders {
        sender.await.expect("sender task");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    let delivered_before_restart = sink.received().len();

    let mut ferry = start_ferry(dir.path(), port);
    for (n, run_id) in &acknowledged {
        let run = support::wait_for_success(&http, &base, run_id).await;
        assert_eq!(run["payload"], json!({"n": n}));
    }
    ferry.0.kill().expect("stop");
    ferry.0.wait().expect("reap");

    let delivered: std::collections::HashSet<u64> = sink
        .received()
        .iter()
        .filter_map(|request| request.json()["n"].as_u64())
        .collect();
    let lost: Vec<u64> = acknowledged
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !delivered.contains(n))
        .collect();
    assert!(lost.is_empty(), "acknowledged but never delivered: {lost:?}");
    eprintln!(
        "acknowledged {}, delivered before the kill {delivered_before_restart}, requests at the sink {}",
        acknowledged.len(),
        sink.received().len()
    );
}

/// A recipe with `concurrency: 1` sends its events in the order they came, also
/// across a `kill -9`: the run cut short goes first again (at least once), then
/// the queue in its order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_one_keeps_its_order_across_a_kill_9() {
    let sink = Sink::slow(Duration::from_millis(100)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("recipes")).expect("recipes dir");
    let recipe = format!(
        "concurrency: 1\ntrigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: '{}/in', json: {{n: '{{{{payload.n}}}}'}}}}\n",
        sink.url
    );
    std::fs::write(dir.path().join("recipes/serial.yaml"), recipe).expect("recipe");
    let port = support::free_address().port();
    let http = http_client();
    let base = format!("http://127.0.0.1:{port}");
    let ferry = start_ferry(dir.path(), port);
    poll_until("the daemon to answer", || async {
        http.get(format!("{base}/api/v1/health")).send().await.ok().map(|_| ())
    })
    .await;

    let mut runs = Vec::new();
    for n in 0..12u64 {
        let answer: serde_json::Value = http
            .post(format!("{base}/hooks/serial"))
            .json(&json!({"n": n}))
            .send()
            .await
            .expect("webhook")
            .json()
            .await
            .expect("answer");
        runs.push(answer["run_id"].as_str().expect("run_id").to_owned());
    }
    poll_until("three deliveries before the kill", || async {
        (sink.received().len() >= 3).then_some(())
    })
    .await;
    drop(ferry); // kill -9

    let _ferry = start_ferry(dir.path(), port);
    for run_id in &runs {
        support::wait_for_success(&http, &base, run_id).await;
    }
    let sent: Vec<u64> = sink
        .received()
        .iter()
        .filter_map(|request| request.json()["n"].as_u64())
        .collect();
    // Each event's first delivery comes in order; a repeat is only the one the
    // kill cut short, right after its first try.
    let mut firsts = Vec::new();
    for (index, n) in sent.iter().enumerate() {
        if firsts.contains(n) {
            assert_eq!(
                sent[index - 1],
                *n,
                "only an interrupted send repeats, at once: {sent:?}"
            );
        } else {
            firsts.push(*n);
        }
    }
    assert_eq!(firsts, (0..12).collect::<Vec<_>>(), "{sent:?}");
}
