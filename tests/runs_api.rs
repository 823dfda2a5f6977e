//! `GET /api/v1/runs`: newest first, filters, paging and clear errors.

use crate::support;

use axum::http::StatusCode;
use serde_json::json;
use support::{Sink, TestDaemon};

#[tokio::test]
async fn runs_are_listed_newest_first_with_filters_and_a_cursor() {
    let failing = Sink::start(503, json!({})).await;
    let failing_recipe = format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: '{}/x'}}\n",
        failing.url
    );
    let ferry = TestDaemon::start(&[
        ("ok.yaml", "trigger: {webhook: {}}\nsteps: [{log: fine}]\n"),
        ("bad.yaml", &failing_recipe),
    ])
    .await;

    let mut ids = Vec::new();
    for (hook, n) in [("ok", 1), ("bad", 2), ("ok", 3), ("ok", 4)] {
        let (status, answer) = ferry.post_hook(hook, &json!({"n": n})).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let id = answer["run_id"].as_str().expect("run_id").to_owned();
        ferry.wait_for_end(&id).await;
        ids.push(id);
    }

    let (status, listing) = ferry.get_json("/api/v1/runs").await;
    assert_eq!(status, StatusCode::OK);
    let listed = ids_of(&listing);
    let newest_first: Vec<_> = ids.iter().rev().map(|id| json!(id)).collect();
    assert_eq!(listed, newest_first);
    assert_eq!(listing["next_cursor"], json!(null));
    let item = &listing["runs"][0];
    assert!(
        item.get("payload").is_none() && item.get("steps").is_none(),
        "a list item has no payload or steps: {item}"
    );

    let (_, failed) = ferry.get_json("/api/v1/runs?status=failed").await;
    assert_eq!(failed["runs"].as_array().expect("runs").len(), 1);
    assert_eq!(failed["runs"][0]["id"], json!(ids[1]));
    assert!(
        failed["runs"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("HTTP 503")
    );

    let (_, first_page) = ferry.get_json("/api/v1/runs?recipe=ok&limit=2").await;
    let page = ids_of(&first_page);
    assert_eq!(page, [json!(ids[3]), json!(ids[2])]);
    let cursor = first_page["next_cursor"].as_str().expect("a full page has a cursor");
    assert_eq!(cursor, ids[2], "the cursor is the page's last run id");
    let (_, second_page) = ferry
        .get_json(&format!("/api/v1/runs?recipe=ok&limit=2&cursor={cursor}"))
        .await;
    let page = ids_of(&second_page);
    assert_eq!(page, [json!(ids[0])]);
    assert_eq!(second_page["next_cursor"], json!(null));

    // A position, not a token: under other filters it lists their runs older than it.
    let (status, other) = ferry
        .get_json(&format!("/api/v1/runs?recipe=bad&limit=2&cursor={cursor}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{other}");
    assert_eq!(ids_of(&other), [json!(ids[1])]);
    assert_eq!(other["next_cursor"], json!(null));

    // since is inclusive, until exclusive; any offset is accepted.
    let (_, second) = ferry.get_json(&format!("/api/v1/runs/{}", ids[1])).await;
    let received =
        chrono::DateTime::parse_from_rfc3339(second["received_at"].as_str().expect("received_at")).expect("time");
    let in_paris = received
        .with_timezone(&chrono::FixedOffset::east_opt(3600).expect("offset"))
        .to_rfc3339();
    let (_, since) = ferry
        .get_json(&format!("/api/v1/runs?since={}", in_paris.replace('+', "%2B")))
        .await;
    let listed = ids_of(&since);
    assert!(
        listed.contains(&json!(ids[1])) && !listed.contains(&json!(ids[0])),
        "{listed:?}"
    );
    let (_, until) = ferry
        .get_json(&format!("/api/v1/runs?until={}", in_paris.replace('+', "%2B")))
        .await;
    let listed = ids_of(&until);
    assert!(
        !listed.contains(&json!(ids[1])) && listed.contains(&json!(ids[0])),
        "{listed:?}"
    );
}

#[tokio::test]
async fn bad_filters_and_unknown_runs_are_problems() {
    let ferry = TestDaemon::start(&[("ok.yaml", "trigger: {webhook: {}}\nsteps: [{log: fine}]\n")]).await;
    for (query, needle) in [
        ("status=done", "not a run status"),
        ("limit=0", "`limit`"),
        ("limit=501", "`limit`"),
        ("colour=red", "unknown query parameter `colour`"),
        ("since=yesterday", "`since` must be an RFC 3339 time"),
        ("cursor=abc", "`cursor` must be a run id"),
    ] {
        let (status, problem) = ferry.get_json(&format!("/api/v1/runs?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(problem["status"], 400);
        assert!(
            problem["detail"].as_str().unwrap_or_default().contains(needle),
            "{query}: {problem}"
        );
    }
    let (status, problem) = ferry
        .get_json("/api/v1/runs/0193b4e2-0000-7000-8000-000000000000")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(problem["title"], "Not Found");

    let (status, health) = ferry.get_json("/api/v1/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"], "ok");
    assert_eq!(health["recipes"], 1);
}

/// The run ids of a listing, in its order.
fn ids_of(listing: &serde_json::Value) -> Vec<serde_json::Value> {
    listing["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|run| run["id"].clone())
        .collect()
}
