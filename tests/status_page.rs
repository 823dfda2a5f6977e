//! The status page in headless Chromium: from `/` to a failed run's page, press
//! replay, and watch the new run succeed. Also the login form when tokens are
//! set. Without Chromium the test says so and passes on a laptop; in CI
//! (`CI=true`) `.ci/run` installs it, and its absence fails the test.

use crate::support;

use serde_json::json;
use support::browser::{Browser, installed, processes_in_group};
use support::{Setup, Sink, TestDaemon, poll_until};

fn browser_or_skip() -> Option<(&'static str, &'static str)> {
    let found = installed();
    if found.is_none() {
        assert!(
            std::env::var("CI").is_err(),
            "CI must have chromium and chromium-driver (.ci/run installs them)"
        );
        println!(
            "skipped: /usr/bin/chromium and /usr/bin/chromedriver are not installed (apt-get install chromium chromium-driver)"
        );
    }
    found
}

/// Waits until the browser is at a URL `expected` accepts, and gives it.
async fn arrive(browser: &Browser, expected: impl Fn(&str) -> bool) -> String {
    poll_until("the browser to reach the next page", || async {
        let url = browser.url().await;
        expected(&url).then_some(url)
    })
    .await
}

#[tokio::test]
async fn a_failed_run_is_found_from_the_front_page_and_replayed_in_the_browser() {
    let Some((driver, chromium)) = browser_or_skip() else {
        return;
    };
    // The CRM refuses the first contact, then accepts.
    let crm = Sink::scripted(&[(502, &[])]).await;
    let recipe = format!(
        "description: Create a CRM contact\ntrigger: {{webhook: {{path: signup}}}}\nsteps:\n  - id: contact\n    http:\n      url: '{}/contacts'\n      json: {{email: '{{{{payload.email}}}}', plan: '{{{{payload.plan}}}}'}}\n",
        crm.url
    );
    let ferry = TestDaemon::start_with(
        &[("signup.yaml", &recipe)],
        Setup {
            api_tokens: Some("page-token-1234"),
            ..Setup::default()
        },
    )
    .await;
    let (_, answer) = ferry
        .post_hook("signup", &json!({"email": "ada@example.com", "plan": "team"}))
        .await;
    let failed = answer["run_id"].as_str().expect("run_id").to_owned();
    assert_eq!(ferry.wait_for_end(&failed).await["status"], "failed");

    let browser = Browser::start(driver, chromium).await;
    // Tokens are set: the page asks for one first.
    browser.goto(&format!("{}/", ferry.base)).await;
    assert!(browser.url().await.ends_with("/login"), "{}", browser.url().await);
    let field = browser.find("#token").await.expect("the token field");
    browser.type_into(&field, "page-token-1234").await;
    browser
        .click(&browser.find("#sign-in").await.expect("the sign-in button"))
        .await;
    // A click that submits a form returns before the next page has loaded.
    arrive(&browser, |url| url == format!("{}/", ferry.base)).await;

    // The front page lists the recipe and the failed run; follow it.
    let link = browser
        .find(&format!("#runs a[href='/runs/{failed}']"))
        .await
        .expect("the failed run is listed");
    let row_status = browser.find("#runs .status.failed").await.expect("its status");
    assert_eq!(browser.text(&row_status).await, "failed");
    browser.click(&link).await;
    arrive(&browser, |url| url.ends_with(&format!("/runs/{failed}"))).await;
    let error = browser.find("#run-error").await.expect("the run's error");
    assert!(browser.text(&error).await.contains("HTTP 502 Bad Gateway"));

    // Replay: the new run's page, which shows it succeed once it has run.
    browser
        .click(&browser.find("#replay").await.expect("the replay button"))
        .await;
    let replay_url = arrive(&browser, |url| url.contains("/runs/") && !url.ends_with(&failed)).await;
    let replay = replay_url.rsplit('/').next().expect("run id").to_owned();
    let status = poll_until("the replay to succeed on its page", || async {
        browser.goto(&replay_url).await;
        let status = browser.find("#run-status").await?;
        let text = browser.text(&status).await;
        (text == "succeeded").then_some(text)
    })
    .await;
    assert_eq!(status, "succeeded");
    let original = browser
        .find("a[href^='/runs/']")
        .await
        .expect("the link to the original");
    assert_eq!(
        browser.attribute(&original, "href").await,
        Some(format!("/runs/{failed}"))
    );
    assert_eq!(crm.received().len(), 2, "the replay sent the request again");
    let (_, document) = ferry.get_json(&format!("/api/v1/runs/{replay}")).await;
    assert_eq!(document["replay_of"], failed.as_str(), "{document}");

    if let Ok(path) = std::env::var("FERRY_SCREENSHOT") {
        // `FERRY_SCREENSHOT=docs/img/run-page.png cargo test --test status_page`
        browser.goto(&format!("{}/runs/{failed}", ferry.base)).await;
        std::fs::write(&path, browser.screenshot().await).expect("write the screenshot");
    }

    // The browser ends with the test: the driver and every Chromium process.
    let group = browser.process_group();
    let running = processes_in_group(group);
    assert!(running.len() >= 2, "the driver and Chromium share a group: {running:?}");
    drop(browser);
    poll_until("the browser's processes to end", || async {
        processes_in_group(group).is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn pages_need_the_token_cookie_when_tokens_are_set() {
    let ferry = TestDaemon::start_with(
        &[("hello.yaml", "trigger: {webhook: {}}\nsteps: [{log: hi}]\n")],
        Setup {
            api_tokens: Some("page-token-1234"),
            api_read_tokens: Some("reader-token-5678"),
            ..Setup::default()
        },
    )
    .await;
    let (_, answer) = ferry.post_hook("hello", &json!({})).await;
    let run_id = answer["run_id"].as_str().expect("run_id").to_owned();
    ferry.wait_for_end(&run_id).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    let anonymous = http
        .get(format!("{}/runs/{run_id}", ferry.base))
        .send()
        .await
        .expect("GET");
    assert_eq!(anonymous.status().as_u16(), 303);
    assert_eq!(anonymous.headers()["location"], "/login");

    let wrong = http
        .post(format!("{}/login", ferry.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=guess")
        .send()
        .await
        .expect("POST");
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());

    let signed_in = http
        .post(format!("{}/login", ferry.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=reader-token-5678")
        .send()
        .await
        .expect("POST");
    assert_eq!(signed_in.status().as_u16(), 303);
    let cookie = signed_in.headers()["set-cookie"].to_str().expect("cookie").to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().expect("name=value");

    let page = http
        .get(format!("{}/runs/{run_id}", ferry.base))
        .header("cookie", pair)
        .send()
        .await
        .expect("GET");
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.expect("html").contains(&run_id));
    let replay = http
        .post(format!("{}/runs/{run_id}/replay", ferry.base))
        .header("cookie", pair)
        .send()
        .await
        .expect("POST");
    assert_eq!(replay.status().as_u16(), 403, "a read token may not replay");

    let wrong_method = http.delete(format!("{}/", ferry.base)).send().await.expect("DELETE");
    assert_eq!(wrong_method.status().as_u16(), 405);
    assert_eq!(wrong_method.headers()["allow"], "GET,HEAD");
    assert_eq!(wrong_method.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn the_front_page_lists_recipes_a_hundred_at_a_time() {
    let texts: Vec<(String, String)> = (0..150)
        .map(|n| {
            (
                format!("r{n:03}.yaml"),
                "trigger: {webhook: {}}\nsteps: [{log: ok}]\n".to_owned(),
            )
        })
        .collect();
    let files: Vec<(&str, &str)> = texts
        .iter()
        .map(|(name, text)| (name.as_str(), text.as_str()))
        .collect();
    let ferry = TestDaemon::start(&files).await;
    let page = |path: String| {
        let http = ferry.http.clone();
        let url = format!("{}{path}", ferry.base);
        async move { http.get(url).send().await.expect("page").text().await.expect("html") }
    };
    let rows = |html: &str| html.matches("<a href=\"/?recipe=r").count();

    let first = page("/".to_owned()).await;
    assert_eq!(rows(&first), 100, "a hundred recipes on the first page");
    assert!(first.contains("/?recipe=r000") && first.contains("/?recipe=r099") && !first.contains("/?recipe=r100"));
    assert!(
        first.contains("<input name=\"recipe\""),
        "past a page, the run filter is a text field"
    );
    let more = first
        .split("href=\"")
        .filter_map(|rest| rest.split('"').next())
        .find(|link| link.contains("recipes_after"))
        .expect("a link to more recipes")
        .replace("&#x3D;", "=")
        .replace("&amp;", "&");
    let second = page(more).await;
    assert_eq!(rows(&second), 50, "{second}");
    assert!(second.contains("/?recipe=r100") && second.contains("/?recipe=r149"));
    assert!(!second.contains("recipes_after"), "the last page links to no more");
}
