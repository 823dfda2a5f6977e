//! The `failure` trigger: every failed run of the recipes it watches starts one
//! run of it, with the `run.failed` envelope as its payload — stored in the same
//! commit as the failed run's end, so a `kill -9` right after loses none and
//! repeats none.

use crate::support;

use serde_json::{Value, json};
use support::{Sink, TestDaemon, http_client, poll_until, step};

/// A signup whose email step fails after its retries (the mail API answers 503).
fn signup(mail: &str) -> String {
    format!(
        r#"trigger: {{webhook: {{}}}}
steps:
  - id: email
    retry: {{attempts: 2, backoff: 10ms, max: 20ms}}
    http: {{url: '{mail}/send', json: {{to: "{{{{payload.email}}}}"}}}}
"#
    )
}

/// Tells ops, with the whole envelope as the body.
fn ops(url: &str, watched: &str) -> String {
    format!(
        r#"trigger: {{failure: {{recipes: {watched}}}}}
steps:
  - id: page
    http: {{url: '{url}/page', body: "{{{{json payload}}}}", headers: {{content-type: application/json}}}}
"#
    )
}

/// Runs of `recipe`, newest first.
async fn runs_of(ferry: &TestDaemon, recipe: &str) -> Vec<Value> {
    let (_, page) = ferry.get_json(&format!("/api/v1/runs?recipe={recipe}")).await;
    page["runs"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_failed_run_reaches_the_failure_recipe_once_with_its_envelope() {
    let mail = Sink::start(503, json!({"message": "mail server down"})).await;
    let pager = Sink::start(200, json!({"paged": true})).await;
    let fine = Sink::start(200, json!({})).await;
    // The signup sends a token that its sender also put in the payload.
    let signup = signup(&mail.url).replace("    http: {", "    http: {headers: {x-token: '${SIGNUP_TOKEN}'}, ");
    let ferry = TestDaemon::start_with_env(
        &[
            ("signup.yaml", &signup),
            (
                "fine.yaml",
                &format!(
                    "trigger: {{webhook: {{}}}}\nsteps:\n  - http: {{url: '{}'}}\n",
                    fine.url
                ),
            ),
            ("ops.yaml", &ops(&pager.url, r#"["*"]"#)),
            // Watches only `fine`, which never fails: it never runs.
            ("quiet.yaml", &ops(&pager.url, "[fine]")),
        ],
        &[("SIGNUP_TOKEN", "tok-5ecret-sign-up")],
    )
    .await;

    let (_, accepted) = ferry.post_hook("fine", &json!({})).await;
    let fine_run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(fine_run["status"], "succeeded");

    let (_, accepted) = ferry
        .post_hook(
            "signup",
            &json!({"email": "ada@example.com", "plan": "pro", "token": "tok-5ecret-sign-up"}),
        )
        .await;
    let failed_id = accepted["run_id"].as_str().expect("run id").to_owned();
    let failed = ferry.wait_for_end(&failed_id).await;
    assert_eq!(failed["status"], "failed", "{failed:#}");

    let ops_run = poll_until("the failure run", || async {
        let runs = runs_of(&ferry, "ops").await;
        runs.first().filter(|run| run["status"] == "succeeded").cloned()
    })
    .await;
    assert_eq!(ops_run["trigger"], "failure");
    let ops_run = ferry.wait_for_end(ops_run["id"].as_str().expect("id")).await;
    let envelope = &ops_run["payload"];
    assert_eq!(envelope["event"], "run.failed");
    assert_eq!(envelope["run"]["id"], failed_id.as_str());
    assert_eq!(envelope["run"]["recipe"], "signup");
    assert_eq!(envelope["run"]["failed_step"], "email");
    assert_eq!(envelope["run"]["status"], 503);
    assert_eq!(envelope["run"]["error"], failed["error"]);
    assert!(
        envelope["run"]["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("step `email` after 2 attempts: HTTP 503"),
        "{envelope:#}"
    );
    let url = envelope["run"]["url"].as_str().unwrap_or_default();
    assert!(url.ends_with(&format!("/runs/{failed_id}")), "{url}");
    assert_eq!(envelope["input"]["email"], "ada@example.com", "the original payload");
    assert_eq!(
        envelope["input"]["token"], "[redacted:SIGNUP_TOKEN]",
        "as the failed run's page shows it"
    );
    let page = ferry
        .get_page(&format!("/runs/{}", ops_run["id"].as_str().expect("id")))
        .await;
    assert!(
        page.contains(&format!(r#"<a id="failed-run" href="/runs/{failed_id}">"#)),
        "the failure run's page links to the failed run: {page}"
    );

    // The pager got the envelope as sent.
    let pages = pager.received();
    assert_eq!(pages.len(), 1, "once, and only from `ops`");
    assert_eq!(pages[0].json(), *envelope);
    assert!(runs_of(&ferry, "quiet").await.is_empty(), "`quiet` watches `fine` only");
    assert_eq!(runs_of(&ferry, "ops").await.len(), 1);

    let (status, document) = ferry.get_json("/api/v1/recipes/ops").await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(document["trigger"]["kind"], "failure");
    assert_eq!(document["trigger"]["recipes"], json!(["*"]));
}

#[tokio::test]
async fn a_failing_failure_run_starts_no_other() {
    let mail = Sink::start(503, json!({})).await;
    let broken_pager = Sink::start(500, json!({})).await;
    let ferry = TestDaemon::start(&[
        ("signup.yaml", &signup(&mail.url)),
        ("ops.yaml", &ops(&broken_pager.url, r#"["*"]"#)),
        ("backup.yaml", &ops(&broken_pager.url, r#"["*"]"#)),
    ])
    .await;
    let (_, accepted) = ferry.post_hook("signup", &json!({"email": "ada@example.com"})).await;
    let failed = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(failed["status"], "failed");
    for recipe in ["ops", "backup"] {
        let run = poll_until("the failure runs to end", || async {
            runs_of(&ferry, recipe)
                .await
                .into_iter()
                .find(|run| run["status"] == "failed")
        })
        .await;
        assert_eq!(run["trigger"], "failure", "{run:#}");
    }
    // Both failed; neither started a run of the other (nor of itself). Their
    // ends are committed: a run they started would be listed already.
    assert_eq!(runs_of(&ferry, "ops").await.len(), 1);
    assert_eq!(runs_of(&ferry, "backup").await.len(), 1);
    assert_eq!(broken_pager.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_right_after_the_failure_loses_and_repeats_no_failure_run() {
    let mail = Sink::start(503, json!({})).await;
    // Holds the first request unanswered (the daemon is killed meanwhile).
    let pager = support::KeyedSink::start(|_, seen| seen == 1).await;
    let pager_url = pager.url.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("recipes")).expect("recipes dir");
    std::fs::write(dir.path().join("recipes/signup.yaml"), signup(&mail.url)).expect("recipe");
    std::fs::write(dir.path().join("recipes/ops.yaml"), ops(&pager_url, "[signup]")).expect("recipe");

    let port = support::free_address().port();
    let base = format!("http://127.0.0.1:{port}");
    let http = http_client();
    let mut ferry = support::Running(support::ferry_serve(dir.path(), port).spawn().expect("start ferry"));
    // `plan` is read by no template: the envelope has it all the same.
    let input = json!({"email": "ada@example.com", "plan": "pro"});
    let accepted = support::post_hook_when_up(&http, &base, "signup", &input).await;
    let failed_id = accepted["run_id"].as_str().expect("run id").to_owned();

    // Killed as soon as the failure is seen recorded: the failure run was
    // committed with it, whether or not it has started.
    poll_until("the run to fail", || async {
        let run: Value = http
            .get(format!("{base}/api/v1/runs/{failed_id}"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (run["status"] == "failed").then_some(())
    })
    .await;
    ferry.0.kill().expect("kill -9");
    ferry.0.wait().expect("reap");

    let _ferry = support::Running(support::ferry_serve(dir.path(), port).spawn().expect("restart ferry"));
    let listed: Value = poll_until("the failure run to succeed", || async {
        let listed: Value = http
            .get(format!("{base}/api/v1/runs?recipe=ops"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let runs = listed["runs"].as_array()?;
        runs.iter().any(|run| run["status"] == "succeeded").then_some(listed)
    })
    .await;
    let runs = listed["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "exactly one failure run: {listed:#}");
    let ops_id = runs[0]["id"].as_str().expect("id");
    let run = support::wait_for_success(&http, &base, ops_id).await;
    assert_eq!(run["payload"]["run"]["id"], failed_id.as_str());
    assert_eq!(step(&run, "page")["status"], "succeeded");

    let requests = pager.requests();
    assert!(!requests.is_empty());
    let key = format!("{ops_id}.page");
    for (sent_key, body) in &requests {
        assert_eq!(*sent_key, key, "one run, one key, also when sent again");
        assert_eq!(body["run"]["id"], failed_id.as_str());
        assert_eq!(body["input"], input, "the whole input");
    }
}

#[test]
fn check_places_the_mistakes_of_failure_triggers_and_ferry_test_gives_an_example_envelope() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, watched) in [
        ("itself.yaml", "[signup, itself]"),
        ("star.yaml", r#"["*", signup]"#),
        ("empty.yaml", "[]"),
        ("upper.yaml", "[Signup]"),
    ] {
        let text = format!("trigger:\n  failure: {{recipes: {watched}}}\nsteps:\n  - log: x\n");
        std::fs::write(dir.path().join(name), text).expect("write recipe");
    }
    let (code, _, stderr) = support::ferry_on("check", dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    for expected in [
        "itself.yaml:2:31: failure `recipes` lists `itself`, this recipe: a failure trigger never runs for its own runs",
        "star.yaml:2:22: failure `recipes`: `*` already names every recipe; list it alone",
        "empty.yaml:2:22: failure `recipes` is empty; list recipe ids, or `[\"*\"]` for all",
        "upper.yaml:2:23: failure `recipes`: `Signup` is not a recipe id",
    ] {
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
    }

    let good = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        good.path().join("ops.yaml"),
        "trigger: {failure: {recipes: ['*']}}\nsteps:\n  - id: say\n    log: '{{payload.event}} {{payload.run.recipe}} at {{payload.run.failed_step}} ({{payload.run.status}})'\n",
    )
    .expect("write recipe");
    std::fs::write(
        good.path().join("ops.test.yaml"),
        "- name: the example envelope\n  expect:\n    steps:\n      say: {log: run.failed example at send (503)}\n- name: a given one\n  payload: {event: run.failed, run: {recipe: signup, failed_step: email, status: 500}}\n  expect:\n    steps:\n      say: {log: run.failed signup at email (500)}\n",
    )
    .expect("write test");
    let (code, stdout, stderr) = support::ferry_on("test", good.path());
    assert_eq!(code, Some(0), "{stdout}{stderr}");

    // An id no recipe has is a warning (the recipe may come later), with a guess.
    std::fs::write(
        good.path().join("typo.yaml"),
        "trigger:\n  failure: {recipes: [opz]}\nsteps:\n  - log: x\n",
    )
    .expect("write recipe");
    let (code, _, stderr) = support::ferry_on("check", good.path());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "typo.yaml:2:23: failure `recipes` names `opz`, which no recipe loaded here has: its failures would start nothing; did you mean `ops`?"
        ),
        "{stderr}"
    );
    let file = good.path().join("typo.yaml");
    let (_, _, stderr) = support::ferry(&["check", file.to_str().expect("utf-8 path")]);
    assert!(
        stderr.contains("names `opz`"),
        "one file is checked against its folder: {stderr}"
    );
}
