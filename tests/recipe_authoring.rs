//! `ferry test` and `ferry run`: recipes tested offline, and dry runs that send
//! nothing.

use crate::support;

use std::path::{Path, PathBuf};

use support::Sink;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes")
}

async fn ferry(args: &[&str], environment: &[(&str, &str)]) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferry"));
    command
        .args(args)
        .env_remove("FERRY_RECIPES")
        .env_remove("FERRY_PUBLIC_URL");
    for name in [
        "CHAT_WEBHOOK_URL",
        "CRM_API_URL",
        "CRM_API_TOKEN",
        "NWS_ALERTS_URL",
        "FERRY_API_TOKEN",
    ] {
        command.env_remove(name);
    }
    command.envs(environment.iter().copied());
    command.output().await.expect("run ferry")
}

/// The ids of the example recipes, sorted.
fn example_ids() -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(examples())
        .expect("recipes folder")
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let id = name.strip_suffix(".yaml")?;
            (!id.ends_with(".test")).then(|| id.to_owned())
        })
        .collect();
    ids.sort();
    ids
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn every_example_has_tests_and_they_pass() {
    let folder = examples();
    let output = ferry(&["test", folder.to_str().expect("utf-8 path")], &[]).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stderr.contains("has no tests"), "{stderr}");
    let recipes = example_ids().len();
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with(&format!("{recipes} files, ")) && summary.ends_with(", 0 failed"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_broken_expectation_fails_with_the_differing_json_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    for name in ["github-push-to-chat.yaml", "github-push-to-chat.test.yaml"] {
        std::fs::copy(examples().join(name), dir.path().join(name)).expect("copy example");
    }
    let test = dir.path().join("github-push-to-chat.test.yaml");
    let cases = std::fs::read_to_string(&test).expect("read test");
    assert!(cases.contains("commits: 2\n"), "the example changed: {cases}");
    std::fs::write(&test, cases.replace("commits: 2\n", "commits: 3\n")).expect("write test");

    let output = ferry(&["test", dir.path().to_str().expect("utf-8 path")], &[]).await;
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let failure: Vec<&str> = stdout
        .lines()
        .skip_while(|line| !line.contains("FAIL  a push to main is announced"))
        .take(4)
        .map(str::trim)
        .collect();
    assert_eq!(
        failure[1..],
        ["step `post` json.commits", "expected: 3", "actual:   2"],
        "{stdout}"
    );
    assert!(stdout.ends_with("1 files, 3 cases, 1 failed\n"), "{stdout}");
}

#[tokio::test]
async fn a_case_naming_a_step_the_recipe_lacks_suggests_the_right_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("ping.yaml"),
        "trigger:\n  webhook: {}\nsteps:\n  - id: notify\n    http: {url: 'https://example.com/{{payload.n}}'}\n",
    )
    .expect("write recipe");
    std::fs::write(
        dir.path().join("ping.test.yaml"),
        "- name: pings\n  payload: {n: 1}\n  expect:\n    steps:\n      notfy: {url: https://example.com/1}\n",
    )
    .expect("write test");
    let output = ferry(&["test", dir.path().to_str().expect("utf-8 path")], &[]).await;
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("did you mean `notify`?"), "{stdout}");
}

#[tokio::test]
async fn dry_runs_print_the_requests_and_send_nothing() {
    let sink = Sink::start(200, serde_json::json!({"ok": true})).await;
    let chat = format!("{}/chat", sink.url);
    let crm = format!("{}/crm", sink.url);
    let nws = format!("{}/alerts", sink.url);
    let weather = format!("{}/weather", sink.url);
    let warehouse = format!("{}/warehouse", sink.url);
    let environment = [
        ("CHAT_WEBHOOK_URL", chat.as_str()),
        ("CRM_API_URL", crm.as_str()),
        ("CRM_API_TOKEN", "dry-run-token"),
        ("NWS_ALERTS_URL", nws.as_str()),
        ("WEATHER_API_URL", weather.as_str()),
        ("WAREHOUSE_API_URL", warehouse.as_str()),
    ];
    let payloads = tempfile::tempdir().expect("temp dir");
    // The request each example would send first, as `ferry run` prints it.
    let expected = [
        (
            "demo-sink",
            serde_json::json!({"text": "hi"}),
            "step record: log demo received {\"text\":\"hi\"}".to_owned(),
        ),
        (
            "github-push-to-chat",
            serde_json::json!({"ref": "refs/heads/main", "commits": [], "pusher": {"name": "octocat"}}),
            // Values from the environment are secrets: printed redacted.
            "step post: POST [redacted:CHAT_WEBHOOK_URL]".to_owned(),
        ),
        (
            "greeted",
            serde_json::json!({"greeting": "hi"}),
            "step record: log hi (from run )".to_owned(),
        ),
        (
            "hello",
            serde_json::json!({"name": "Ada"}),
            format!("step greet: POST {}/hooks/greeted", sink.url),
        ),
        (
            "stripe-checkout-to-crm",
            serde_json::json!({"type": "checkout.session.completed"}),
            "step contact: POST [redacted:CRM_API_URL]?resource=contacts".to_owned(),
        ),
        (
            "shopify-order-to-warehouse",
            serde_json::json!({"name": "#1", "line_items": [{"sku": "A", "quantity": 1, "requires_shipping": true}]}),
            "step reserve item 0: POST [redacted:WAREHOUSE_API_URL]?resource=reservations".to_owned(),
        ),
        (
            "tell-ops",
            serde_json::json!({"event": "run.failed", "run": {"recipe": "hello", "error": "x", "url": "u"}, "input": {}}),
            // Unset OPS_CHAT_URL: the local demo sink, under the public URL.
            format!("step tell: POST {}/hooks/demo-sink?service=ops-chat", sink.url),
        ),
        (
            "weather-alerts",
            serde_json::json!({"properties": {"event": "Flood Watch"}}),
            "step post: POST [redacted:CHAT_WEBHOOK_URL]".to_owned(),
        ),
        (
            "slack-weather-command",
            serde_json::json!({"command": "/weather", "text": "Denver"}),
            "step weather: GET [redacted:WEATHER_API_URL]/Denver?format=3".to_owned(),
        ),
        (
            "weekday-digest",
            serde_json::json!({}),
            format!("step failed: GET {}/api/v1/runs?status=failed&limit=20", sink.url),
        ),
    ];
    let mut covered: Vec<&str> = expected.iter().map(|(recipe, _, _)| *recipe).collect();
    covered.sort_unstable();
    assert_eq!(covered, example_ids(), "every example is dry-run here");
    for (recipe, payload, first_line) in &expected {
        let file = payloads.path().join(format!("{recipe}.json"));
        std::fs::write(&file, payload.to_string()).expect("write payload");
        let output = ferry(
            &[
                "run",
                recipe,
                "--dry-run",
                "--payload",
                file.to_str().expect("utf-8 path"),
                "--recipes",
                examples().to_str().expect("utf-8 path"),
                "--public-url",
                &sink.url,
            ],
            &environment,
        )
        .await;
        let stdout = text(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{recipe}: {stdout}\n{}",
            text(&output.stderr)
        );
        assert!(
            stdout.lines().any(|line| line == first_line),
            "{recipe}: expected `{first_line}` in\n{stdout}"
        );
        assert!(
            !stdout.contains("dry-run-token"),
            "{recipe}: the token leaked:\n{stdout}"
        );
    }
    assert!(sink.received().is_empty(), "a dry run sent {:?}", sink.received());

    // Without --dry-run the same command does send: the sink would have seen it.
    let output = ferry(
        &[
            "run",
            "hello",
            "--recipes",
            examples().to_str().expect("utf-8 path"),
            "--public-url",
            &sink.url,
        ],
        &[],
    )
    .await;
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("  -> 200 in "), "{stdout}");
    let received = sink.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].json()["greeting"], "Hello, !");
}
