//! The leak paths an attacker found, closed: a secret — raw, base64, hex,
//! URL-encoded or upper-cased — is found nowhere: not in the database and WAL
//! files, not in an API answer or the status page, not in the answer `respond:
//! wait` gives the (unauthenticated) caller. Destinations here echo everything
//! they receive, headers and body.

use crate::support;

use base64::Engine as _;
use serde_json::{Value, json};
use support::{Setup, Sink, TestDaemon};

const TOKEN: &str = "tok_Live.7f3a9c21";
const RELAY_KEY: &str = "relay-key-55d1e0";
const PASSWORD: &str = "pa55-W0rd!basic";
const USERINFO_PASSWORD: &str = "userinfo-P4ss";
const HOOK_TOKEN: &str = "hook-auth-0c9b7e";
const FORWARDED: &str = "Bearer fwd-credential-4411";
const PARTNER: &str = "partner-sig-7788aa";

/// Every spelling of a secret that must not appear.
fn spellings(secret: &str) -> Vec<String> {
    let engine = base64::engine::general_purpose::STANDARD_NO_PAD;
    vec![
        secret.to_owned(),
        secret.to_uppercase(),
        engine.encode(secret),
        secret.bytes().map(|byte| format!("{byte:02x}")).collect(),
        form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
    ]
}

/// Everything a run leaves that someone could read: the answers given, the
/// database files, the API and the status page.
async fn readable(ferry: &TestDaemon, run_id: &str, answers: &[String]) -> Vec<(String, String)> {
    let mut places: Vec<(String, String)> = answers
        .iter()
        .enumerate()
        .map(|(index, answer)| (format!("answer {index}"), answer.clone()))
        .collect();
    for path in [
        format!("/api/v1/runs/{run_id}"),
        "/api/v1/runs".to_owned(),
        "/api/v1/recipes".to_owned(),
        "/".to_owned(),
        format!("/runs/{run_id}"),
    ] {
        let text = ferry
            .http
            .get(format!("{}{path}", ferry.base))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("text");
        places.push((path, text));
    }
    places.extend(support::database_files(ferry.dir.path()));
    places
}

fn assert_found_nowhere(places: &[(String, String)], secrets: &[&str]) {
    for secret in secrets {
        for spelling in spellings(secret) {
            for (place, text) in places {
                assert!(
                    !text.contains(&spelling),
                    "{place} holds `{spelling}` (of `{secret}`):\n{text:.2000}"
                );
            }
        }
    }
}

#[tokio::test]
async fn respond_wait_answers_the_caller_with_the_echo_redacted() {
    let sink = Sink::echo().await;
    let address = sink.url.trim_start_matches("http://");
    let recipe = format!(
        r#"
trigger:
  webhook:
    path: relay
    respond: wait
    timeout: 10s
steps:
  - id: bearer
    http:
      url: "{url}/bearer"
      auth: {{bearer: "${{TOKEN}}"}}
      headers: {{x-relay-key: "${{RELAY_KEY}}"}}
      json: {{text: "{{{{payload.text}}}}"}}
  - id: basic
    http:
      url: "{url}/basic"
      auth: {{basic: {{username: ada, password: "${{PASSWORD}}"}}}}
  - id: userinfo
    http:
      url: "http://grace:${{USERINFO_PASSWORD}}@{address}/userinfo"
"#,
        url = sink.url
    );
    let ferry = TestDaemon::start_with_env(
        &[("relay.yaml", &recipe)],
        &[
            ("TOKEN", TOKEN),
            ("RELAY_KEY", RELAY_KEY),
            ("PASSWORD", PASSWORD),
            ("USERINFO_PASSWORD", USERINFO_PASSWORD),
        ],
    )
    .await;
    let response = ferry
        .http
        .post(format!("{}/hooks/relay", ferry.base))
        .json(&json!({"text": "hello"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 200);
    let run_id = response
        .headers()
        .get("ferry-run-id")
        .and_then(|value| value.to_str().ok())
        .expect("ferry-run-id")
        .to_owned();
    let answer = response.text().await.expect("answer");
    let echoed: Value = serde_json::from_str(&answer).expect("the echo as JSON");
    assert_eq!(echoed["uri"], "/userinfo", "the last step's answer: {answer}");
    assert!(
        echoed["headers"]["authorization"]
            .as_str()
            .is_some_and(|value| value.contains("[redacted:USERINFO_PASSWORD]")),
        "{answer}"
    );

    // Each destination got the real credentials.
    let received = sink.received();
    let engine = base64::engine::general_purpose::STANDARD;
    assert_eq!(
        received[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(received[0].header("x-relay-key"), Some(RELAY_KEY));
    let basic = format!("Basic {}", engine.encode(format!("ada:{PASSWORD}")));
    assert_eq!(received[1].header("authorization"), Some(basic.as_str()));
    let userinfo = format!("Basic {}", engine.encode(format!("grace:{USERINFO_PASSWORD}")));
    assert_eq!(received[2].header("authorization"), Some(userinfo.as_str()));

    let run = ferry.wait_for_end(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let places = readable(&ferry, &run_id, &[answer]).await;
    let base64_pairs = [format!("ada:{PASSWORD}"), format!("grace:{USERINFO_PASSWORD}")];
    assert_found_nowhere(&places, &[TOKEN, RELAY_KEY, PASSWORD, USERINFO_PASSWORD]);
    assert_found_nowhere(&places, &[base64_pairs[0].as_str(), base64_pairs[1].as_str()]);
}

#[tokio::test]
async fn callers_credentials_and_the_verify_secret_are_never_stored() {
    let recipe = r#"
trigger:
  webhook:
    path: guarded
    verify: {scheme: token, header: x-hook-auth, secret: "${HOOK_TOKEN}"}
steps:
  - log: "{{payload.note}}"
"#;
    let ferry = TestDaemon::start_with(
        &[("guarded.yaml", recipe)],
        Setup {
            environment: &[("HOOK_TOKEN", HOOK_TOKEN)],
            redact_headers: &["X-Partner-Proof"],
            ..Setup::default()
        },
    )
    .await;
    let response = ferry
        .http
        .post(format!("{}/hooks/guarded?sig={HOOK_TOKEN}", ferry.base))
        .header("x-hook-auth", HOOK_TOKEN)
        .header("x-forwarded-authorization", FORWARDED)
        .header("x-partner-proof", PARTNER)
        .header("x-request-id", "req-1")
        .json(&json!({"note": "deploy done"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 202);
    let answer: Value = response.json().await.expect("answer");
    let run_id = answer["run_id"].as_str().expect("run_id").to_owned();
    let run = ferry.wait_for_end(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["headers"]["x-hook-auth"], "[redacted]");
    assert_eq!(run["headers"]["x-forwarded-authorization"], "[redacted]");
    assert_eq!(run["headers"]["x-partner-proof"], "[redacted]");
    assert_eq!(run["headers"]["x-request-id"], "req-1", "other headers are kept");
    assert_eq!(run["query"]["sig"], "[redacted:HOOK_TOKEN]");

    let places = readable(&ferry, &run_id, &[]).await;
    assert_found_nowhere(&places, &[HOOK_TOKEN, FORWARDED.trim_start_matches("Bearer "), PARTNER]);
}

#[tokio::test]
async fn a_plain_marked_base_url_is_shown_and_the_same_value_unmarked_is_redacted() {
    let sink = Sink::start(200, json!({"ok": true})).await;
    let recipe = "trigger: {webhook: {}}\nsteps:\n  - http: {url: \"${HELPDESK_URL}/tickets\", method: POST}\n";
    for (plain, expected) in [
        (Some("HELPDESK_URL"), format!("{}/tickets", sink.url)),
        (None, "[redacted:HELPDESK_URL]/tickets".to_owned()),
    ] {
        let mut environment = vec![("HELPDESK_URL", sink.url.as_str())];
        if let Some(names) = plain {
            environment.push(("FERRY_PLAIN_VARS", names));
        }
        let ferry = TestDaemon::start_with_env(&[("tickets.yaml", recipe)], &environment).await;
        let (status, answer) = ferry.post_hook("tickets", &json!({})).await;
        assert_eq!(status.as_u16(), 202);
        let run = ferry.wait_for_end(answer["run_id"].as_str().expect("run_id")).await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
        assert_eq!(run["steps"][0]["attempts"][0]["request"]["url"], expected.as_str());
    }
}

/// What loading a recipe says, one line per problem (`file:line:col: message`).
fn load_problems(text: &str, environment: &[(&str, &str)]) -> Vec<String> {
    let environment = ferry::recipe::Environment::from_pairs(environment.iter().copied());
    match ferry::recipe::load_source(std::path::Path::new("derived.yaml"), text, &environment) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_helper_applied_to_a_secret_is_refused_with_its_position() {
    for (line, text) in [
        (
            5,
            "trigger: {webhook: {}}\nsteps:\n  - http:\n      url: http://127.0.0.1:9/x\n      headers: {x-key: '{{upper \"${TOKEN}\"}}'}\n",
        ),
        (
            3,
            "trigger: {webhook: {}}\nsteps:\n  - log: 'a {{slice \"${TOKEN}\" 0 3}} b {{slice \"${TOKEN}\" 3 6}}'\n",
        ),
        (
            5,
            "trigger: {webhook: {}}\nsteps:\n  - http:\n      url: http://127.0.0.1:9/x\n      json: {key: '{{base64 \"${TOKEN}\"}}'}\n",
        ),
        (
            2,
            "trigger: {webhook: {}}\nwhen: '{{eq payload.token \"${TOKEN}\"}}'\nsteps: [{log: ok}]\n",
        ),
    ] {
        let problems = load_problems(text, &[("TOKEN", TOKEN)]);
        assert_eq!(problems.len(), 1, "{text}\n{problems:#?}");
        assert!(
            problems[0].starts_with(&format!("derived.yaml:{line}:")),
            "{problems:#?}"
        );
        assert!(
            problems[0].contains("`${TOKEN}` is inside a `{{ … }}` expression"),
            "{problems:#?}"
        );
    }
    // The same value used as it is loads; so does a helper on a plain-marked value.
    let as_is = "trigger: {webhook: {}}\nsteps:\n  - http:\n      url: http://127.0.0.1:9/x\n      headers: {x-key: '${TOKEN}'}\n";
    assert_eq!(load_problems(as_is, &[("TOKEN", TOKEN)]), Vec::<String>::new());
    let plain = "trigger: {webhook: {}}\nsteps:\n  - log: '{{upper \"${REGION}\"}}'\n";
    assert_eq!(
        load_problems(plain, &[("REGION", "eu-west"), ("FERRY_PLAIN_VARS", "OTHER, REGION")]),
        Vec::<String>::new()
    );
    assert_eq!(load_problems(plain, &[("REGION", "eu-west")]).len(), 1);
}

#[test]
fn a_secret_too_short_to_find_and_basic_credentials_beside_a_template_are_refused() {
    let short =
        "trigger: {webhook: {}}\nsteps:\n  - http:\n      url: http://127.0.0.1:9/x\n      json: {pin: '${PIN}'}\n";
    let problems = load_problems(short, &[("PIN", "4821")]);
    assert!(
        problems.len() == 1 && problems[0].contains("the value of `PIN` is shorter than 6 characters"),
        "{problems:#?}"
    );
    assert_eq!(
        load_problems(short, &[("PIN", "4821"), ("FERRY_PLAIN_VARS", "PIN")]),
        Vec::<String>::new()
    );
    let templated = "trigger: {webhook: {}}\nsteps:\n  - http:\n      url: http://127.0.0.1:9/x\n      auth: {basic: {username: '{{payload.user}}', password: '${PASSWORD}'}}\n";
    let problems = load_problems(templated, &[("PASSWORD", PASSWORD)]);
    assert!(
        problems.len() == 1 && problems[0].contains("`auth.basic` holds the secret `PASSWORD` beside a template"),
        "{problems:#?}"
    );
}

#[tokio::test]
async fn the_log_at_debug_and_the_files_of_the_real_binary_hold_no_spelling_of_a_secret() {
    let sink = Sink::echo().await;
    let address = sink.url.trim_start_matches("http://");
    let recipe = format!(
        r#"
trigger:
  webhook:
    path: relay
    respond: wait
    verify: {{scheme: token, header: x-hook-auth, secret: "${{HOOK_TOKEN}}"}}
steps:
  - id: bearer
    http:
      url: "{url}/bearer"
      auth: {{bearer: "${{TOKEN}}"}}
      headers: {{x-relay-key: "${{RELAY_KEY}}"}}
  - id: basic
    http:
      url: "http://grace:${{USERINFO_PASSWORD}}@{address}/userinfo"
      auth: {{basic: {{username: ada, password: "${{PASSWORD}}"}}}}
  - log: "bearer step answered {{{{json steps.bearer.body}}}}"
"#,
        url = sink.url
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let recipes = dir.path().join("recipes");
    std::fs::create_dir(&recipes).expect("recipes dir");
    std::fs::write(recipes.join("relay.yaml"), recipe).expect("recipe");
    let port = support::free_address().port();
    let log_path = dir.path().join("ferry.log");
    let daemon = support::ferry_serve(dir.path(), port)
        .env("TOKEN", TOKEN)
        .env("RELAY_KEY", RELAY_KEY)
        .env("PASSWORD", PASSWORD)
        .env("USERINFO_PASSWORD", USERINFO_PASSWORD)
        .env("HOOK_TOKEN", HOOK_TOKEN)
        .env("FERRY_LOG", "debug")
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .spawn()
        .expect("start ferry serve");
    let daemon = support::Running(daemon);

    let http = support::http_client();
    let base = format!("http://127.0.0.1:{port}");
    let answer = support::poll_until("the daemon to answer the webhook", || async {
        let response = http
            .post(format!("{base}/hooks/relay"))
            .header("x-hook-auth", HOOK_TOKEN)
            .header("x-forwarded-authorization", FORWARDED)
            .json(&json!({"n": 1}))
            .send()
            .await
            .ok()?;
        (response.status().as_u16() == 200).then_some(())?;
        response.text().await.ok()
    })
    .await;
    assert!(
        answer.contains("[redacted:"),
        "the log step's line comes back: {answer}"
    );
    assert_eq!(sink.received().len(), 2, "both destinations were called");
    drop(daemon);

    let mut places = vec![
        ("the answer".to_owned(), answer),
        ("the log".to_owned(), std::fs::read_to_string(&log_path).expect("log")),
    ];
    places.extend(support::database_files(dir.path()));
    assert!(
        places[1].1.contains("bearer step answered"),
        "the log was written at debug:\n{}",
        places[1].1
    );
    let pairs = [format!("ada:{PASSWORD}"), format!("grace:{USERINFO_PASSWORD}")];
    assert_found_nowhere(
        &places,
        &[
            TOKEN,
            RELAY_KEY,
            PASSWORD,
            USERINFO_PASSWORD,
            HOOK_TOKEN,
            &FORWARDED[7..],
        ],
    );
    assert_found_nowhere(&places, &[pairs[0].as_str(), pairs[1].as_str()]);
}
