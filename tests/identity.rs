//! Recipe identity: the first file to claim a recipe id or a webhook path keeps
//! it. A newcomer that declares a taken one fails to load with an error naming
//! both files, during hot reload and after a restart; removing the owner frees it.
//! `ferry check`, offline, reports the conflict on both files.

use crate::support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::{Setup, TestDaemon, poll_until};

const GOOD: &str = "trigger: {webhook: {path: good}}\nsteps: [{log: 'good {{payload.n}}'}]\n";
const STEAL_PATH: &str = "trigger: {webhook: {path: good}}\nsteps: [{log: 'stolen path {{payload.n}}'}]\n";
const STEAL_ID: &str = "id: good\ntrigger: {webhook: {path: other}}\nsteps: [{log: 'stolen id {{payload.n}}'}]\n";

async fn listed(ferry: &TestDaemon, id: &str) -> Option<Value> {
    let (_, listing) = ferry.get_json("/api/v1/recipes").await;
    listing["recipes"]
        .as_array()
        .and_then(|recipes| recipes.iter().find(|recipe| recipe["id"] == id).cloned())
}

/// Posts to `/hooks/good` and gives the log line of the run it started.
async fn good_says(ferry: &TestDaemon, n: u64) -> String {
    let (status, answer) = ferry.post_hook("good", &json!({"n": n})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let run = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(run["recipe"], "good", "{run:#}");
    run["steps"][0]["attempts"][0]["request"]["log"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until a file's load error is listed, and gives it.
async fn load_error(ferry: &TestDaemon, id: &str) -> String {
    poll_until(&format!("{id} to be listed with its load error"), || async {
        let entry = listed(ferry, id).await?;
        (entry["loaded"] == false).then(|| entry["error"].as_str().unwrap_or_default().to_owned())
    })
    .await
}

#[tokio::test]
async fn a_stolen_path_and_a_stolen_id_keep_serving_the_original_during_reload_and_after_a_restart() {
    let ferry = TestDaemon::start(&[("good.yaml", GOOD)]).await;
    let recipes = ferry.dir.path().join("recipes");
    assert_eq!(good_says(&ferry, 1).await, "good 1");

    // A newcomer that sorts first and declares the same path.
    std::fs::write(recipes.join("aaa-steal-path.yaml"), STEAL_PATH).expect("write");
    let error = load_error(&ferry, "aaa-steal-path").await;
    assert!(
        error.contains("aaa-steal-path.yaml") && error.contains("webhook path `good` belongs to good.yaml"),
        "{error}"
    );
    // And one that declares the same id.
    std::fs::write(recipes.join("zzz-steal-id.yaml"), STEAL_ID).expect("write");
    let error = load_error(&ferry, "zzz-steal-id").await;
    assert!(
        error.contains("zzz-steal-id.yaml") && error.contains("recipe id `good` belongs to good.yaml"),
        "{error}"
    );
    let good = listed(&ferry, "good").await.expect("good is listed");
    assert_eq!(good["loaded"], true, "{good:#}");
    assert_eq!(good["error"], Value::Null, "{good:#}");
    assert_eq!(good_says(&ferry, 2).await, "good 2");
    let (status, _) = ferry.post_hook("other", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the id thief's path serves nothing");

    // A restart remembers who came first, though file-name order says otherwise.
    let TestDaemon { daemon, dir, .. } = ferry;
    daemon.shutdown().await.expect("clean shutdown");
    let ferry = TestDaemon::start_in(dir, recipes.clone(), Setup::default()).await;
    assert_eq!(good_says(&ferry, 3).await, "good 3");
    let error = load_error(&ferry, "aaa-steal-path").await;
    assert!(error.contains("belongs to good.yaml"), "{error}");
    assert!(
        load_error(&ferry, "zzz-steal-id")
            .await
            .contains("belongs to good.yaml")
    );

    // Removing the owner frees its path and id: the first newcomer takes the path.
    std::fs::remove_file(recipes.join("good.yaml")).expect("remove");
    std::fs::remove_file(recipes.join("zzz-steal-id.yaml")).expect("remove");
    let taken = poll_until("the freed path to serve the newcomer", || async {
        let entry = listed(&ferry, "aaa-steal-path").await?;
        (entry["loaded"] == true).then_some(entry)
    })
    .await;
    assert_eq!(taken["error"], Value::Null, "{taken:#}");
    let (status, answer) = ferry.post_hook("good", &json!({"n": 4})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let run = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(run["recipe"], "aaa-steal-path");
}

#[test]
fn check_reports_each_conflict_on_both_files_and_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in [
        ("good.yaml", GOOD),
        ("aaa-steal-path.yaml", STEAL_PATH),
        ("zzz-steal-id.yaml", STEAL_ID),
    ] {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("check")
        .arg(dir.path())
        .output()
        .expect("run ferry check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "{text}");
    // Offline nobody is first: every file of a conflict hears of it.
    let lines: Vec<&str> = text.lines().filter(|line| line.starts_with("error: ")).collect();
    let on = |file: &str, needle: &str| lines.iter().any(|line| line.contains(file) && line.contains(needle));
    assert!(
        on(
            "/good.yaml:",
            "webhook path `good` is also claimed by aaa-steal-path.yaml"
        ),
        "{text}"
    );
    assert!(
        on(
            "/aaa-steal-path.yaml:",
            "webhook path `good` is also claimed by good.yaml"
        ),
        "{text}"
    );
    assert!(
        on("/good.yaml:", "recipe id `good` is also claimed by zzz-steal-id.yaml"),
        "{text}"
    );
    assert!(
        on("/zzz-steal-id.yaml:", "recipe id `good` is also claimed by good.yaml"),
        "{text}"
    );
    assert_eq!(lines.len(), 4, "{text}");
}
