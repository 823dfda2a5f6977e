//! Hot reload: editing, breaking, fixing and removing recipe files while the
//! daemon takes webhooks.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::{TestDaemon, poll_until};

fn greeter(word: &str) -> String {
    format!("trigger:\n  webhook: {{path: greet}}\nsteps:\n  - id: say\n    log: '{word} {{{{payload.n}}}}'\n")
}

async fn recipe_state(ferry: &TestDaemon, id: &str) -> Option<Value> {
    let (_, listing) = ferry.get_json("/api/v1/recipes").await;
    listing["recipes"]
        .as_array()
        .and_then(|recipes| recipes.iter().find(|recipe| recipe["id"] == id).cloned())
}

async fn version(ferry: &TestDaemon, id: &str) -> Option<String> {
    let (status, recipe) = ferry.get_json(&format!("/api/v1/recipes/{id}")).await;
    (status == StatusCode::OK).then(|| recipe["version"].as_str().unwrap_or_default().to_owned())
}

/// Posts to the hook and gives the log line and recorded version of its run.
async fn greet(ferry: &TestDaemon, n: u64) -> (String, String) {
    let (status, answer) = ferry.post_hook("greet", &json!({"n": n})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let run = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let line = run["steps"][0]["attempts"][0]["request"]["log"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (line, run["recipe_version"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn edits_take_effect_broken_versions_keep_the_old_one_and_nothing_is_lost() {
    let ferry = Arc::new(TestDaemon::start(&[("greet.yaml", &greeter("v1"))]).await);
    let file = ferry.dir.path().join("recipes/greet.yaml");
    let v1 = version(&ferry, "greet").await.expect("loaded");
    assert_eq!(greet(&ferry, 1).await, ("v1 1".to_owned(), v1.clone()));

    // Webhooks keep coming during every change below; each 202 must end well.
    let stop = Arc::new(AtomicBool::new(false));
    let background = {
        let (ferry, stop) = (ferry.clone(), stop.clone());
        tokio::spawn(async move {
            let mut accepted = Vec::new();
            for n in 1000..3000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let (status, answer) = ferry.post_hook("greet", &json!({"n": n})).await;
                assert_eq!(status, StatusCode::ACCEPTED, "webhook {n} during a reload: {answer}");
                accepted.push(answer["run_id"].as_str().expect("run_id").to_owned());
                tokio::time::sleep(std::time::Duration::from_millis(20)).await; // pacing, not sync
            }
            accepted
        })
    };

    // An edit changes the next webhook's behaviour.
    let edited = Instant::now();
    std::fs::write(&file, greeter("v2")).expect("edit");
    let v2 = poll_until("the edit to load", || async {
        version(&ferry, "greet").await.filter(|version| *version != v1)
    })
    .await;
    println!("edit in force after {} ms", edited.elapsed().as_millis());
    assert_eq!(greet(&ferry, 2).await, ("v2 2".to_owned(), v2.clone()));

    // A broken version keeps the old one running and says why.
    std::fs::write(
        &file,
        "trigger:\n  webhook: {path: greet}\nsteps:\n  - id: say\n    lgo: 'oops'\n",
    )
    .expect("break");
    let listed = poll_until("the error to show", || async {
        recipe_state(&ferry, "greet")
            .await
            .filter(|recipe| !recipe["error"].is_null())
    })
    .await;
    assert_eq!(listed["loaded"], true, "{listed}");
    let error = listed["error"].as_str().unwrap_or_default();
    assert!(error.contains("greet.yaml:5:5: unknown key `lgo`"), "{error}");
    assert_eq!(greet(&ferry, 3).await, ("v2 3".to_owned(), v2.clone()));

    // Fixing it resumes with the fixed version.
    std::fs::write(&file, greeter("v3")).expect("fix");
    let v3 = poll_until("the fix to load", || async {
        version(&ferry, "greet").await.filter(|version| *version != v2)
    })
    .await;
    let listed = recipe_state(&ferry, "greet").await.expect("listed");
    assert!(listed["error"].is_null(), "{listed}");
    assert_eq!(greet(&ferry, 4).await, ("v3 4".to_owned(), v3));

    stop.store(true, Ordering::SeqCst);
    let accepted = background.await.expect("background webhooks");
    assert!(
        accepted.len() >= 3,
        "webhooks were sent during the reloads: {}",
        accepted.len()
    );
    for run_id in &accepted {
        let run = ferry.wait_for_end(run_id).await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
    }

    // Removing the file removes the recipe and its hook.
    std::fs::remove_file(&file).expect("remove");
    poll_until("the recipe to go", || async {
        recipe_state(&ferry, "greet").await.is_none().then_some(())
    })
    .await;
    let (status, _) = ferry.post_hook("greet", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn schedules_start_and_stop_with_their_files() {
    let ferry = TestDaemon::start(&[]).await;
    let file = ferry.dir.path().join("recipes/tick.yaml");
    let schedule_runs = || async {
        let (_, runs) = ferry.get_json("/api/v1/runs?recipe=tick").await;
        runs["runs"].as_array().map_or(0, Vec::len)
    };
    std::fs::write(&file, "trigger:\n  schedule: {every: 1s}\nsteps: [{log: tick}]\n").expect("add");
    poll_until("a scheduled run", || async {
        (schedule_runs().await >= 1).then_some(())
    })
    .await;

    std::fs::remove_file(&file).expect("remove");
    poll_until("the recipe to go", || async {
        let (status, _) = ferry.get_json("/api/v1/recipes/tick").await;
        (status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    // Its task has stopped: over three of its periods, at most a tick already
    // under way when the file went is recorded.
    let after_removal = schedule_runs().await;
    let window = Instant::now();
    while window.elapsed() < std::time::Duration::from_secs(3) {
        assert!(
            schedule_runs().await <= after_removal + 1,
            "the removed schedule kept firing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await; // observation window
    }
}

/// A destination that holds every request until the test lets them go.
struct Gate {
    url: String,
    open: Arc<tokio::sync::Notify>,
    arrived: Arc<tokio::sync::Notify>,
}

impl Gate {
    async fn start() -> Self {
        let open = Arc::new(tokio::sync::Notify::new());
        let arrived = Arc::new(tokio::sync::Notify::new());
        let (held, seen) = (open.clone(), arrived.clone());
        let router = axum::Router::new().fallback(move || {
            let (held, seen) = (held.clone(), seen.clone());
            async move {
                seen.notify_one();
                held.notified().await;
                "ok"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind gate");
        let url = format!("http://{}", listener.local_addr().expect("gate address"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, open, arrived }
    }
}

#[tokio::test]
async fn a_run_queued_before_a_reload_records_the_version_it_ran_with() {
    let gate = Gate::start().await;
    // One run at a time: the second waits in the queue while the first is held.
    let recipe = |word: &str| {
        format!(
            "trigger:\n  webhook: {{path: slow}}\nconcurrency: 1\nsteps:\n  - id: call\n    http: {{url: '{}/{word}'}}\n",
            gate.url
        )
    };
    let ferry = TestDaemon::start(&[("slow.yaml", &recipe("v1"))]).await;
    let v1 = version(&ferry, "slow").await.expect("loaded");
    let (_, first) = ferry.post_hook("slow", &json!({})).await;
    gate.arrived.notified().await;
    let (_, second) = ferry.post_hook("slow", &json!({})).await;

    std::fs::write(ferry.dir.path().join("recipes/slow.yaml"), recipe("v2")).expect("edit");
    let v2 = poll_until("the edit to load", || async {
        version(&ferry, "slow").await.filter(|version| *version != v1)
    })
    .await;
    gate.open.notify_one(); // the first run's request
    let first = ferry.wait_for_end(first["run_id"].as_str().expect("run_id")).await;
    gate.arrived.notified().await;
    gate.open.notify_one(); // the second's
    let second = ferry.wait_for_end(second["run_id"].as_str().expect("run_id")).await;

    assert_eq!(
        first["recipe_version"],
        v1.as_str(),
        "the run in flight finished on its version"
    );
    assert!(
        first["steps"][0]["attempts"][0]["request"]["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/v1")
    );
    assert_eq!(second["recipe_version"], v2.as_str(), "{second:#}");
    assert!(
        second["steps"][0]["attempts"][0]["request"]["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/v2")
    );
}

fn files_parsed(metrics: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("ferry_recipe_files_parsed_total "))
        .and_then(|value| value.trim().parse().ok())
}

async fn metrics_text(ferry: &TestDaemon) -> String {
    ferry
        .http
        .get(format!("{}/metrics", ferry.base))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text")
}

#[tokio::test]
async fn a_reload_parses_only_the_file_that_changed() {
    const MANY: usize = 300;
    let texts: Vec<(String, String)> = (0..MANY)
        .map(|n| {
            (
                format!("r{n:03}.yaml"),
                format!("trigger: {{webhook: {{}}}}\nsteps: [{{log: 'recipe {n}'}}]\n"),
            )
        })
        .collect();
    let files: Vec<(&str, &str)> = texts
        .iter()
        .map(|(name, text)| (name.as_str(), text.as_str()))
        .collect();
    let ferry = TestDaemon::start(&files).await;
    let recipes = ferry.dir.path().join("recipes");
    assert_eq!(files_parsed(&metrics_text(&ferry).await), Some(MANY as u64));

    // An edit in place.
    let before = version(&ferry, "r123").await.expect("loaded");
    std::fs::write(recipes.join("r123.yaml"), greeter("edited")).expect("edit");
    poll_until("the edit to load", || async {
        version(&ferry, "r123").await.filter(|version| *version != before)
    })
    .await;
    assert_eq!(files_parsed(&metrics_text(&ferry).await), Some(MANY as u64 + 1));

    // An editor's save: a hidden temporary file renamed over the recipe.
    let before = version(&ferry, "r200").await.expect("loaded");
    std::fs::write(
        recipes.join(".r200.yaml.tmp"),
        "trigger: {webhook: {}}\nsteps: [{log: saved}]\n",
    )
    .expect("write");
    std::fs::rename(recipes.join(".r200.yaml.tmp"), recipes.join("r200.yaml")).expect("rename");
    poll_until("the save to load", || async {
        version(&ferry, "r200").await.filter(|version| *version != before)
    })
    .await;
    assert_eq!(files_parsed(&metrics_text(&ferry).await), Some(MANY as u64 + 2));
    let (status, answer) = ferry.post_hook("greet", &json!({"n": 5})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (status, answer) = ferry.post_hook("r200", &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
}
