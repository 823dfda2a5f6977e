//! The item keys a poll remembers, straight against the store: bounded (at least
//! the newest 10 000, and all of the last 30 days), a key seen again is kept, and
//! a tick for a time already done does nothing.

use chrono::{DateTime, Duration, Utc};
use ferry::store::{Durability, FirstPollRule, Store, Tick, TickOutcome, TickWork};
use ferry::trigger::Event;
use serde_json::{Map, json};

fn item(key: &str, at: DateTime<Utc>) -> (String, Event) {
    let event = Event {
        run_id: uuid::Uuid::now_v7().to_string(),
        recipe: "feed".to_owned(),
        recipe_version: "v1".to_owned(),
        trigger: "poll",
        payload: json!({"id": key}),
        payload_text: None,
        headers: Map::new(),
        query: Map::new(),
        received_at: at,
        dedup_key: None,
        replay_of: None,
    };
    (key.to_owned(), event)
}

async fn poll(store: &Store, at: DateTime<Utc>, keys: &[String]) -> TickOutcome {
    store
        .tick(Tick {
            recipe: "feed".to_owned(),
            scheduled_at: at,
            fired_at: at,
            work: TickWork::Polled {
                items: keys.iter().map(|key| item(key, at)).collect(),
                first: FirstPollRule::Remember,
            },
        })
        .await
        .expect("tick stored")
}

fn keys(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("{prefix}{n}")).collect()
}

fn started(outcome: TickOutcome) -> usize {
    match outcome {
        TickOutcome::Done { runs } => runs.len(),
        TickOutcome::AlreadyDone => panic!("the tick was not done"),
    }
}

#[tokio::test]
async fn old_keys_beyond_the_newest_ten_thousand_are_forgotten_and_nothing_else() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(
        &format!("sqlite://{}", dir.path().join("ferry.db").display()),
        Durability::default(),
    )
    .await
    .expect("store");
    let now = Utc::now();
    let (days_45, days_40, yesterday) = (
        now - Duration::days(45),
        now - Duration::days(40),
        now - Duration::days(1),
    );

    // The first poll only remembers: 100 keys, 45 days ago.
    assert_eq!(started(poll(&store, days_45, &keys("a", 100)).await), 0);
    // 10 000 new keys 40 days ago; the first 100 leave the feed.
    assert_eq!(started(poll(&store, days_40, &keys("b", 10_000)).await), 10_000);
    // A tick for a time already done does nothing, however late it comes.
    let late = store
        .tick(Tick {
            recipe: "feed".to_owned(),
            scheduled_at: days_40,
            fired_at: now,
            work: TickWork::Polled {
                items: vec![item("z", now)],
                first: FirstPollRule::Remember,
            },
        })
        .await
        .expect("tick");
    assert_eq!(late, TickOutcome::AlreadyDone);

    // One new key a day ago: the `a` keys are over 30 days old and beyond the
    // newest 10 000, so they are forgotten; b0 is seen again and stays.
    let mut latest = keys("c", 1);
    latest.push("b0".to_owned());
    assert_eq!(started(poll(&store, yesterday, &latest).await), 1);

    // A forgotten key is new again; the kept ones are not.
    let again = vec!["a0".to_owned(), "b0".to_owned(), "b9999".to_owned(), "c0".to_owned()];
    let outcome = poll(&store, now, &again).await;
    assert_eq!(started(outcome), 1, "only a0, forgotten, runs again");

    let state = store.trigger_state("feed").await.expect("state");
    let last = state.last_poll.expect("a last poll");
    assert_eq!((last.status, last.items, last.new_items), ("ok", Some(4), Some(1)));
    store.close().await;
}
