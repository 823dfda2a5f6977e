//! Poll pagination against a loopback feed of three pages, in each mode (the
//! `Link` header, a next URL in the body, a cursor sent back as a query
//! parameter): every item of every page runs once, also across a restart; a
//! page that fails fails the poll and marks nothing seen; `max_pages` bounds it.

use crate::support;

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use support::{Setup, Sink, TestDaemon, poll_until};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Link,
    Next,
    Cursor,
}

#[derive(Clone)]
struct Feed {
    mode: Mode,
    base: Arc<Mutex<String>>,
    items: Arc<Mutex<Vec<String>>>,
    failing_page: Arc<Mutex<Option<usize>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

const PAGE: usize = 2;

impl Feed {
    async fn start(mode: Mode, items: &[&str]) -> Self {
        let feed = Feed {
            mode,
            base: Arc::default(),
            items: Arc::new(Mutex::new(items.iter().map(ToString::to_string).collect())),
            failing_page: Arc::default(),
            requests: Arc::default(),
        };
        let router = axum::Router::new()
            .route("/feed", axum::routing::get(page))
            .with_state(feed.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        *feed.base.lock().expect("lock") = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        feed
    }

    fn url(&self) -> String {
        format!("{}/feed", self.base.lock().expect("lock"))
    }

    fn polls(&self) -> usize {
        self.requests
            .lock()
            .expect("lock")
            .iter()
            .filter(|query| is_first_page(query))
            .count()
    }
}

fn is_first_page(query: &str) -> bool {
    !query.contains("page=") && !query.contains("cursor=")
}

async fn page(
    State(feed): State<Feed>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> impl IntoResponse {
    let mut described: Vec<String> = query.iter().map(|(name, value)| format!("{name}={value}")).collect();
    described.sort();
    feed.requests.lock().expect("lock").push(described.join("&"));
    let number: usize = match feed.mode {
        Mode::Cursor => query
            .get("cursor")
            .and_then(|cursor| cursor.strip_prefix('c'))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1),
        _ => query.get("page").and_then(|page| page.parse().ok()).unwrap_or(1),
    };
    if *feed.failing_page.lock().expect("lock") == Some(number) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            HeaderMap::new(),
            axum::Json(json!({"error": "down"})),
        );
    }
    let items = feed.items.lock().expect("lock").clone();
    let pages = items.len().div_ceil(PAGE).max(1);
    let on_page: Vec<Value> = items
        .iter()
        .skip((number - 1) * PAGE)
        .take(PAGE)
        .map(|id| json!({"id": id}))
        .collect();
    let more = number < pages;
    let mut headers = HeaderMap::new();
    let body = match feed.mode {
        Mode::Link => {
            if more {
                let link = format!(
                    "</feed?page={}>; rel=\"next\", </feed?page={pages}>; rel=\"last\"",
                    number + 1
                );
                headers.insert("link", link.parse().expect("header"));
            }
            json!({"items": on_page})
        }
        Mode::Next => {
            let next = more.then(|| format!("{}?page={}", feed.url(), number + 1));
            json!({"items": on_page, "links": {"next": next}})
        }
        Mode::Cursor => {
            let next = more.then(|| format!("c{}", number + 1));
            json!({"items": on_page, "meta": {"next_cursor": next}})
        }
    };
    (StatusCode::OK, headers, axum::Json(body))
}

fn recipe(feed: &Feed, sink: &Sink, max_pages: Option<u32>) -> String {
    let paginate = match feed.mode {
        Mode::Link => "{next: link}",
        Mode::Next => "{next: \"$.links.next\"}",
        Mode::Cursor => "{cursor: \"$.meta.next_cursor\", param: cursor}",
    };
    let max_pages = max_pages
        .map(|pages| format!("    max_pages: {pages}\n"))
        .unwrap_or_default();
    format!(
        "trigger:\n  poll:\n    every: 1s\n    http: {{url: '{}'}}\n    items: '$.items[*]'\n    key: '{{{{item.id}}}}'\n    first: emit\n    paginate: {paginate}\n{max_pages}steps:\n  - http: {{url: '{}/got', json: {{id: '{{{{payload.id}}}}'}}}}\n",
        feed.url(),
        sink.url
    )
}

fn delivered(sink: &Sink) -> Vec<String> {
    let mut ids: Vec<String> = sink
        .received()
        .iter()
        .map(|request| request.json()["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn polls_past(feed: &Feed, count: usize) {
    let target = feed.polls() + count;
    poll_until(&format!("poll number {target}"), || async {
        (feed.polls() >= target).then_some(())
    })
    .await;
}

async fn wait_for(sink: &Sink, expected: &[&str]) {
    poll_until(&format!("the sink to have received {expected:?}"), || async {
        (delivered(sink) == expected).then_some(())
    })
    .await;
}

async fn every_page_once_across_a_restart(mode: Mode) {
    let feed = Feed::start(mode, &["a", "b", "c", "d", "e", "f"]).await;
    let sink = Sink::start(200, json!({"ok": true})).await;
    let ferry = TestDaemon::start(&[("feed.yaml", &recipe(&feed, &sink, None))]).await;
    wait_for(&sink, &["a", "b", "c", "d", "e", "f"]).await;
    polls_past(&feed, 2).await;
    assert_eq!(delivered(&sink), ["a", "b", "c", "d", "e", "f"], "each item once");

    let TestDaemon { daemon, dir, .. } = ferry;
    daemon.shutdown().await.expect("clean shutdown");
    let recipes = dir.path().join("recipes");
    let _ferry = TestDaemon::start_in(dir, recipes, Setup::default()).await;
    feed.items.lock().expect("lock").insert(3, "g".to_owned());
    wait_for(&sink, &["a", "b", "c", "d", "e", "f", "g"]).await;
    polls_past(&feed, 2).await;
    assert_eq!(delivered(&sink).len(), 7, "nothing again after the restart");
    let requests = feed.requests.lock().expect("lock").clone();
    match mode {
        Mode::Cursor => assert!(requests.iter().any(|query| query == "cursor=c4"), "{requests:?}"),
        _ => assert!(requests.iter().any(|query| query == "page=4"), "{requests:?}"),
    }
}

#[tokio::test]
async fn link_header_pages_are_all_read() {
    every_page_once_across_a_restart(Mode::Link).await;
}

#[tokio::test]
async fn next_urls_in_the_body_are_followed() {
    every_page_once_across_a_restart(Mode::Next).await;
}

#[tokio::test]
async fn cursors_are_sent_back() {
    every_page_once_across_a_restart(Mode::Cursor).await;
}

#[tokio::test]
async fn a_failed_page_fails_the_poll_and_max_pages_bounds_it() {
    let feed = Feed::start(Mode::Next, &["a", "b", "c", "d", "e", "f"]).await;
    *feed.failing_page.lock().expect("lock") = Some(2);
    let sink = Sink::start(200, json!({"ok": true})).await;
    let ferry = TestDaemon::start(&[("feed.yaml", &recipe(&feed, &sink, Some(2)))]).await;
    polls_past(&feed, 2).await;
    assert!(delivered(&sink).is_empty(), "no item of a failed poll runs");
    let (_, recipe) = ferry.get_json("/api/v1/recipes/feed").await;
    assert_eq!(recipe["last_poll"]["status"], "failed", "{recipe:#}");

    *feed.failing_page.lock().expect("lock") = None;
    wait_for(&sink, &["a", "b", "c", "d"]).await;
    polls_past(&feed, 2).await;
    assert_eq!(delivered(&sink), ["a", "b", "c", "d"], "two pages at most");
}

#[test]
fn check_places_paginate_problems() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("a.yaml"),
        "trigger:\n  poll:\n    every: 1m\n    http: {url: 'https://x.example/feed'}\n    paginate: {cursor: '$.meta.next'}\nsteps: [{log: x}]\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("b.yaml"),
        "trigger:\n  poll:\n    every: 1m\n    http: {url: 'https://x.example/feed'}\n    paginate: {next: '$.links[', param: p}\nsteps: [{log: x}]\n",
    )
    .expect("write");
    let (output_code, _, stderr) = support::ferry_on("check", dir.path());
    assert_eq!(output_code, Some(1), "{stderr}");
    assert!(
        stderr.contains("a.yaml:5:15: poll `paginate` with `cursor` needs `param`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("b.yaml:5:41: poll `paginate`: `param` goes with `cursor`, not with `next`"),
        "{stderr}"
    );
}
