//! Run listings read their page, not the table: the query plan of every
//! listing filter searches an index, walks a partial index that holds only the
//! runs of its status, or — for the unfiltered and `succeeded` listings, which a
//! page fills at once — walks the primary key newest first. Never a sort. The
//! per-recipe counts, the queue figures and the newest run of each recipe are
//! row reads too, and their cost does not grow with the table.

use ferry::store::{LAST_RUNS_SQL, QUEUE_STATS_SQL, RUN_COUNTS_SQL, RunFilter, RunStatus, Store, runs_page_sql};
use rusqlite::Connection;

/// Every combination of filters a listing can have.
fn filters() -> Vec<RunFilter> {
    let mut filters = Vec::new();
    for recipe in [None, Some("hook".to_owned())] {
        for status in [
            None,
            Some(RunStatus::Queued),
            Some(RunStatus::Running),
            Some(RunStatus::Retrying),
            Some(RunStatus::Succeeded),
            Some(RunStatus::Failed),
            Some(RunStatus::Skipped),
        ] {
            for (since, until) in [
                (None, None),
                (Some("2026-12-01T00:00:00.000Z".to_owned()), None),
                (None, Some("2026-12-02T00:00:00.000Z".to_owned())),
                (
                    Some("2026-12-01T00:00:00.000Z".to_owned()),
                    Some("2026-12-02T00:00:00.000Z".to_owned()),
                ),
            ] {
                for before in [None, Some("01a24ecb-9a21-709b-9ecc-eb5134b870a1".to_owned())] {
                    filters.push(RunFilter {
                        recipe: recipe.clone(),
                        status,
                        since: since.clone(),
                        until: until.clone(),
                        before,
                        limit: 50,
                    });
                }
            }
        }
    }
    filters
}

#[tokio::test]
async fn every_listing_filter_reads_through_an_index() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ferry.db");
    let store = Store::open(&format!("sqlite://{}", path.display()), Default::default())
        .await
        .expect("store");
    let connection = Connection::open(&path).expect("open");
    let mut checked = 0;
    for filter in filters() {
        let (sql, binds) = runs_page_sql(&filter);
        let mut statement = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("the listing statement prepares");
        let mut values: Vec<&dyn rusqlite::ToSql> = binds.iter().map(|bind| bind as &dyn rusqlite::ToSql).collect();
        values.push(&filter.limit);
        let plan: Vec<String> = statement
            .query_map(values.as_slice(), |row| row.get::<_, String>(3))
            .expect("plan")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        // Only where most runs match does a walk of the primary key, newest
        // first, fill the page at once.
        let may_walk = filter.recipe.is_none() && matches!(filter.status, None | Some(RunStatus::Succeeded));
        // A partial index holds only the runs of its status, in id order: walking
        // it newest first reads just the page.
        let partial = match filter.status {
            Some(RunStatus::Failed) => Some("SCAN runs USING INDEX runs_failed"),
            Some(RunStatus::Skipped) => Some("SCAN runs USING INDEX runs_skipped"),
            _ => None,
        };
        for line in &plan {
            let walk = line == "SCAN runs USING INDEX sqlite_autoindex_runs_1";
            let good = line.starts_with("SEARCH runs USING")
                || (may_walk && walk)
                || partial.is_some_and(|partial| line == partial);
            assert!(good, "{filter:?}\n{sql}\n{plan:#?}");
        }
        checked += 1;
    }
    assert_eq!(checked, 112);
    store.close().await;
}

/// Adds runs straight into the table: `count` of them, newest last, received a
/// second apart from `start_second` (ids are UUIDv7 of that time). One in a
/// hundred fails, one in two hundred is skipped; every 50th belongs to `other`.
fn add_runs(connection: &mut Connection, start_second: i64, count: i64) {
    let transaction = connection.transaction().expect("transaction");
    {
        let mut insert = transaction
            .prepare(
                "INSERT INTO runs (id, recipe, recipe_version, trigger, status, received_at, payload, headers, query)
                 VALUES (?1, ?2, 'v1', 'webhook', ?3, ?4, '{}', '{}', '{}')",
            )
            .expect("insert");
        for index in 0..count {
            let second = start_second + index;
            let millis = second * 1000;
            let id = format!("{:08x}-{:04x}-7000-8000-{:012x}", millis >> 16, millis & 0xffff, second);
            let received_at = chrono::DateTime::from_timestamp(second, 0)
                .expect("time")
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string();
            let status = match index {
                index if index % 100 == 3 => "failed",
                index if index % 200 == 11 => "skipped",
                _ => "succeeded",
            };
            let recipe = if index % 50 == 3 { "other" } else { "hook" };
            insert
                .execute(rusqlite::params![id, recipe, status, received_at])
                .expect("insert run");
        }
    }
    transaction.commit().expect("commit");
}

/// The VM steps of one page of a listing.
fn steps_for_a_page(connection: &Connection, filter: &RunFilter) -> i32 {
    let (sql, binds) = runs_page_sql(filter);
    let mut statement = connection.prepare(&sql).expect("prepare");
    let mut values: Vec<&dyn rusqlite::ToSql> = binds.iter().map(|bind| bind as &dyn rusqlite::ToSql).collect();
    values.push(&filter.limit);
    let rows = statement
        .query_map(values.as_slice(), |row| row.get::<_, String>(0))
        .expect("query")
        .count();
    assert!(rows > 0, "{filter:?} found no run");
    statement.get_status(rusqlite::StatementStatus::VmStep)
}

/// A page costs the same at 10 000 runs as at 200 000: each listing reads its
/// page, not the table.
#[tokio::test]
async fn a_page_costs_the_same_at_ten_thousand_and_at_two_hundred_thousand_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ferry.db");
    let store = Store::open(&format!("sqlite://{}", path.display()), Default::default())
        .await
        .expect("store");
    let mut connection = Connection::open(&path).expect("open");
    let start = 1_764_547_200; // 2025-12-01T00:00:00Z
    let since = |second: i64| {
        chrono::DateTime::from_timestamp(second, 0)
            .expect("time")
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    };
    // Pages of the newest runs, and of a day long ago.
    let filters = |newest: i64| {
        let page = |recipe: Option<&str>, status: Option<RunStatus>| RunFilter {
            recipe: recipe.map(str::to_owned),
            status,
            since: None,
            until: None,
            before: None,
            limit: 50,
        };
        vec![
            page(None, None),
            page(Some("hook"), None),
            page(Some("other"), None),
            page(None, Some(RunStatus::Failed)),
            page(Some("other"), Some(RunStatus::Failed)),
            page(None, Some(RunStatus::Skipped)),
            page(Some("hook"), Some(RunStatus::Succeeded)),
            RunFilter {
                since: Some(since(start + 2_000)),
                until: Some(since(start + 5_000)),
                ..page(None, None)
            },
            RunFilter {
                before: Some(format!("{:08x}", ((newest - 100) * 1000) >> 16)),
                ..page(Some("other"), None)
            },
        ]
    };
    add_runs(&mut connection, start, 10_000);
    let small: Vec<i32> = filters(start + 10_000)
        .iter()
        .map(|filter| steps_for_a_page(&connection, filter))
        .collect();
    add_runs(&mut connection, start + 10_000, 190_000);
    let large: Vec<i32> = filters(start + 200_000)
        .iter()
        .map(|filter| steps_for_a_page(&connection, filter))
        .collect();
    for ((filter, small), large) in filters(start + 200_000).iter().zip(&small).zip(&large) {
        assert!(
            f64::from(*large) <= 2.0 * f64::from(*small).max(100.0),
            "{filter:?}: {small} VM steps at 10 000 runs, {large} at 200 000"
        );
    }
    println!("VM steps per page at 10 000 runs {small:?}, at 200 000 {large:?}");
    store.close().await;
}

/// The other reads of the API and the status page, with their parameters.
fn other_reads() -> Vec<(&'static str, &'static str, Vec<String>)> {
    vec![
        ("run counts", RUN_COUNTS_SQL, vec!["other".to_owned()]),
        ("queue figures", QUEUE_STATS_SQL, Vec::new()),
        (
            "newest runs",
            LAST_RUNS_SQL,
            vec![r#"["hook","other","none"]"#.to_owned()],
        ),
    ]
}

fn plan_of(connection: &Connection, sql: &str, binds: &[String]) -> Vec<String> {
    let mut statement = connection
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .expect("the statement prepares");
    let values: Vec<&dyn rusqlite::ToSql> = binds.iter().map(|bind| bind as &dyn rusqlite::ToSql).collect();
    statement
        .query_map(values.as_slice(), |row| row.get::<_, String>(3))
        .expect("plan")
        .collect::<Result<_, _>>()
        .expect("plan rows")
}

fn steps_for(connection: &Connection, sql: &str, binds: &[String]) -> i32 {
    let mut statement = connection.prepare(sql).expect("prepare");
    let values: Vec<&dyn rusqlite::ToSql> = binds.iter().map(|bind| bind as &dyn rusqlite::ToSql).collect();
    let rows = statement
        .query_map(values.as_slice(), |_| Ok(()))
        .expect("query")
        .count();
    assert!(rows > 0, "{sql} found nothing");
    statement.get_status(rusqlite::StatementStatus::VmStep)
}

#[tokio::test]
async fn counts_queue_figures_and_newest_runs_cost_the_same_at_any_size() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ferry.db");
    let store = Store::open(&format!("sqlite://{}", path.display()), Default::default())
        .await
        .expect("store");
    let mut connection = Connection::open(&path).expect("open");
    for (what, sql, binds) in other_reads() {
        for line in plan_of(&connection, sql, &binds) {
            // `run_counts` holds a row per recipe and status, not per run.
            let scans_a_table = line.starts_with("SCAN runs") || line.starts_with("SCAN steps");
            assert!(!scans_a_table, "{what}: {line}\n{sql}");
        }
    }
    let start = 1_764_547_200;
    add_runs(&mut connection, start, 10_000);
    let small: Vec<i32> = other_reads()
        .iter()
        .map(|(_, sql, binds)| steps_for(&connection, sql, binds))
        .collect();
    add_runs(&mut connection, start + 10_000, 190_000);
    let large: Vec<i32> = other_reads()
        .iter()
        .map(|(_, sql, binds)| steps_for(&connection, sql, binds))
        .collect();
    for (((what, ..), small), large) in other_reads().iter().zip(&small).zip(&large) {
        assert!(
            f64::from(*large) <= 2.0 * f64::from(*small).max(100.0),
            "{what}: {small} VM steps at 10 000 runs, {large} at 200 000"
        );
    }
    println!("VM steps at 10 000 runs {small:?}, at 200 000 {large:?}");
    store.close().await;
}

/// The kept counts are those of the table, through inserts, status changes and
/// deletes.
#[tokio::test]
async fn the_kept_counts_follow_every_change_of_the_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ferry.db");
    let store = Store::open(&format!("sqlite://{}", path.display()), Default::default())
        .await
        .expect("store");
    let mut connection = Connection::open(&path).expect("open");
    let differences = |connection: &Connection| -> Vec<(String, String, i64, i64)> {
        let mut statement = connection
            .prepare(
                "SELECT recipe, status, counted, kept FROM (
                     SELECT recipe, status, COUNT(*) AS counted,
                            (SELECT runs FROM run_counts k WHERE k.recipe = r.recipe AND k.status = r.status) AS kept
                     FROM runs r GROUP BY recipe, status)
                 WHERE kept IS NOT counted
                 UNION ALL
                 SELECT recipe, status, 0, runs FROM run_counts k
                 WHERE runs <> 0 AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.recipe = k.recipe AND r.status = k.status)",
            )
            .expect("prepare");
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    add_runs(&mut connection, 1_764_547_200, 1_000);
    assert_eq!(differences(&connection), Vec::new());
    connection
        .execute(
            "UPDATE runs SET status = 'retrying' WHERE status = 'failed' AND recipe = 'other'",
            [],
        )
        .expect("update");
    connection
        .execute("UPDATE runs SET error = 'x' WHERE status = 'skipped'", [])
        .expect("an update that leaves the status");
    connection
        .execute("DELETE FROM runs WHERE rowid % 7 = 0", [])
        .expect("delete");
    assert_eq!(differences(&connection), Vec::new());
    let (status, counted): (String, i64) = connection
        .query_row(
            "SELECT status, runs FROM run_counts WHERE recipe = 'other' AND status = 'retrying'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("retrying counted");
    assert!(counted > 0, "{status} {counted}");
    store.close().await;
}
