//! Upgrading a database made by an earlier Ferry: migration 0007 rebuilds `runs`
//! and `steps` (their status CHECKs without `IN` lists), 0008 rebuilds `steps`
//! again (keyed by its primary key alone). What was stored before
//! must come through whole, the rules must still hold, and deleting a run must
//! still take its steps and attempts with it.

use chrono::Utc;
use ferry::step::KindName;
use ferry::store::{Durability, RunStatus, StepStatus, Store};
use serde_json::json;
use sqlx::{Connection, SqliteConnection};

const RUN: &str = "01a24269-c36e-7788-a0f4-afe88de90e3f";
const RETRYING: &str = "01a24269-c37b-7412-b112-de4f5d8fe307";

/// A database at migration 0006 with a finished run (one step, one attempt)
/// and a run waiting for its retry, written as that version wrote them.
async fn database_at_0006(dir: &std::path::Path) -> String {
    let migrations = dir.join("migrations");
    std::fs::create_dir(&migrations).expect("migrations dir");
    for entry in std::fs::read_dir("migrations/sqlite").expect("the migrations folder") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .expect("file name")
            .to_owned();
        if name.as_str() < "0007" {
            std::fs::copy(&path, migrations.join(&name)).expect("copy migration");
        }
    }
    let url = format!("sqlite://{}?mode=rwc", dir.join("ferry.db").display());
    let mut connection = SqliteConnection::connect(&url).await.expect("connect");
    sqlx::query("PRAGMA foreign_keys = ON")
        .execute(&mut connection)
        .await
        .expect("foreign keys");
    let old = sqlx::migrate::Migrator::new(migrations.as_path())
        .await
        .expect("migrations 0001-0006");
    old.run(&mut connection).await.expect("migrate to 0006");
    for (id, status, next_attempt_at) in [
        (RUN, "succeeded", None),
        (RETRYING, "retrying", Some("2000-01-01T00:00:00.000Z")),
    ] {
        sqlx::query(
            "INSERT INTO runs (id, recipe, recipe_version, trigger, status, received_at, started_at, finished_at,
                               next_attempt_at, payload, headers, query)
             VALUES (?1, 'hello', 'v1', 'webhook', ?2, '2026-12-04T18:55:57.300Z', '2026-12-04T18:55:57.301Z',
                     CASE ?2 WHEN 'succeeded' THEN '2026-12-04T18:55:57.322Z' END, ?3,
                     '{\"name\":\"Ada\"}', '{\"content-type\":\"application/json\"}', '{}')",
        )
        .bind(id)
        .bind(status)
        .bind(next_attempt_at)
        .execute(&mut connection)
        .await
        .expect("insert run");
    }
    sqlx::query(
        "INSERT INTO steps (run_id, position, step_id, status, request, result)
         VALUES (?1, 0, 'greet', 'succeeded', NULL, '{\"status\":202}'),
                (?1, 1, 'note', 'succeeded', NULL, NULL),
                (?2, 0, 'greet', 'retrying', '{\"method\":\"POST\"}', NULL)",
    )
    .bind(RUN)
    .bind(RETRYING)
    .execute(&mut connection)
    .await
    .expect("insert steps");
    sqlx::query(
        "INSERT INTO attempts (run_id, position, n, started_at, duration_ms, request, response, error)
         VALUES (?1, 0, 1, '2026-12-04T18:55:57.310Z', 3, '{\"method\":\"POST\",\"url\":\"http://127.0.0.1:9/in\"}',
                 '{\"status\":202,\"body\":{\"ok\":true}}', NULL),
                (?1, 1, 1, '2026-12-04T18:55:57.315Z', 0, '{\"log\":\"greeted Ada\"}', NULL, NULL)",
    )
    .bind(RUN)
    .execute(&mut connection)
    .await
    .expect("insert attempt");
    connection.close().await.expect("close");
    format!("sqlite://{}", dir.join("ferry.db").display())
}

#[tokio::test]
async fn a_database_from_before_the_rebuild_keeps_its_runs_and_its_rules() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = database_at_0006(dir.path()).await;

    let store = Store::open(&url, Durability::ProcessCrash)
        .await
        .expect("the store opens and migrates");

    let run = store.run(RUN).await.expect("read").expect("the run is still there");
    assert_eq!(run.summary.status, RunStatus::Succeeded);
    assert_eq!(run.summary.finished_at.as_deref(), Some("2026-12-04T18:55:57.322Z"));
    assert_eq!(run.payload, json!({"name": "Ada"}));
    assert_eq!(run.headers, json!({"content-type": "application/json"}));
    assert_eq!(run.steps.len(), 2);
    assert_eq!(run.steps[0].id, "greet");
    // Steps recorded before kinds were: the one that logged is a log step.
    assert_eq!(run.steps[0].kind, KindName::Http);
    assert_eq!(run.steps[1].kind, KindName::Log);
    assert_eq!(run.steps[1].attempts[0].request, json!({"log": "greeted Ada"}));
    assert_eq!(run.steps[0].status, StepStatus::Succeeded);
    assert_eq!(run.steps[0].attempts.len(), 1);
    assert_eq!(
        run.steps[0].attempts[0].response,
        Some(json!({"status": 202, "body": {"ok": true}}))
    );
    // The waiting retry is still due, and still resumes with its stored request.
    let due = store.due(Utc::now(), 10).await.expect("due");
    assert_eq!(due, vec![(RETRYING.to_owned(), "hello".to_owned())]);
    let claimed = store
        .claim(vec![RETRYING.to_owned()], |_, text| serde_json::from_str(text))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].steps.len(), 1);
    assert_eq!(claimed[0].steps[0].request, Some(json!({"method": "POST"})));
    store.close().await;

    let mut connection = SqliteConnection::connect(&url).await.expect("connect");
    sqlx::query("PRAGMA foreign_keys = ON")
        .execute(&mut connection)
        .await
        .expect("foreign keys");
    // The status rules hold as before.
    let bad_run = sqlx::query(
        "INSERT INTO runs (id, recipe, recipe_version, trigger, status, received_at, payload, headers, query)
         VALUES ('x', 'hello', 'v1', 'webhook', 'finished', '2026-12-04T18:55:57.300Z', '{}', '{}', '{}')",
    )
    .execute(&mut connection)
    .await
    .expect_err("a status outside the list is refused");
    assert!(bad_run.to_string().contains("CHECK constraint failed"), "{bad_run}");
    let bad_step = sqlx::query("UPDATE steps SET status = 'queued' WHERE run_id = ?1")
        .bind(RUN)
        .execute(&mut connection)
        .await
        .expect_err("a step cannot be queued");
    assert!(bad_step.to_string().contains("CHECK constraint failed"), "{bad_step}");
    // A step of no run is refused, and deleting a run takes its steps and attempts.
    sqlx::query("INSERT INTO steps (run_id, position, step_id, status) VALUES ('nobody', 0, 's', 'running')")
        .execute(&mut connection)
        .await
        .expect_err("a step needs its run");
    sqlx::query("DELETE FROM runs WHERE id = ?1")
        .bind(RUN)
        .execute(&mut connection)
        .await
        .expect("delete run");
    let (steps, attempts): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM steps WHERE run_id = ?1), (SELECT COUNT(*) FROM attempts WHERE run_id = ?1)",
    )
    .bind(RUN)
    .fetch_one(&mut connection)
    .await
    .expect("count");
    assert_eq!((steps, attempts), (0, 0));
}
