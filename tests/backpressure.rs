//! Back-pressure: when the store falls behind, webhooks beyond the limit of those
//! waiting to be stored get 503 with Retry-After; none waits in memory unbounded,
//! and the ones that waited are stored and acknowledged once the store is back.

use crate::support;

use std::str::FromStr;

use serde_json::json;
use sqlx::Connection;
use sqlx::sqlite::SqliteConnectOptions;
use support::{Setup, TestDaemon, poll_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_beyond_the_pending_limit_get_503_while_the_store_is_stuck() {
    let ferry = TestDaemon::start_with(
        &[("ok.yaml", "trigger: {webhook: {}}\nsteps: [{log: fine}]\n")],
        Setup {
            max_pending_webhooks: Some(1),
            ..Setup::default()
        },
    )
    .await;

    // Another connection takes SQLite's write lock: the daemon's next insert waits.
    let database = ferry.dir.path().join("ferry.db");
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", database.display())).expect("options");
    let mut blocker = sqlx::SqliteConnection::connect_with(&options).await.expect("connect");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .expect("take the write lock");

    // Three webhooks at once: one holds the single place and waits for the store,
    // the other two are refused at once.
    let answers = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut senders = Vec::new();
    for n in 0..3 {
        let (http, url, answers) = (ferry.http.clone(), format!("{}/hooks/ok", ferry.base), answers.clone());
        senders.push(tokio::spawn(async move {
            let response = http.post(url).json(&json!({"n": n})).send().await.expect("webhook");
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let body: serde_json::Value = response.json().await.expect("JSON");
            answers.lock().expect("lock").push((status, retry_after, body));
        }));
    }
    poll_until("two webhooks refused", || async {
        (answers.lock().expect("lock").len() == 2).then_some(())
    })
    .await;
    for (status, retry_after, problem) in answers.lock().expect("lock").iter() {
        assert_eq!(*status, 503, "{problem}");
        assert_eq!(retry_after.as_deref(), Some("5"));
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("too many webhooks"),
            "{problem}"
        );
    }

    sqlx::query("ROLLBACK")
        .execute(&mut blocker)
        .await
        .expect("release the write lock");
    for sender in senders {
        sender.await.expect("sender");
    }
    let answers = answers.lock().expect("lock").clone();
    let (status, _, accepted) = &answers[2];
    assert_eq!(
        *status, 202,
        "the waiting webhook is stored once the store is back: {accepted}"
    );
    ferry.wait_for_end(accepted["run_id"].as_str().expect("run_id")).await;
    let (status, _) = ferry.post_hook("ok", &json!({"n": 3})).await;
    assert_eq!(
        status.as_u16(),
        202,
        "once the store keeps up, webhooks are taken again"
    );
}
