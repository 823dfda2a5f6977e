//! The store's writer commits the writes of concurrent callers together; these
//! tests check what callers see: every write answered, duplicates found within
//! one batch, and a failing write failing alone.

use chrono::Utc;
use ferry::store::{
    AttemptWrite, Durability, Enqueued, FinalStatus, RunChange, RunStatus, RunWrite, Start, StepStatus, StepWrite,
    Store,
};
use ferry::trigger::Event;
use serde_json::{Map, json};

fn event(recipe: &str, dedup_key: Option<&str>) -> Event {
    Event {
        run_id: uuid::Uuid::now_v7().to_string(),
        recipe: recipe.to_owned(),
        recipe_version: "v1".to_owned(),
        trigger: "webhook",
        payload: json!({"n": 1}),
        payload_text: None,
        headers: Map::new(),
        query: Map::new(),
        received_at: Utc::now(),
        dedup_key: dedup_key.map(str::to_owned),
        replay_of: None,
    }
}

/// Sends every event at once, each from its own task, so that they queue up
/// for the writer together.
async fn enqueue_all(store: &Store, events: &[Event]) -> Vec<Result<Enqueued, ferry::store::Error>> {
    let tasks: Vec<_> = events
        .iter()
        .map(|event| {
            let (store, event) = (store.clone(), event.clone());
            tokio::spawn(async move { store.enqueue(&event, Start::Queued).await })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await.expect("enqueue task"));
    }
    outcomes
}

async fn open(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}", dir.path().join("ferry.db").display());
    Store::open(&url, Durability::ProcessCrash).await.expect("store opens")
}

#[tokio::test]
async fn concurrent_writes_are_all_committed_and_a_bad_one_fails_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;

    // A write about a run that does not exist breaks a foreign key; it is sent
    // among many good ones so that it shares their batches.
    let mut bad = RunWrite::new("no-such-run");
    bad.steps.push(StepWrite {
        key: ferry::store::StepKey::step(0),
        step_id: "call".to_owned(),
        kind: ferry::step::KindName::Http,
        status: StepStatus::Running,
        request: Some(json!({"url": "http://127.0.0.1:9/"})),
        result: None,
        on_failure: false,
    });
    let events: Vec<Event> = (0..200).map(|_| event("relay", None)).collect();
    let bad_store = store.clone();
    let bad_task = tokio::spawn(async move { bad_store.record(bad).await });
    let outcomes = enqueue_all(&store, &events).await;
    let bad_outcome = bad_task.await.expect("record task");

    assert!(bad_outcome.is_err(), "a write breaking a foreign key must fail");
    for (event, outcome) in events.iter().zip(outcomes) {
        assert_eq!(
            outcome.expect("a good write succeeds beside a bad one"),
            Enqueued::New(event.run_id.clone())
        );
        let run = store
            .run(&event.run_id)
            .await
            .expect("read")
            .expect("the run is stored");
        assert_eq!(run.summary.status, RunStatus::Queued);
    }
    store.close().await;
}

#[tokio::test]
async fn duplicates_within_one_batch_and_across_reopen_find_the_first_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    let deliveries: Vec<Event> = (0..50).map(|_| event("hook", Some("delivery-1"))).collect();
    let outcomes: Vec<Enqueued> = enqueue_all(&store, &deliveries)
        .await
        .into_iter()
        .map(|outcome| outcome.expect("stored"))
        .collect();

    let new: Vec<&String> = outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            Enqueued::New(id) => Some(id),
            Enqueued::Duplicate(_) => None,
        })
        .collect();
    assert_eq!(new.len(), 1, "exactly one delivery makes a run: {outcomes:?}");
    let first = new[0].clone();
    for outcome in &outcomes {
        if let Enqueued::Duplicate(id) = outcome {
            assert_eq!(id, &first);
        }
    }
    // The same key for another recipe is another delivery.
    assert!(matches!(
        store
            .enqueue(&event("other", Some("delivery-1")), Start::Queued)
            .await
            .expect("stored"),
        Enqueued::New(_)
    ));
    store.close().await;

    let store = open(&dir).await;
    assert_eq!(
        store
            .enqueue(&event("hook", Some("delivery-1")), Start::Queued)
            .await
            .expect("stored"),
        Enqueued::Duplicate(first)
    );
    store.close().await;
}

#[tokio::test]
async fn a_claimed_run_resumes_with_what_its_writes_recorded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    let stored = event("relay", None);
    store.enqueue(&stored, Start::Queued).await.expect("stored");

    let claimed = store.claim(vec![stored.run_id.clone()], whole).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    assert!(claimed[0].steps.is_empty(), "a fresh run has no steps");
    assert!(
        store
            .claim(vec![stored.run_id.clone()], whole)
            .await
            .expect("claim")
            .is_empty(),
        "a running run cannot be claimed twice"
    );

    // The first step succeeds, the second waits for a retry: one write.
    let mut write = RunWrite::new(&stored.run_id);
    write.steps.push(StepWrite {
        key: ferry::store::StepKey::step(0),
        step_id: "first".to_owned(),
        kind: ferry::step::KindName::Http,
        status: StepStatus::Succeeded,
        request: None,
        result: Some(json!({"status": 200})),
        on_failure: false,
    });
    write.steps.push(StepWrite {
        key: ferry::store::StepKey::step(1),
        step_id: "second".to_owned(),
        kind: ferry::step::KindName::Http,
        status: StepStatus::Retrying,
        request: Some(json!({"method": "POST"})),
        result: None,
        on_failure: false,
    });
    write.attempts.push((
        ferry::store::StepKey::step(1),
        AttemptWrite {
            n: 1,
            started_at: ferry::store::timestamp(Utc::now()),
            duration_ms: 3,
            request: json!({"method": "POST"}).to_string(),
            response: Some(json!({"status": 503}).to_string()),
            error: Some("HTTP 503".to_owned()),
        },
    ));
    write.change = Some(RunChange::RetryAt(Utc::now() - chrono::Duration::seconds(1)));
    store.record(write).await.expect("recorded");

    let due = store.due(Utc::now(), 10).await.expect("due");
    assert_eq!(due, vec![(stored.run_id.clone(), "relay".to_owned())]);
    let resumed = store.claim(vec![stored.run_id.clone()], whole).await.expect("claim");
    let steps = &resumed[0].steps;
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].status, StepStatus::Succeeded);
    assert_eq!(steps[0].result, Some(json!({"status": 200})));
    assert_eq!(steps[1].status, StepStatus::Retrying);
    assert_eq!(steps[1].request, Some(json!({"method": "POST"})));
    assert_eq!(steps[1].attempts, 1);

    let mut end = RunWrite::new(&stored.run_id);
    end.change = Some(RunChange::End(FinalStatus::Failed, Some("gave up".to_owned())));
    store.record(end).await.expect("recorded");
    let run = store.run(&stored.run_id).await.expect("read").expect("run");
    assert_eq!(run.summary.status, RunStatus::Failed);
    assert_eq!(run.summary.error.as_deref(), Some("gave up"));
    assert!(run.summary.finished_at.is_some());
    assert!(store.due(Utc::now(), 10).await.expect("due").is_empty());
    store.close().await;
}

/// The WAL header's checkpoint sequence number (bytes 12–15, big-endian): SQLite
/// adds one each time the WAL starts over from its beginning.
fn wal_restarts(dir: &tempfile::TempDir) -> Option<u32> {
    let header = std::fs::read(dir.path().join("ferry.db-wal")).ok()?;
    Some(u32::from_be_bytes(header.get(12..16)?.try_into().ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_steady_load_the_wal_starts_over_instead_of_growing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir).await;
    store
        .enqueue(&event("relay", None), Start::Queued)
        .await
        .expect("first write");
    let first = wal_restarts(&dir).expect("the WAL exists after a write");

    // Writers that never pause: a background checkpoint alone never catches up
    // with them, so only the writer's own catch-up lets the WAL start over.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let mut written = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && written < 50_000 {
                    store
                        .enqueue(&event("relay", None), Start::Queued)
                        .await
                        .expect("write");
                    written += 1;
                }
                written
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut restarted = false;
    while std::time::Instant::now() < deadline {
        if wal_restarts(&dir).is_some_and(|now| now != first) {
            restarted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut written = 1;
    for writer in writers {
        written += writer.await.expect("writer task");
    }
    assert!(restarted, "the WAL never started over during {written} writes");
    let stored = store
        .run_counts("relay")
        .await
        .expect("counts")
        .iter()
        .map(|(_, count)| count)
        .sum::<u64>();
    assert_eq!(stored, written, "every write is stored across the WAL's restarts");
}

/// A claimed run's payload, parsed whole.
fn whole(_recipe: &str, text: &str) -> serde_json::Result<serde_json::Value> {
    serde_json::from_str(text)
}
