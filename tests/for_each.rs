//! `for_each`: a step runs once per element of a list, each element with its
//! own request, `Idempotency-Key`, attempts and result; `parallel` bounds how
//! many are in flight; `max_items` refuses a long list before anything is sent;
//! progress is kept per element across a `kill -9`.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Sink, TestDaemon, http_client, poll_until, step};

fn order(lines: usize) -> Value {
    let line_items: Vec<Value> = (0..lines)
        .map(|n| json!({"sku": format!("SKU-{n}"), "quantity": n + 1, "price": "9.50"}))
        .collect();
    json!({"id": 4501, "line_items": line_items})
}

fn lines_recipe(url: &str, extra: &str) -> String {
    format!(
        r#"trigger: {{webhook: {{}}}}
steps:
  - id: lines
    for_each: "{{{{payload.line_items}}}}"
    as: line
{extra}    http:
      url: '{url}/fulfil'
      json: {{order: "{{{{payload.id}}}}", sku: "{{{{line.sku}}}}", quantity: "{{{{line.quantity}}}}", n: "{{{{index}}}}"}}
  - id: done
    log: "{{{{len steps.lines.items}}}} lines, first {{{{steps.lines.items.0.status}}}}"
"#
    )
}

#[tokio::test]
async fn seven_line_items_make_seven_requests_in_order_each_with_its_fields_and_key() {
    let sink = Sink::start(200, json!({"ok": true})).await;
    let ferry = TestDaemon::start(&[("orders.yaml", &lines_recipe(&sink.url, ""))]).await;

    let (_, accepted) = ferry.post_hook("orders", &order(7)).await;
    let run_id = accepted["run_id"].as_str().expect("run id");
    let run = ferry.wait_for_end(run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");

    let received = sink.received();
    assert_eq!(received.len(), 7);
    for (n, request) in received.iter().enumerate() {
        assert_eq!(
            request.json(),
            json!({"order": 4501, "sku": format!("SKU-{n}"), "quantity": n + 1, "n": n}),
            "element {n} in order with its own fields"
        );
        assert_eq!(
            request.header("idempotency-key"),
            Some(format!("{run_id}.lines.{n}").as_str())
        );
    }

    let lines = step(&run, "lines");
    assert_eq!(lines["status"], "succeeded");
    let items = lines["items"].as_array().expect("the loop's elements");
    assert_eq!(items.len(), 7);
    for (n, item) in items.iter().enumerate() {
        assert_eq!(item["index"], n);
        assert_eq!(item["status"], "succeeded");
        assert_eq!(item["attempts"].as_array().map(Vec::len), Some(1), "{item:#}");
        assert_eq!(item["attempts"][0]["request"]["body"]["sku"], format!("SKU-{n}"));
        assert_eq!(item["attempts"][0]["response"]["status"], 200);
    }
    assert_eq!(
        step(&run, "done")["attempts"][0]["request"]["log"],
        "7 lines, first 200",
        "a later step reads `steps.lines.items`"
    );

    // No elements: the loop succeeds with none, and nothing is sent.
    let (_, accepted) = ferry.post_hook("orders", &json!({"id": 1, "line_items": []})).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(sink.received().len(), 7);
    assert_eq!(step(&run, "done")["attempts"][0]["request"]["log"], "0 lines, first ");
}

#[tokio::test]
async fn parallel_bounds_the_elements_in_flight_and_the_default_is_one_at_a_time() {
    let sink = Sink::slow(Duration::from_millis(60)).await;
    let ferry = TestDaemon::start(&[
        ("two.yaml", &lines_recipe(&sink.url, "    parallel: 2\n")),
        ("one.yaml", &lines_recipe(&sink.url, "")),
    ])
    .await;

    let (_, accepted) = ferry.post_hook("two", &order(6)).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(sink.received().len(), 6);
    assert_eq!(sink.most_in_flight(), 2, "never more than 2, and 2 at once");
    let items = step(&run, "lines")["items"].as_array().expect("items").clone();
    let indexes: Vec<u64> = items.iter().filter_map(|item| item["index"].as_u64()).collect();
    assert_eq!(indexes, [0, 1, 2, 3, 4, 5], "the record keeps the list's order");

    let one = Sink::slow(Duration::from_millis(30)).await;
    let ferry = TestDaemon::start(&[("one.yaml", &lines_recipe(&one.url, ""))]).await;
    let (_, accepted) = ferry.post_hook("one", &order(4)).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(one.received().len(), 4);
    assert_eq!(one.most_in_flight(), 1, "one after the other by default");
}

#[tokio::test]
async fn a_list_over_max_items_fails_the_step_and_sends_nothing() {
    let sink = Sink::start(200, json!({})).await;
    let ferry = TestDaemon::start(&[
        ("orders.yaml", &lines_recipe(&sink.url, "")),
        ("small.yaml", &lines_recipe(&sink.url, "    max_items: 3\n")),
    ])
    .await;

    let (_, accepted) = ferry.post_hook("orders", &order(1001)).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(
        run["error"],
        "step `lines` `for_each`: the list has 1001 items, more than `max_items` (1000); nothing was sent"
    );
    assert_eq!(step(&run, "lines")["status"], "failed");
    let ids: Vec<&str> = run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|step| step["id"].as_str())
        .collect();
    assert_eq!(ids, ["lines"], "the run stopped at the loop");

    let (_, accepted) = ferry.post_hook("small", &order(4)).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    assert!(
        run["error"]
            .as_str()
            .unwrap_or_default()
            .contains("more than `max_items` (3)"),
        "{run:#}"
    );

    let (_, accepted) = ferry.post_hook("orders", &json!({"line_items": {"sku": "A"}})).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(
        run["error"],
        "step `lines` `for_each`: `{{payload.line_items}}` gave an object, not a list"
    );
    assert!(sink.received().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn an_element_retries_on_its_own_and_a_failing_one_stops_the_loop() {
    // The first request (element 0) gets a 503, then everything succeeds.
    let sink = Sink::scripted(&[(503, &[])]).await;
    let retried = lines_recipe(&sink.url, "    retry: {attempts: 3, backoff: 20ms, max: 50ms}\n");
    let ferry = TestDaemon::start(&[("orders.yaml", &retried)]).await;
    let (_, accepted) = ferry.post_hook("orders", &order(3)).await;
    let run_id = accepted["run_id"].as_str().expect("run id").to_owned();
    let run = ferry.wait_for_end(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let keys: Vec<String> = sink
        .received()
        .iter()
        .map(|request| request.header("idempotency-key").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        keys,
        [0, 0, 1, 2].map(|n| format!("{run_id}.lines.{n}")),
        "element 0 again with its key, the others once"
    );
    let items = step(&run, "lines")["items"].as_array().expect("items").clone();
    assert_eq!(items[0]["attempts"].as_array().map(Vec::len), Some(2));
    assert_eq!(items[0]["attempts"][0]["response"]["status"], 503);
    assert_eq!(items[1]["attempts"].as_array().map(Vec::len), Some(1));

    // Element 1 is refused: the step fails naming it, element 2 is never sent.
    let refusing = Sink::scripted(&[(200, &[]), (422, &[])]).await;
    let ferry = TestDaemon::start(&[("orders.yaml", &lines_recipe(&refusing.url, ""))]).await;
    let (_, accepted) = ferry.post_hook("orders", &order(3)).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("step `lines` item 1: "), "{error}");
    assert!(error.contains("422"), "{error}");
    assert_eq!(refusing.received().len(), 2);
    let lines = step(&run, "lines");
    assert_eq!(lines["status"], "failed");
    let statuses: Vec<&str> = lines["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item["status"].as_str())
        .collect();
    assert_eq!(statuses, ["succeeded", "failed"]);
}

#[tokio::test]
async fn when_filters_elements_and_set_loops_too() {
    let sink = Sink::start(200, json!({})).await;
    let recipe = format!(
        r#"trigger: {{webhook: {{}}}}
steps:
  - id: totals
    for_each: "{{{{payload.line_items}}}}"
    set: {{sku: "{{{{item.sku}}}}", double: "{{{{item.quantity}}}}{{{{item.quantity}}}}"}}
  - id: big
    for_each: "{{{{payload.line_items}}}}"
    when: "{{{{gt item.quantity 2}}}}"
    http: {{url: '{}/big', json: {{sku: "{{{{item.sku}}}}"}}}}
  - log: "{{{{steps.totals.items.1.sku}}}} {{{{steps.big.items.0.skipped}}}} {{{{steps.big.items.3.status}}}}"
"#,
        sink.url
    );
    let ferry = TestDaemon::start(&[("orders.yaml", &recipe)]).await;
    let (_, accepted) = ferry.post_hook("orders", &order(4)).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let skus: Vec<Value> = sink
        .received()
        .iter()
        .map(|request| request.json()["sku"].clone())
        .collect();
    assert_eq!(
        skus,
        [json!("SKU-2"), json!("SKU-3")],
        "only the elements whose `when` holds"
    );
    let statuses: Vec<&str> = step(&run, "big")["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item["status"].as_str())
        .collect();
    assert_eq!(statuses, ["skipped", "skipped", "succeeded", "succeeded"]);
    assert_eq!(step(&run, "step3")["attempts"][0]["request"]["log"], "SKU-1 true 200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kill_9_the_recorded_elements_are_not_sent_again() {
    // Holds the first request of element 2 (the daemon is killed meanwhile).
    let sink = support::KeyedSink::start(|key, seen| key.ends_with(".lines.2") && seen == 1).await;
    let url = sink.url.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("recipes")).expect("recipes dir");
    std::fs::write(dir.path().join("recipes/orders.yaml"), lines_recipe(&url, "")).expect("recipe");

    let port = support::free_address().port();
    let base = format!("http://127.0.0.1:{port}");
    let http = http_client();
    let mut ferry = support::Running(support::ferry_serve(dir.path(), port).spawn().expect("start ferry"));
    let accepted = support::post_hook_when_up(&http, &base, "orders", &order(5)).await;
    let run_id = accepted["run_id"].as_str().expect("run id").to_owned();

    // Element 2's request went out: elements 0 and 1 ended, and their end was
    // stored before it was sent.
    poll_until("element 2's request", || async {
        let keys = sink.keys();
        keys.iter().any(|key| key.ends_with(".lines.2")).then_some(())
    })
    .await;
    ferry.0.kill().expect("kill -9");
    ferry.0.wait().expect("reap");

    let _ferry = support::Running(support::ferry_serve(dir.path(), port).spawn().expect("restart ferry"));
    let run = support::wait_for_success(&http, &base, &run_id).await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for key in sink.keys() {
        *counts.entry(key).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = [(0, 1), (1, 1), (2, 2), (3, 1), (4, 1)]
        .into_iter()
        .map(|(n, count)| (format!("{run_id}.lines.{n}"), count))
        .collect();
    assert_eq!(
        counts, expected,
        "0 and 1 not again; 2 again with the same key (at least once); 3 and 4 once"
    );
    assert_eq!(
        step(&run, "done")["attempts"][0]["request"]["log"],
        "5 lines, first 200",
        "the elements recorded before the kill are in `items`"
    );
}

#[test]
fn check_places_the_mistakes_of_loops() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("bad.yaml"),
        r#"trigger: {webhook: {}}
steps:
  - id: text
    for_each: "line items"
    log: x
  - id: mixed
    for_each: "items: {{payload.items}}"
    log: x
  - id: lonely
    as: line
    log: "{{line.sku}}"
  - id: hidden
    for_each: "{{payload.items}}"
    as: payload
    log: x
  - id: zero
    for_each: "{{payload.items}}"
    parallel: 0
    log: "{{item.sku}} {{index}} {{line.sku}}"
  - log: "{{steps.zero.status}} {{len steps.zero.items}}"
"#,
    )
    .expect("write recipe");
    let (output_code, _, stderr) = support::ferry_on("check", dir.path());
    assert_eq!(output_code, Some(1), "{stderr}");
    assert!(stderr.contains("bad.yaml:18:15:"), "{stderr}");
    assert!(stderr.contains("`steps[4].parallel` is 0; it must be"), "{stderr}");
    support::replace_in(&dir.path().join("bad.yaml"), "parallel: 0", "parallel: 2");
    let (_, _, stderr) = support::ferry_on("check", dir.path());
    for wanted in [
        "bad.yaml:4:15: step `text` `for_each` is the text `line items`, not a list; write a template that gives one",
        "bad.yaml:7:15: step `mixed` `for_each` must be one `{{…}}` expression giving a list",
        "bad.yaml:10:9: step `lonely`: `as` belongs with `for_each`, which this step does not have",
        "bad.yaml:14:9: step `hidden` `as`: `payload` cannot name the element",
    ] {
        assert!(stderr.contains(wanted), "{wanted}\n{stderr}");
    }
    assert!(
        stderr.contains("bad.yaml:20:") && stderr.contains(
            "`steps.zero.status` reads `status` of `zero`, a `for_each` step: its result is `items`, one entry per element (`steps.zero.items.0.status`, or `pluck steps.zero.items \"status\"`)"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("`steps.zero.items`"), "{stderr}");
    assert!(
        stderr.contains("bad.yaml:19:") && stderr.contains("`line`"),
        "a name the loop does not give: {stderr}"
    );
    assert!(
        !stderr.contains("`item.sku` starts") && !stderr.contains("`index` starts"),
        "the loop gives `item` and `index`: {stderr}"
    );
}

#[test]
fn ferry_test_expects_each_elements_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("orders.yaml"),
        lines_recipe("https://shop.example.com", ""),
    )
    .expect("write recipe");
    std::fs::write(
        dir.path().join("orders.test.yaml"),
        r#"- name: two lines
  payload: {id: 7, line_items: [{sku: A, quantity: 1}, {sku: B, quantity: 3}]}
  expect:
    steps:
      lines:
        items:
          - {url: https://shop.example.com/fulfil, json: {sku: A, quantity: 1, n: 0}}
          - {json: {sku: B, quantity: 3, n: 1}}
      done: {log: "2 lines, first 200"}
- name: a wrong expectation is named by element
  payload: {id: 7, line_items: [{sku: A, quantity: 1}]}
  expect:
    steps:
      lines:
        items:
          - {json: {sku: Z}}
          - {json: {sku: B}}
"#,
    )
    .expect("write test");
    let (output_code, stdout, _) = support::ferry_on("test", dir.path());
    assert_eq!(output_code, Some(1), "{stdout}");
    assert!(stdout.contains("step `lines` items"), "{stdout}");
    assert!(
        stdout.contains("2 elements") && stdout.contains("1 element\n"),
        "{stdout}"
    );
    assert!(stdout.contains("step `lines` item 0 json.sku"), "{stdout}");
    assert!(stdout.ends_with("1 files, 2 cases, 1 failed\n"), "{stdout}");
}

#[tokio::test]
async fn the_status_page_and_runs_show_list_each_elements_attempts() {
    let refusing = Sink::scripted(&[(200, &[]), (422, &[])]).await;
    let ferry = TestDaemon::start(&[("orders.yaml", &lines_recipe(&refusing.url, ""))]).await;
    let (_, accepted) = ferry.post_hook("orders", &order(3)).await;
    let run_id = accepted["run_id"].as_str().expect("run id").to_owned();
    let run = ferry.wait_for_end(&run_id).await;
    assert_eq!(run["status"], "failed", "{run:#}");

    let page = ferry.get_page(&format!("/runs/{run_id}")).await;
    for wanted in [
        r#"Item 0 <span class="status succeeded">"#,
        r#"Item 1 <span class="status failed">"#,
        "Response: <code>422</code>",
        "&quot;sku&quot;: &quot;SKU-1&quot;",
    ] {
        assert!(page.contains(wanted), "{wanted} in\n{page}");
    }
    assert!(!page.contains("Item 2"), "element 2 never began");

    let TestDaemon { daemon, dir, .. } = ferry;
    daemon.shutdown().await.expect("the daemon stops");
    let database = format!("sqlite://{}", dir.path().join("ferry.db").display());
    let (code, shown, stderr) = support::ferry(&["runs", "show", &run_id, "--database", &database]);
    assert_eq!(code, Some(0), "{stderr}");
    let elements: Vec<&str> = shown.lines().filter(|line| line.starts_with("  item ")).collect();
    assert_eq!(elements, ["  item 0  succeeded", "  item 1  failed"], "{shown}");
    assert!(shown.contains("      <- 422"), "{shown}");
}

#[tokio::test]
async fn the_results_a_run_keeps_are_capped_as_a_whole() {
    // Each answer is about 40 KiB; the run may keep 100 KiB of results.
    let sink = Sink::start(200, json!({"blob": "x".repeat(40 * 1024)})).await;
    let recipe = format!(
        r#"trigger: {{webhook: {{}}}}
steps:
  - id: first
    http: {{url: '{url}/a'}}
  - id: second
    http: {{url: '{url}/b'}}
  - id: third
    http: {{url: '{url}/c'}}
  - log: "{{{{len steps.first.body.blob}}}}"
"#,
        url = sink.url
    );
    let setup = support::Setup {
        render_budget: Some(ferry::template::RenderBudget {
            results: 100 * 1024,
            ..ferry::template::RenderBudget::default()
        }),
        ..support::Setup::default()
    };
    let ferry = TestDaemon::start_with(
        &[("steps.yaml", &recipe), ("orders.yaml", &lines_recipe(&sink.url, ""))],
        setup,
    )
    .await;
    let (_, accepted) = ferry.post_hook("steps", &json!({})).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("step `third`: the step results this run keeps for its templates would take 121 KiB, over FERRY_RUN_MAX_RESULTS (100 KiB)"),
        "{error}"
    );
    assert_eq!(step(&run, "third")["status"], "failed");

    // A loop's elements count one by one: the third element's answer is refused.
    let (_, accepted) = ferry.post_hook("orders", &order(5)).await;
    let run = ferry.wait_for_end(accepted["run_id"].as_str().expect("run id")).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("step `lines` item 2: the step results"), "{error}");
    assert_eq!(sink.received().len(), 3 + 3, "no element after the one refused");
}

fn group_recipe(url: &str) -> String {
    format!(
        r#"trigger: {{webhook: {{}}}}
steps:
  - id: per_line
    for_each: "{{{{payload.line_items}}}}"
    as: line
    when: "{{{{gt line.quantity 1}}}}"
    steps:
      - id: lookup
        http: {{url: '{url}/products', json: {{sku: "{{{{line.sku}}}}"}}}}
      - id: reserve
        http: {{url: '{url}/reservations', json: {{seen: "{{{{steps.lookup.body.uri}}}}", n: "{{{{index}}}}"}}}}
  - id: done
    log: "{{{{len steps.per_line.items}}}} {{{{steps.per_line.items.0.skipped}}}} {{{{steps.per_line.items.2.reserve.status}}}}"
"#
    )
}

#[tokio::test]
async fn a_group_runs_its_steps_per_element_each_reading_the_element_s_earlier_steps() {
    let sink = Sink::echo().await;
    let ferry = TestDaemon::start(&[("orders.yaml", &group_recipe(&sink.url))]).await;
    let (_, accepted) = ferry.post_hook("orders", &order(3)).await;
    let run_id = accepted["run_id"].as_str().expect("run id").to_owned();
    let run = ferry.wait_for_end(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");

    // Element 0 (quantity 1) is skipped; 1 and 2 run lookup then reserve.
    let sent: Vec<(String, Option<String>, Value)> = sink
        .received()
        .iter()
        .map(|request| {
            (
                request.path_and_query.clone(),
                request.header("idempotency-key").map(str::to_owned),
                request.json(),
            )
        })
        .collect();
    let expected = [
        ("/products", "lookup.1", json!({"sku": "SKU-1"})),
        ("/reservations", "reserve.1", json!({"seen": "/products", "n": 1})),
        ("/products", "lookup.2", json!({"sku": "SKU-2"})),
        ("/reservations", "reserve.2", json!({"seen": "/products", "n": 2})),
    ]
    .map(|(path, key, body)| (path.to_owned(), Some(format!("{run_id}.{key}")), body));
    assert_eq!(sent, expected);

    assert_eq!(step(&run, "done")["attempts"][0]["request"]["log"], "3 true 200");
    let element_statuses = |id: &str| -> Vec<String> {
        step(&run, id)["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|item| format!("{} {}", item["index"], item["status"].as_str().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        element_statuses("per_line"),
        ["0 skipped", "1 succeeded", "2 succeeded"]
    );
    assert_eq!(element_statuses("lookup"), ["1 succeeded", "2 succeeded"]);
    assert_eq!(element_statuses("reserve"), ["1 succeeded", "2 succeeded"]);
    assert_eq!(step(&run, "per_line")["kind"], "group");
    assert_eq!(step(&run, "reserve")["status"], "succeeded");
}

#[test]
fn check_places_the_mistakes_of_groups_and_ferry_test_expects_their_steps() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("bad.yaml"),
        r#"trigger: {webhook: {}}
steps:
  - id: no_loop
    steps:
      - log: x
  - id: group
    for_each: "{{payload.items}}"
    steps:
      - id: inner
        for_each: "{{item.parts}}"
        log: x
      - id: typo
        lgo: "{{item.sku}}"
  - log: "{{steps.inner.body}}"
"#,
    )
    .expect("write recipe");
    let (output_code, _, stderr) = support::ferry_on("check", dir.path());
    assert_eq!(output_code, Some(1), "{stderr}");
    assert!(
        stderr.contains("bad.yaml:13:9: unknown key `lgo` in a step"),
        "{stderr}"
    );
    support::replace_in(&dir.path().join("bad.yaml"), "lgo", "log");
    let (_, _, stderr) = support::ferry_on("check", dir.path());
    for wanted in [
        "bad.yaml:5:7: step `no_loop`: `steps` inside a step belongs with `for_each`",
        "bad.yaml:9:9: step `inner`: a step of the group `group` cannot have its own `for_each`; loops do not nest",
    ] {
        assert!(stderr.contains(wanted), "{wanted}\n{stderr}");
    }
    assert!(
        stderr.contains("bad.yaml:14:") && stderr.contains("names no earlier step `inner`"),
        "a group's steps are not read after it: {stderr}"
    );

    let good = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        good.path().join("orders.yaml"),
        group_recipe("https://shop.example.com"),
    )
    .expect("write recipe");
    std::fs::write(
        good.path().join("orders.test.yaml"),
        r#"- name: each element runs the group's steps
  payload: {line_items: [{sku: A, quantity: 2}, {sku: B, quantity: 1}]}
  responses:
    lookup: {body: {uri: /products/A}}
  expect:
    steps:
      lookup:
        items:
          - {url: https://shop.example.com/products, json: {sku: A}}
      reserve:
        items:
          - {json: {seen: /products/A, n: 0}}
      done: {log: "2  "}
"#,
    )
    .expect("write test");
    let (output_code, stdout, _) = support::ferry_on("test", good.path());
    assert_eq!(output_code, Some(0), "{stdout}");
}

#[tokio::test]
async fn a_group_step_retried_resumes_its_element_without_sending_its_earlier_steps_again() {
    // lookup of element 0 succeeds, its reserve gets a 503, then all succeed.
    let sink = Sink::scripted(&[(200, &[]), (503, &[])]).await;
    let recipe = group_recipe(&sink.url)
        .replace("    when: \"{{gt line.quantity 1}}\"\n", "")
        .replace(
            "      - id: reserve\n",
            "      - id: reserve\n        retry: {attempts: 2, backoff: 20ms, max: 50ms}\n",
        );
    let ferry = TestDaemon::start(&[("orders.yaml", &recipe)]).await;
    let (_, accepted) = ferry.post_hook("orders", &order(2)).await;
    let run_id = accepted["run_id"].as_str().expect("run id").to_owned();
    let run = ferry.wait_for_end(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let keys: Vec<String> = sink
        .received()
        .iter()
        .filter_map(|request| request.header("idempotency-key").map(str::to_owned))
        .collect();
    assert_eq!(
        keys,
        ["lookup.0", "reserve.0", "reserve.0", "lookup.1", "reserve.1"].map(|key| format!("{run_id}.{key}")),
        "the retry resends reserve only, with its key"
    );
    let reserve = step(&run, "reserve");
    assert_eq!(reserve["items"][0]["attempts"].as_array().map(Vec::len), Some(2));
}
