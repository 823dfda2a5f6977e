//! The example recipes shipped in `recipes/` work on a fresh clone, with no
//! network beyond the machine: `hello` posts to `greeted` through `{{ferry.url}}`.

use crate::support;

use std::path::PathBuf;

use axum::http::StatusCode;
use serde_json::json;
use support::{Setup, TestDaemon, poll_until};

#[tokio::test]
async fn hello_posts_to_greeted_and_both_runs_succeed() {
    let ferry = examples_daemon(&[]).await;
    assert!(
        !ferry.daemon.recipes().has_problems(),
        "{:?}",
        ferry.daemon.recipes().problems().collect::<Vec<_>>()
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

/// The example recipes as shipped. The weather poll's source is a closed
/// loopback port unless a test gives one: tests never reach api.weather.gov.
async fn examples_daemon(environment: &[(&str, &str)]) -> TestDaemon {
    let recipes = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("recipes");
    let mut environment = environment.to_vec();
    if !environment.iter().any(|(name, _)| *name == "NWS_ALERTS_URL") {
        environment.push(("NWS_ALERTS_URL", "http://127.0.0.1:9/alerts/active"));
    }
    TestDaemon::start_in(
        tempfile::tempdir().expect("temp dir"),
        recipes,
        Setup {
            environment: &environment,
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

    assert_eq!(
        run["steps"][0]["attempts"][0]["request"]["case"],
        "checkout.session.completed"
    );
    let contact = &run["steps"][1]["attempts"][0];
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

    let note = &run["steps"][2]["attempts"][0];
    assert_eq!(
        run["steps"][3]["status"], "skipped",
        "the failed-payment branch: {run:#}"
    );
    assert_eq!(
        note["request"]["body"],
        json!({"contact_id": contact_id, "text": "Paid 4200 EUR (checkout cs_test_a1b2c3)", "amount_cents": 4200})
    );
    let sink_run = ferry.wait_for_end(contact_id).await;
    assert_eq!(sink_run["recipe"], "demo-sink");
    assert_eq!(sink_run["query"], json!({"service": "crm", "resource": "contacts"}));
}

#[tokio::test]
async fn weather_alerts_posts_each_new_alert_once() {
    let mut feed = fixture("nws_alerts_active.json");
    let source = support::source::Source::start(&feed).await;
    let chat = support::Sink::start(200, json!({"ok": true})).await;
    let chat_url = format!("{}/chat-hook", chat.url);
    let feed_url = format!("{}/alerts/active?area=CO", source.url);
    // The shipped recipe, polling every second instead of every five minutes.
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("recipes/weather-alerts.yaml");
    let recipe = std::fs::read_to_string(shipped).expect("the example");
    assert!(recipe.contains("every: 5m"));
    let recipe = recipe.replace("every: 5m", "every: 1s");
    let ferry = TestDaemon::start_with(
        &[("weather-alerts.yaml", &recipe)],
        Setup {
            environment: &[("NWS_ALERTS_URL", &feed_url), ("CHAT_WEBHOOK_URL", &chat_url)],
            ..Setup::default()
        },
    )
    .await;
    let polled = |count: usize| {
        let source = &source;
        async move {
            poll_until(&format!("{count} polls"), || async {
                (source.polls() >= count).then_some(())
            })
            .await;
        }
    };
    polled(2).await;
    assert!(
        chat.received().is_empty(),
        "the alerts active at the first poll are only remembered"
    );
    assert_eq!(
        source.requests()[0],
        "/alerts/active?area=CO",
        "the feed URL as configured"
    );

    // A new alert appears at the top of the feed.
    let mut flood = feed["features"][0].clone();
    flood["id"] = json!("https://api.weather.gov/alerts/urn:oid:2.49.0.1.840.0.flood.003.1");
    flood["properties"]["id"] = json!("urn:oid:2.49.0.1.840.0.flood.003.1");
    flood["properties"]["event"] = json!("Flood Advisory");
    flood["properties"]["severity"] = json!("Minor");
    flood["properties"]["headline"] = json!("Flood Advisory issued November 27 by NWS Boulder CO");
    feed["features"].as_array_mut().expect("features").insert(0, flood);
    source.answer_json(&feed);
    poll_until("the new alert in the chat", || async {
        (!chat.received().is_empty()).then_some(())
    })
    .await;
    let count = source.polls();
    polled(count + 2).await;
    let received = chat.received();
    assert_eq!(received.len(), 1, "only the new alert, once");
    assert_eq!(
        received[0].json(),
        json!({
            "text": "Flood Advisory: Flood Advisory issued November 27 by NWS Boulder CO",
            "severity": "Minor",
            "area": feed["features"][0]["properties"]["areaDesc"],
            "expires": feed["features"][0]["properties"]["expires"],
            "link": "https://api.weather.gov/alerts/urn:oid:2.49.0.1.840.0.flood.003.1",
        })
    );
    let (_, recipe) = ferry.get_json("/api/v1/recipes/weather-alerts").await;
    assert_eq!(recipe["last_poll"]["status"], "ok", "{recipe:#}");
    assert_eq!(recipe["last_poll"]["items"], 3);
}

#[tokio::test]
async fn weekday_digest_reads_the_failed_runs_and_posts_them() {
    let chat = support::Sink::start(200, json!({"ok": true})).await;
    let chat_url = format!("{}/chat-hook", chat.url);
    let crm = support::Sink::start(500, json!({"error": "down"})).await;
    let ferry = examples_daemon(&[("CHAT_WEBHOOK_URL", &chat_url), ("CRM_API_URL", &crm.url)]).await;

    let (_, recipe) = ferry.get_json("/api/v1/recipes/weekday-digest").await;
    let next = recipe["next_fires"][0].as_str().expect("a next fire").to_owned();
    assert!(next.contains("T08:30:00-0"), "08:30 in New York: {next}");

    // Something to report: a checkout whose CRM is down fails.
    let mut event = fixture("stripe_event_setup_intent_created.json");
    event["type"] = json!("checkout.session.completed");
    let (_, answer) = ferry.post_hook("stripe", &event).await;
    let failed = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(failed["status"], "failed", "{failed:#}");

    // `tell-ops` hears of it, and (OPS_CHAT_URL unset) tells the demo sink.
    let told = poll_until("tell-ops to run", || async {
        let (_, listing) = ferry.get_json("/api/v1/runs?recipe=tell-ops").await;
        let id = listing["runs"][0]["id"].as_str()?.to_owned();
        Some(ferry.wait_for_end(&id).await)
    })
    .await;
    assert_eq!(told["status"], "succeeded", "{told:#}");
    assert_eq!(told["payload"]["run"]["id"], failed["id"]);
    let request = &told["steps"][0]["attempts"][0]["request"];
    assert!(
        request["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/hooks/demo-sink?service=ops-chat"),
        "{request:#}"
    );
    let text = request["body"]["text"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("stripe-checkout-to-crm failed at `contact`: step `contact`"),
        "{text}"
    );
    assert_eq!(request["body"]["input"]["type"], "checkout.session.completed");

    // The morning's run, started by hand with the payload a schedule gives.
    let response = ferry
        .http
        .post(format!("{}/api/v1/recipes/weekday-digest/runs", ferry.base))
        .json(&json!({"scheduled_at": "2026-11-27T08:30:00-05:00"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 202);
    let answer: serde_json::Value = response.json().await.expect("JSON");
    let run = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let received = chat.received();
    assert_eq!(received.len(), 1);
    let digest = received[0].json();
    assert_eq!(digest["text"], "Good morning. Latest failed runs: 1");
    assert_eq!(digest["scheduled_at"], "2026-11-27T08:30:00-05:00");
    let listed = digest["failed"].as_str().unwrap_or_default();
    assert!(
        listed.starts_with("stripe-checkout-to-crm (step `contact`: HTTP 500"),
        "{digest:#}"
    );
}

#[tokio::test]
async fn a_slack_slash_command_is_answered_with_the_weather() {
    let weather = support::source::Source::start(&json!({})).await;
    weather.answer(200, "Denver: ☀️ +5°C\n");
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let ferry = examples_daemon(&[("SLACK_SIGNING_SECRET", secret), ("WEATHER_API_URL", &weather.url)]).await;
    let send = |body: &'static str, headers: Vec<(&'static str, String)>| {
        let request = ferry
            .http
            .post(format!("{}/hooks/slack-weather", ferry.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        async move {
            let response = headers
                .into_iter()
                .fold(request, |request, (name, value)| request.header(name, value))
                .send()
                .await
                .expect("POST");
            (response.status(), response.text().await.expect("answer"))
        }
    };
    // What Slack posts for `/weather Denver`.
    let body = "token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&channel_name=general&user_name=ada\
                &command=%2Fweather&text=Denver&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1234%2F5678";

    let (status, answer) = send(body, support::sign::slack_headers(secret, body).to_vec()).await;
    assert_eq!((status, answer.as_str()), (StatusCode::OK, "Denver: ☀️ +5°C\n"));
    assert_eq!(weather.requests(), ["/Denver?format=3"]);

    let (status, _) = send(body, support::sign::slack_headers("not-the-secret", body).to_vec()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(weather.requests().len(), 1, "an unsigned command calls nothing");
}
