//! `GET /api/v1/recipes` lists loaded and broken recipes; `/recipes/{id}` shows one.

use crate::support;

use axum::http::StatusCode;
use serde_json::json;
use support::TestDaemon;

#[tokio::test]
async fn recipes_are_listed_with_load_errors_and_last_runs() {
    let good = "description: Says hi\ntrigger: {webhook: {path: in/hi}}\nsteps:\n  - id: greet\n    log: hi\n";
    let ferry = TestDaemon::start(&[
        ("greeter.yaml", good),
        ("broken.yaml", "trigger: {webhook: {}}\nsteps:\n  - log: '{{nope}}'\n"),
        (
            "off.yaml",
            "enabled: false\ntrigger: {webhook: {}}\nsteps: [{log: x}]\n",
        ),
    ])
    .await;
    let (_, answer) = ferry.post_hook("in/hi", &json!({})).await;
    let run_id = answer["run_id"].as_str().expect("run_id").to_owned();
    ferry.wait_for_end(&run_id).await;

    let (status, off) = ferry.post_hook("off", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a disabled recipe never fires: {off}");

    let (status, listing) = ferry.get_json("/api/v1/recipes").await;
    assert_eq!(status, StatusCode::OK);
    let recipes = listing["recipes"].as_array().expect("recipes");
    let ids: Vec<_> = recipes
        .iter()
        .map(|recipe| recipe["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, ["broken", "greeter", "off"]);
    assert_eq!(recipes[0]["loaded"], false);
    assert!(
        recipes[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("broken.yaml:3:13"),
        "{}",
        recipes[0]
    );
    assert_eq!(recipes[1]["loaded"], true);
    assert_eq!(recipes[1]["trigger"], "webhook");
    assert_eq!(recipes[1]["enabled"], true);
    assert_eq!(recipes[1]["last_run"]["id"], json!(run_id));
    assert_eq!(recipes[1]["last_run"]["status"], "succeeded");
    assert_eq!(recipes[2]["enabled"], false);
    assert_eq!(recipes[2]["last_run"], json!(null));

    let (status, recipe) = ferry.get_json("/api/v1/recipes/greeter").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(recipe["source"], good);
    assert_eq!(recipe["version"].as_str().map(str::len), Some(16));
    assert_eq!(recipe["trigger"]["path"], "in/hi");
    assert_eq!(recipe["trigger"]["url"], format!("{}/hooks/in/hi", ferry.base));
    assert_eq!(recipe["runs"]["succeeded"], 1);
    assert_eq!(recipe["runs"]["failed"], 0);

    let (status, problem) = ferry.get_json("/api/v1/recipes/broken").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(problem["status"], 404);
}

#[tokio::test]
async fn recipes_are_listed_a_page_at_a_time_with_a_cursor() {
    let hook = "trigger: {webhook: {}}\nsteps: [{log: ok}]\n";
    let ferry = TestDaemon::start(&[
        ("a.yaml", hook),
        ("b.yaml", hook),
        ("c.yaml", "trigger: {webhook: {}}\nstepz: []\n"),
        ("d.yaml", hook),
        ("e.yaml", hook),
    ])
    .await;
    let (status, _) = ferry.post_hook("d", &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let (status, every) = ferry.get_json("/api/v1/recipes").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        every["next_cursor"],
        serde_json::Value::Null,
        "without `limit`, every recipe at once"
    );
    let all: Vec<String> = every["recipes"]
        .as_array()
        .expect("recipes")
        .iter()
        .map(|recipe| recipe["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(all, ["a", "b", "c", "d", "e"]);

    let mut paged = Vec::new();
    let mut path = "/api/v1/recipes?limit=2".to_owned();
    for _ in 0..5 {
        let (status, page) = ferry.get_json(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let recipes = page["recipes"].as_array().expect("recipes");
        assert!(recipes.len() <= 2, "{page}");
        for recipe in recipes {
            paged.push(recipe["id"].as_str().expect("id").to_owned());
            if recipe["id"] == "d" {
                assert!(recipe["last_run"]["id"].is_string(), "{recipe}");
            }
            if recipe["id"] == "c" {
                assert_eq!(recipe["loaded"], false, "{recipe}");
            }
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/recipes?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged, all, "the pages hold every recipe once, in order");

    for (query, says) in [
        ("limit=0", "`limit`"),
        ("limit=1001", "`limit`"),
        ("page=2", "unknown query parameter `page`"),
    ] {
        let (status, problem) = ferry.get_json(&format!("/api/v1/recipes?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap_or_default().contains(says),
            "{query}: {problem}"
        );
    }
}
