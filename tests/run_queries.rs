//! Run listings read their page, not the table: the query plan of every
//! listing filter searches an index, walks a partial index that holds only the
//! runs of its status, or — for the unfiltered and `succeeded` listings, which a
//! page fills at once — walks the primary key newest first. Never a sort.

use ferry::store::{RunFilter, RunStatus, Store, runs_page_sql};
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
