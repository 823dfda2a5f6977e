//! A recipe that fails to load is reported and never stops the others.

use crate::support;

use axum::http::StatusCode;
use serde_json::json;
use support::TestDaemon;

#[tokio::test]
async fn a_broken_recipe_beside_a_good_one_leaves_the_good_one_serving() {
    let ferry = TestDaemon::start(&[
        (
            "good.yaml",
            "trigger: {webhook: {}}\nsteps:\n  - log: 'got {{payload.n}}'\n",
        ),
        (
            "broken.yaml",
            "trigger: {webhook: {}}\nsteps:\n  - log: hi\n    retries: 3\n",
        ),
        ("notes.txt", "not a recipe"),
        ("good.test.yaml", "- not: a recipe\n"),
    ])
    .await;

    let recipes = ferry.daemon.recipes();
    assert_eq!(recipes.len(), 1);
    assert!(recipes.get("good").is_some());
    let problems: Vec<String> = recipes.problems().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].ends_with(&format!(
            "broken.yaml:4:5: unknown key `retries` in a step; expected one of {}; did you mean `retry`?",
            support::step_keys()
        )),
        "{}",
        problems[0]
    );

    let (status, answer) = ferry.post_hook("good", &json!({"n": 5})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let run = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["steps"][0]["attempts"][0]["request"], json!({"log": "got 5"}));

    let (status, _) = ferry.post_hook("broken", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_duplicate_webhook_path_is_reported_at_the_later_file() {
    let ferry = TestDaemon::start(&[
        (
            "a-first.yaml",
            "trigger: {webhook: {path: shared}}\nsteps: [{log: first}]\n",
        ),
        (
            "b-second.yaml",
            "trigger: {webhook: {path: shared}}\nsteps: [{log: second}]\n",
        ),
    ])
    .await;
    let recipes = ferry.daemon.recipes();
    assert!(recipes.get("a-first").is_some());
    assert!(recipes.get("b-second").is_none());
    let problem = recipes.problems().next().expect("a problem").to_string();
    assert!(problem.contains("b-second.yaml"), "{problem}");
    assert!(
        problem.contains("webhook path `shared` belongs to a-first.yaml"),
        "{problem}"
    );
}
