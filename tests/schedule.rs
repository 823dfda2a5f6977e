//! Schedule triggers: an interval fires once per second without doubles across a
//! restart, the recipe document shows the coming fire times with the zone's
//! offset, and a manual run starts any recipe now.

use crate::support;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use chrono::{DateTime, FixedOffset};
use serde_json::{Value, json};
use support::{Setup, Sink, TestDaemon, poll_until};

/// The `scheduled_at` of every run the sink received, in arrival order.
fn scheduled_times(sink: &Sink) -> Vec<DateTime<FixedOffset>> {
    sink.received()
        .iter()
        .map(|request| {
            let text = request.json()["scheduled_at"].as_str().unwrap_or_default().to_owned();
            DateTime::parse_from_rfc3339(&text).unwrap_or_else(|error| panic!("`{text}`: {error}"))
        })
        .collect()
}

async fn wait_for_deliveries(sink: &Sink, count: usize) {
    poll_until(&format!("{count} scheduled runs delivered"), || async {
        (sink.received().len() >= count).then_some(())
    })
    .await;
}

#[tokio::test]
async fn every_second_fires_once_per_second_without_doubles_across_a_restart() {
    let sink = Sink::start(200, json!({"ok": true})).await;
    let recipe = format!(
        "trigger:\n  schedule: {{every: 1s, missed: once}}\nconcurrency: 4\nsteps:\n  - http: {{url: '{}/tick', json: {{scheduled_at: '{{{{payload.scheduled_at}}}}', fired_at: '{{{{payload.fired_at}}}}'}}}}\n",
        sink.url
    );
    let ferry = TestDaemon::start(&[("ticker.yaml", &recipe)]).await;
    wait_for_deliveries(&sink, 5).await;

    let TestDaemon { daemon, dir, .. } = ferry;
    daemon.shutdown().await.expect("clean shutdown");
    let before_restart = sink.received().len();
    let recipes = dir.path().join("recipes");
    let ferry = TestDaemon::start_in(dir, recipes, Setup::default()).await;
    wait_for_deliveries(&sink, before_restart + 5).await;
    let TestDaemon { daemon, .. } = ferry;
    daemon.shutdown().await.expect("clean shutdown");

    let times = scheduled_times(&sink);
    let distinct: BTreeSet<_> = times.iter().collect();
    assert_eq!(distinct.len(), times.len(), "a scheduled time fired twice: {times:?}");
    let sorted: Vec<_> = distinct.into_iter().collect();
    for time in &sorted {
        assert_eq!(time.timestamp_subsec_millis(), 0, "not on a whole second: {time}");
    }
    let span = (*sorted[sorted.len() - 1] - *sorted[0]).num_seconds();
    let fired = i64::try_from(sorted.len()).expect("a small count");
    // One run per second of the span; the restart may cost at most one.
    assert!(
        fired == span + 1 || fired == span,
        "{fired} runs over {span} s: {sorted:?}"
    );
}

#[tokio::test]
async fn the_recipe_document_shows_the_next_fires_in_the_zone_and_the_last_fire() {
    let sink = Sink::start(200, json!({"ok": true})).await;
    let digest = format!(
        "trigger:\n  schedule:\n    cron: '30 8 * * MON-FRI'\n    timezone: America/New_York\nsteps:\n  - http: {{url: '{}/digest', json: {{at: '{{{{payload.scheduled_at}}}}'}}}}\n",
        sink.url
    );
    let seconds = "trigger:\n  schedule: {cron: '* * * * * *'}\nsteps:\n  - log: 'tick {{payload.scheduled_at}}'\n";
    let ferry = TestDaemon::start(&[("digest.yaml", &digest), ("seconds.yaml", seconds)]).await;

    let (status, recipe) = ferry.get_json("/api/v1/recipes/digest").await;
    assert_eq!(status, StatusCode::OK, "{recipe}");
    assert_eq!(recipe["trigger"]["kind"], "schedule");
    assert_eq!(
        recipe["trigger"]["schedule"],
        "cron 30 8 * * MON-FRI (America/New_York)"
    );
    assert_eq!(recipe["last_fired_at"], Value::Null);
    let fires: Vec<DateTime<FixedOffset>> = recipe["next_fires"]
        .as_array()
        .expect("next_fires")
        .iter()
        .map(|time| DateTime::parse_from_rfc3339(time.as_str().expect("text")).expect("RFC 3339"))
        .collect();
    assert_eq!(fires.len(), 5);
    for fire in &fires {
        let local = fire.naive_local();
        assert_eq!(local.format("%H:%M:%S").to_string(), "08:30:00", "{fire}");
        let offset = fire.offset().local_minus_utc() / 3600;
        assert!(offset == -5 || offset == -4, "New York's offset, not {fire}");
        assert!(
            !matches!(local.format("%a").to_string().as_str(), "Sat" | "Sun"),
            "{fire}"
        );
    }
    assert!(fires.windows(2).all(|pair| pair[0] < pair[1]));

    // A six-field expression fires every second; its document shows the last fire.
    let recipe = poll_until("the seconds recipe to fire", || async {
        let (_, recipe) = ferry.get_json("/api/v1/recipes/seconds").await;
        recipe["last_fired_at"].is_string().then_some(recipe)
    })
    .await;
    assert_eq!(
        recipe["next_fires"][0].as_str().map(|time| time.ends_with("+00:00")),
        Some(true)
    );
    let (_, runs) = ferry.get_json("/api/v1/runs?recipe=seconds").await;
    let first = runs["runs"][0].clone();
    assert_eq!(first["trigger"], "schedule");
    let run = ferry.wait_for_end(first["id"].as_str().expect("id")).await;
    assert_eq!(run["status"], "succeeded");
    assert!(run["payload"]["scheduled_at"].is_string(), "{run:#}");
    assert!(run["payload"]["fired_at"].is_string(), "{run:#}");
}

#[tokio::test]
async fn a_manual_run_starts_any_recipe_now_with_the_body_as_payload() {
    let sink = Sink::start(200, json!({"ok": true})).await;
    let digest = format!(
        "trigger:\n  schedule: {{cron: '0 9 * * *'}}\nsteps:\n  - http: {{url: '{}/digest', json: {{who: '{{{{payload.who}}}}'}}}}\n",
        sink.url
    );
    let ferry = TestDaemon::start(&[("digest.yaml", &digest)]).await;
    let response = ferry
        .http
        .post(format!("{}/api/v1/recipes/digest/runs", ferry.base))
        .json(&json!({"who": "operator"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 202);
    let answer: Value = response.json().await.expect("JSON");
    let run = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["trigger"], "manual");
    assert_eq!(sink.received()[0].json(), json!({"who": "operator"}));

    let missing = ferry
        .http
        .post(format!("{}/api/v1/recipes/nope/runs", ferry.base))
        .json(&json!({}))
        .send()
        .await
        .expect("POST");
    assert_eq!(missing.status().as_u16(), 404);
    let not_json = ferry
        .http
        .post(format!("{}/api/v1/recipes/digest/runs", ferry.base))
        .body("{not json")
        .send()
        .await
        .expect("POST");
    assert_eq!(not_json.status().as_u16(), 400);
    let wrong_method = ferry
        .http
        .get(format!("{}/api/v1/recipes/digest/runs", ferry.base))
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong_method.status().as_u16(), 405);
    assert_eq!(
        wrong_method
            .headers()
            .get("allow")
            .and_then(|value| value.to_str().ok()),
        Some("POST")
    );
}
