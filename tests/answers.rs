//! Answers that say they failed (`fail_when`), values named for later steps
//! (`set`), and the list helpers, against loopback servers.

use crate::support;

use serde_json::json;
use support::{Sink, TestDaemon};

#[tokio::test]
async fn fail_when_fails_a_200_that_says_it_failed_and_does_not_retry_it() {
    let sink = Sink::start(200, json!({"ok": false, "error": "channel_not_found"})).await;
    let recipe = format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - id: post\n    retry: {{attempts: 3, backoff: 10ms}}\n    http:\n      url: '{}/chat.postMessage'\n      json: {{text: hi}}\n      fail_when: '{{{{not response.body.ok}}}}'\n  - log: after\n",
        sink.url
    );
    let ferry = TestDaemon::start(&[("slack.yaml", &recipe)]).await;
    let (_, accepted) = ferry.post_hook("slack", &json!({})).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;

    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("step `post`") && error.contains("`fail_when` holds: {{not response.body.ok}}"),
        "{error}"
    );
    assert_eq!(sink.received().len(), 1, "such a failure is not retried");
    assert_eq!(run["steps"].as_array().map(Vec::len), Some(1), "{run:#}");
    assert_eq!(
        run["steps"][0]["attempts"][0]["response"]["body"]["error"],
        "channel_not_found"
    );
}

#[tokio::test]
async fn retry_fail_when_tries_such_an_answer_again() {
    let sink = Sink::start(200, json!({"status": "pending"})).await;
    let recipe = format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - id: poll\n    retry: {{attempts: 3, backoff: 10ms, fail_when: true}}\n    http:\n      url: '{}/job'\n      fail_when: '{{{{eq response.body.status \"pending\"}}}}'\n",
        sink.url
    );
    let ferry = TestDaemon::start(&[("job.yaml", &recipe)]).await;
    let (_, accepted) = ferry.post_hook("job", &json!({})).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(sink.received().len(), 3, "every attempt was made");
}

#[tokio::test]
async fn a_fail_when_that_does_not_hold_lets_the_answer_through() {
    let sink = Sink::start(200, json!({"ok": true, "ts": "1.2"})).await;
    let recipe = format!(
        "trigger: {{webhook: {{}}}}\nsteps:\n  - id: post\n    http:\n      url: '{}/chat.postMessage'\n      fail_when: '{{{{not response.body.ok}}}}'\n  - id: note\n    log: 'sent {{{{steps.post.body.ts}}}}'\n",
        sink.url
    );
    let ferry = TestDaemon::start(&[("slack.yaml", &recipe)]).await;
    let (_, accepted) = ferry.post_hook("slack", &json!({})).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["steps"][1]["attempts"][0]["request"]["log"], "sent 1.2");
}

#[tokio::test]
async fn set_names_typed_values_and_list_helpers_read_lists_of_objects() {
    let sink = Sink::echo().await;
    let recipe = format!(
        r#"trigger: {{webhook: {{}}}}
steps:
  - id: order
    set:
      count: "{{{{len payload.line_items}}}}"
      skus: '{{{{pluck payload.line_items "sku"}}}}'
      total: '{{{{sum payload.line_items "qty"}}}}'
      urgent: '{{{{any payload.labels "name" "urgent"}}}}'
      first_big: '{{{{lookup (find payload.line_items "qty" 5) "sku"}}}}'
  - id: post
    http:
      url: '{}/orders'
      json:
        count: "{{{{steps.order.count}}}}"
        skus: "{{{{steps.order.skus}}}}"
        total: "{{{{steps.order.total}}}}"
        urgent: "{{{{steps.order.urgent}}}}"
        first_big: "{{{{steps.order.first_big}}}}"
        sorted: '{{{{join (pluck (sort_by payload.line_items "qty") "sku") ","}}}}'
"#,
        sink.url
    );
    let ferry = TestDaemon::start(&[("orders.yaml", &recipe)]).await;
    let payload = json!({
        "line_items": [{"sku": "a", "qty": 5}, {"sku": "b", "qty": "2"}, {"sku": "c", "qty": 1}],
        "labels": [{"name": "vip"}, {"name": "urgent"}],
    });
    let (_, accepted) = ferry.post_hook("orders", &payload).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(
        sink.received()[0].json(),
        json!({"count": 3, "skus": ["a", "b", "c"], "total": 8, "urgent": true, "first_big": "a", "sorted": "c,b,a"})
    );
    assert_eq!(run["steps"][0]["kind"], "set", "{run:#}");
    assert_eq!(run["steps"][0]["attempts"][0]["request"]["set"]["count"], 3, "{run:#}");
}

#[test]
fn ferry_test_expects_set_values_and_check_places_fail_when_problems() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("tally.yaml"),
        "trigger: {webhook: {}}\nsteps:\n  - id: tally\n    set: {count: '{{len payload.items}}', who: '{{payload.who}}'}\n",
    )
    .expect("write recipe");
    std::fs::write(
        dir.path().join("tally.test.yaml"),
        "- name: counts\n  payload: {items: [1, 2], who: ada}\n  expect:\n    steps:\n      tally:\n        set: {count: 2, who: ada}\n- name: a wrong count is a failure\n  payload: {items: [1], who: ada}\n  expect:\n    steps:\n      tally:\n        set: {count: 2}\n",
    )
    .expect("write test");
    let (tested_code, stdout, _) = support::ferry_on("test", dir.path());
    assert_eq!(tested_code, Some(1), "{stdout}");
    assert!(stdout.contains("step `tally` set.count"), "{stdout}");
    assert!(stdout.ends_with("1 files, 2 cases, 1 failed\n"), "{stdout}");

    std::fs::remove_file(dir.path().join("tally.test.yaml")).expect("remove test");
    std::fs::write(
        dir.path().join("tally.yaml"),
        "trigger: {webhook: {}}\nsteps:\n  - http:\n      url: http://127.0.0.1:9/x\n      fail_when: '{{not respons.body.ok}}'\n",
    )
    .expect("write recipe");
    std::fs::write(
        dir.path().join("listed.yaml"),
        "trigger: {webhook: {}}\nsteps:\n  - set: [1, 2]\n",
    )
    .expect("write recipe");
    let (checked_code, _, stderr) = support::ferry_on("check", dir.path());
    assert_eq!(checked_code, Some(1), "{stderr}");
    assert!(
        stderr.contains("tally.yaml:5:25: step `step1` `fail_when`: `respons.body.ok` starts with `respons`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `response`?"), "{stderr}");
    assert!(
        stderr.contains("listed.yaml:3:10: `steps[0].set` must be a map, not a list"),
        "{stderr}"
    );
}
