//! Resource budgets through the real binary: renders that would run for seconds
//! or take gigabytes fail at their budget while an unrelated webhook is
//! acknowledged and its run succeeds, and the daemon's peak memory stays small.

use crate::support;

use serde_json::{Value, json};
use support::{ChildDaemon, Sink, poll_until};

/// The daemon's peak resident memory may not pass this in any case here.
const PEAK_RSS_MIB: f64 = 200.0;

async fn run_of(http: &reqwest::Client, base: &str, run_id: &str) -> Value {
    http.get(format!("{base}/api/v1/runs/{run_id}"))
        .send()
        .await
        .expect("GET run")
        .json()
        .await
        .expect("run JSON")
}

#[tokio::test]
async fn budget_breaking_renders_fail_at_their_budget_while_other_webhooks_go_on() {
    let sink = Sink::start(200, json!({"ok": true})).await;
    let leaves: String = (0..30)
        .map(|index| format!("        l{index}: '{{{{replace payload.s \"a\" payload.t}}}}'\n"))
        .collect();
    let recipes = [
        (
            "nested.yaml",
            "trigger: {webhook: {}}\nsteps:\n  - log: '{{#each payload.a}}{{#each ../payload.a}}{{#each ../../payload.a}}{{/each}}{{/each}}{{/each}}done'\n".to_owned(),
        ),
        (
            "amplify.yaml",
            "trigger: {webhook: {}}\nsteps:\n  - log: '{{len (replace (replace payload.s \"a\" payload.t) \"a\" payload.t)}}'\n".to_owned(),
        ),
        (
            "leaves.yaml",
            format!("trigger: {{webhook: {{}}}}\nsteps:\n  - http:\n      url: '{}/big'\n      json:\n{leaves}", sink.url),
        ),
        ("quick.yaml", "trigger: {webhook: {}}\nsteps:\n  - log: 'quick {{payload.n}}'\n".to_owned()),
    ];
    let recipes: Vec<(&str, &str)> = recipes.iter().map(|(name, text)| (*name, text.as_str())).collect();
    let child = ChildDaemon::start(&recipes, "quick").await;
    let (http, base) = (child.http.clone(), child.base.clone());

    let payloads = [
        ("nested", json!({"a": (0..700).collect::<Vec<_>>()})),
        ("amplify", json!({"s": "a".repeat(1000), "t": "a".repeat(1000)})),
        ("leaves", json!({"s": "a".repeat(1000), "t": "a".repeat(1000)})),
    ];
    let mut heavy = Vec::new();
    for (path, payload) in &payloads {
        for _ in 0..2 {
            let answer: Value = http
                .post(format!("{base}/hooks/{path}"))
                .json(payload)
                .send()
                .await
                .expect("POST")
                .json()
                .await
                .expect("answer");
            heavy.push((*path, answer["run_id"].as_str().expect("run_id").to_owned()));
        }
    }
    // An unrelated webhook, sent while the heavy runs are queued or rendering.
    let answer: Value = http
        .post(format!("{base}/hooks/quick"))
        .json(&json!({"n": 1}))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("answer");
    let quick = support::wait_for_success(&http, &base, answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(quick["steps"][0]["attempts"][0]["request"]["log"], "quick 1");
    // When it succeeded, each heavy run was still going or had failed at its budget.
    for (path, run_id) in &heavy {
        let run = run_of(&http, &base, run_id).await;
        assert!(
            ["queued", "running", "failed"].contains(&run["status"].as_str().unwrap_or_default()),
            "{path}: {run:#}\n{}",
            child.complaints()
        );
    }
    for (path, run_id) in &heavy {
        let run = poll_until(&format!("the {path} run to end"), || async {
            let run = run_of(&http, &base, run_id).await;
            (run["status"] == "failed").then_some(run)
        })
        .await;
        let error = run["error"].as_str().unwrap_or_default();
        let budget = if *path == "leaves" {
            "larger than the render budget of 4 MiB (FERRY_RENDER_MAX_BYTES)"
        } else {
            "render budget of 1000000 work units (FERRY_RENDER_MAX_WORK)"
        };
        assert!(error.contains(budget), "{path}: {error}");
    }
    assert!(sink.received().is_empty(), "nothing over budget was sent");
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics");
    assert!(
        metrics.contains("ferry_renders_over_budget_total{recipe=\"leaves\",budget=\"bytes\"} 2"),
        "{metrics}"
    );
    let peak = child.daemon.peak_rss_mib();
    println!("peak RSS of the daemon: {peak:.1} MiB");
    assert!(peak < PEAK_RSS_MIB, "peak RSS {peak:.1} MiB");
}
