//! `switch`: only the chosen branch runs; the others' steps are recorded
//! skipped, later steps read which case ran, and `ferry check` places the
//! mistakes of branches.

use crate::support;

use serde_json::json;
use support::{Sink, TestDaemon};

fn recipe(url: &str) -> String {
    format!(
        r#"trigger: {{webhook: {{}}}}
steps:
  - id: route
    switch: "{{{{payload.type}}}}"
    cases:
      invoice.paid:
        - id: thank
          http: {{url: '{url}/thank', json: {{invoice: "{{{{payload.id}}}}"}}}}
        - id: ledger
          http: {{url: '{url}/ledger', json: {{amount: "{{{{payload.amount}}}}"}}}}
      invoice.payment_failed:
        - id: dunning
          http: {{url: '{url}/dunning', json: {{invoice: "{{{{payload.id}}}}"}}}}
    default:
      - id: other
        log: "ignored {{{{payload.type}}}}"
  - id: done
    log: "case {{{{steps.route.case}}}}; thanked: {{{{not steps.thank.skipped}}}}"
"#
    )
}

#[tokio::test]
async fn only_the_chosen_branch_runs_and_the_others_are_skipped() {
    let sink = Sink::start(200, json!({"ok": true})).await;
    let ferry = TestDaemon::start(&[("invoices.yaml", &recipe(&sink.url))]).await;

    let (_, accepted) = ferry
        .post_hook(
            "invoices",
            &json!({"type": "invoice.paid", "id": "in_1", "amount": 1200}),
        )
        .await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let paths: Vec<String> = sink
        .received()
        .iter()
        .map(|request| request.path_and_query.clone())
        .collect();
    assert_eq!(paths, ["/thank", "/ledger"], "only the chosen branch sends");
    assert_eq!(sink.received()[1].json(), json!({"amount": 1200}));
    let statuses: Vec<(String, String)> = run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|step| {
            (
                step["id"].as_str().unwrap_or_default().to_owned(),
                step["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("route", "succeeded"),
        ("thank", "succeeded"),
        ("ledger", "succeeded"),
        ("dunning", "skipped"),
        ("other", "skipped"),
        ("done", "succeeded"),
    ];
    assert_eq!(
        statuses,
        expected.map(|(id, status)| (id.to_owned(), status.to_owned())),
        "{run:#}"
    );
    assert_eq!(run["steps"][0]["kind"], "switch");
    assert_eq!(
        run["steps"][5]["attempts"][0]["request"]["log"],
        "case invoice.paid; thanked: true"
    );

    let (_, accepted) = ferry.post_hook("invoices", &json!({"type": "customer.created"})).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(sink.received().len(), 2, "the default branch sends nothing");
    assert_eq!(
        run["steps"][4]["attempts"][0]["request"]["log"],
        "ignored customer.created"
    );
    assert_eq!(
        run["steps"][5]["attempts"][0]["request"]["log"],
        "case default; thanked: false"
    );
}

#[test]
fn ferry_test_sees_the_branch_taken() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("invoices.yaml"), recipe("https://api.example.com")).expect("write recipe");
    std::fs::write(
        dir.path().join("invoices.test.yaml"),
        r#"- name: a failed payment starts dunning
  payload: {type: invoice.payment_failed, id: in_2}
  expect:
    status: succeeded
    steps:
      dunning: {url: https://api.example.com/dunning, json: {invoice: in_2}}
      thank: {skipped: true}
      other: {skipped: true}
      done: {log: "case invoice.payment_failed; thanked: false"}
"#,
    )
    .expect("write test");
    let (output_code, stdout, _) = support::ferry_on("test", dir.path());
    assert_eq!(output_code, Some(0), "{stdout}");
    assert!(stdout.ends_with("1 files, 1 cases, 0 failed\n"), "{stdout}");
}

#[test]
fn check_places_the_mistakes_of_branches() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("bad.yaml"),
        r#"trigger: {webhook: {}}
steps:
  - id: route
    switch: "{{payload.type}}"
    cases:
      a:
        - id: same
          log: one
      b:
        - id: same
          lgo: two
  - id: after
    log: "{{steps.nowhere.body}}"
"#,
    )
    .expect("write recipe");
    std::fs::write(
        dir.path().join("misplaced.yaml"),
        "trigger: {webhook: {}}\nsteps:\n  - log: x\n    default: [{log: y}]\n  - switch: '{{payload.t}}'\n    cases: {default: [{log: z}]}\n",
    )
    .expect("write recipe");
    let (output_code, _, stderr) = support::ferry_on("check", dir.path());
    assert_eq!(output_code, Some(1), "{stderr}");
    assert!(
        stderr.contains("bad.yaml:11:11: unknown key `lgo` in a step; expected one of"),
        "{stderr}"
    );
    support::replace_in(&dir.path().join("bad.yaml"), "lgo", "log");
    let (_, _, stderr) = support::ferry_on("check", dir.path());
    assert!(
        stderr.contains("bad.yaml:10:15: step id `same` is used twice; step ids must be unique in a recipe"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.yaml:13:") && stderr.contains("names no earlier step `nowhere`"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "misplaced.yaml:3:5: step `step1`: `cases` and `default` belong to a `switch` step, not to a `log` step"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "misplaced.yaml:6:12: step `step3` has a case named `default`; write that branch under `default:`"
        ),
        "{stderr}"
    );
}
