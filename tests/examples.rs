//! The example recipes shipped in `recipes/` work on a fresh clone, with no
//! network beyond the machine: `hello` posts to `greeted` through `{{ferry.url}}`.

mod support;

use std::path::PathBuf;

use axum::http::StatusCode;
use serde_json::json;
use support::{Setup, TestDaemon, poll_until};

#[tokio::test]
async fn hello_posts_to_greeted_and_both_runs_succeed() {
    let recipes = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("recipes");
    let ferry = TestDaemon::start_in(tempfile::tempdir().expect("temp dir"), recipes, Setup::default()).await;
    assert!(
        ferry.daemon.recipes().problems().is_empty(),
        "{:?}",
        ferry.daemon.recipes().problems()
    );

    let (status, answer) = ferry.post_hook("hello", &json!({"name": "Ada"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let hello = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(hello["status"], "succeeded", "{hello:#}");
    assert_eq!(
        hello["steps"][0]["attempts"][0]["request"]["body"]["greeting"],
        "Hello, Ada!"
    );

    let greeted_id = hello["steps"][0]["attempts"][0]["response"]["body"]["run_id"]
        .as_str()
        .expect("greeted answered with its run id")
        .to_owned();
    let greeted = ferry.wait_for_end(&greeted_id).await;
    assert_eq!(greeted["recipe"], "greeted");
    assert_eq!(greeted["status"], "succeeded", "{greeted:#}");
    let line = greeted["steps"][0]["attempts"][0]["request"]["log"]
        .as_str()
        .expect("log line");
    assert_eq!(
        line,
        format!("Hello, Ada! (from run {})", hello["id"].as_str().expect("id"))
    );

    let runs = poll_until("two runs listed", || async {
        let (_, listing) = ferry.get_json("/api/v1/runs").await;
        let runs = listing["runs"].as_array().cloned().unwrap_or_default();
        (runs.len() == 2).then_some(runs)
    })
    .await;
    assert_eq!(runs[0]["recipe"], "greeted", "newest first");
    assert_eq!(runs[1]["recipe"], "hello");
}

fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture JSON")
}

async fn examples_daemon(environment: &[(&str, &str)]) -> TestDaemon {
    let recipes = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("recipes");
    TestDaemon::start_in(
        tempfile::tempdir().expect("temp dir"),
        recipes,
        Setup {
            environment,
            ..Setup::default()
        },
    )
    .await
}

#[tokio::test]
async fn a_real_github_push_reaches_the_chat_as_valid_typed_json() {
    let chat = support::Sink::start(200, json!({"ok": true})).await;
    let chat_url = format!("{}/chat-hook", chat.url);
    let ferry = examples_daemon(&[("CHAT_WEBHOOK_URL", &chat_url)]).await;

    let mut push = fixture("github_push_branch_payload.json");
    let message = "Fix \"quoted\" {{braces}}\nsecond line — ünïcödé ✓ \\ backslash";
    push["head_commit"]["message"] = json!(message);
    let (status, answer) = ferry.post_hook("github", &push).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let run = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");

    let expected = json!({
        "text": format!("Codertocat pushed 1 commit(s) to Codertocat/Hello-World: {message}"),
        "commits": 1,
        "branch": "master",
        "compare": push["compare"],
        "forced": false,
    });
    let received = chat.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path_and_query, "/chat-hook");
    assert_eq!(
        received[0].json(),
        expected,
        "the chat got the rendered JSON, typed and valid"
    );
    let attempt = &run["steps"][0]["attempts"][0];
    assert_eq!(attempt["request"]["body"], expected);
    assert_eq!(attempt["response"]["status"], 200);

    // A push to another branch is skipped: no request.
    push["ref"] = json!("refs/heads/feature");
    let (_, answer) = ferry.post_hook("github", &push).await;
    let run = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(run["status"], "skipped");
    assert_eq!(chat.received().len(), 1);
}

#[tokio::test]
async fn a_stripe_checkout_creates_a_contact_then_notes_the_order_on_it() {
    let ferry = examples_daemon(&[]).await;
    // A checkout.session.completed event derived from Stripe's Event envelope.
    let mut event = fixture("stripe_event_setup_intent_created.json");
    event["type"] = json!("checkout.session.completed");
    event["data"]["object"] = json!({
        "id": "cs_test_a1b2c3",
        "object": "checkout.session",
        "amount_total": 4200,
        "currency": "eur",
        "customer": "cus_NffrFeUfNV2Hib",
        "customer_details": {"email": "ada@example.com", "name": "Ada Lovelace"},
    });
    let (status, answer) = ferry.post_hook("stripe", &event).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let run = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");

    let contact = &run["steps"][0]["attempts"][0];
    assert_eq!(
        contact["request"]["body"],
        json!({"email": "ada@example.com", "name": "Ada Lovelace", "source": "stripe", "stripe_customer": "cus_NffrFeUfNV2Hib"})
    );
    assert!(
        contact["request"]["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/hooks/demo-sink?service=crm&resource=contacts")
    );
    assert_eq!(contact["request"]["headers"]["authorization"], "[redacted]");
    let contact_id = contact["response"]["body"]["run_id"]
        .as_str()
        .expect("the sink answered with an id");

    let note = &run["steps"][1]["attempts"][0];
    assert_eq!(
        note["request"]["body"],
        json!({"contact_id": contact_id, "text": "Paid 4200 EUR (checkout cs_test_a1b2c3)", "amount_cents": 4200})
    );
    let sink_run = ferry.wait_for_end(contact_id).await;
    assert_eq!(sink_run["recipe"], "demo-sink");
    assert_eq!(sink_run["query"], json!({"service": "crm", "resource": "contacts"}));
}
