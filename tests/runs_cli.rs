//! `ferry runs` and `ferry runs show` read the history from the database file,
//! with the daemon stopped.

use crate::support;

use serde_json::json;
use support::{Sink, TestDaemon};

#[tokio::test]
async fn a_failed_run_shows_its_error_and_the_destinations_answer() {
    let crm = Sink::start(502, json!({"error": "upstream crm is down"})).await;
    let recipe = format!(
        "trigger: {{webhook: {{path: contacts}}}}\nsteps:\n  - id: note\n    log: 'contact {{{{payload.email}}}}'\n  - id: create\n    http: {{url: '{}/contacts', json: {{email: '{{{{payload.email}}}}'}}}}\n",
        crm.url
    );
    let ferry = TestDaemon::start(&[("contacts.yaml", &recipe)]).await;
    let (_, answer) = ferry.post_hook("contacts", &json!({"email": "ada@example.com"})).await;
    let run_id = answer["run_id"].as_str().expect("run_id").to_owned();
    let run = ferry.wait_for_end(&run_id).await;
    assert_eq!(run["status"], "failed");
    // Each step says its kind: its attempts are read as what they are.
    let kinds: Vec<_> = run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|step| step["kind"].clone())
        .collect();
    assert_eq!(kinds, [json!("log"), json!("http")], "{run}");
    let TestDaemon { daemon, dir, .. } = ferry;
    daemon.shutdown().await.expect("the daemon stops");

    let database = format!("sqlite://{}", dir.path().join("ferry.db").display());
    let ferry_runs = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .arg("runs")
            .args(args)
            .args(["--database", &database])
            .env_remove("FERRY_RECIPES")
            .current_dir(dir.path())
            .output()
            .expect("run ferry runs")
    };

    let listing = ferry_runs(&["--status", "failed"]);
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let line = text
        .lines()
        .find(|line| line.starts_with(&run_id))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("contacts") && line.contains("failed"), "{line}");
    assert!(line.contains("HTTP 502 Bad Gateway"), "{line}");
    assert!(!text.contains('\u{1b}'), "no colour when stdout is not a terminal");

    let shown = ferry_runs(&["show", &run_id]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    assert!(
        text.contains(&format!(
            "error: step `create`: HTTP 502 Bad Gateway from POST {}/contacts",
            crm.url
        )),
        "{text}"
    );
    assert!(text.contains("    log contact ada@example.com\n"), "{text}");
    assert!(text.contains(&format!("    -> POST {}/contacts", crm.url)), "{text}");
    assert!(
        text.contains("\"email\": \"ada@example.com\""),
        "the request body: {text}"
    );
    assert!(text.contains("    <- 502"), "{text}");
    assert!(
        text.contains("\"error\": \"upstream crm is down\""),
        "the destination's answer: {text}"
    );

    let missing = ferry_runs(&["show", "no-such-run"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("there is no run `no-such-run`"));
}
