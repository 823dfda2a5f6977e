//! Headless Chromium driven through ChromeDriver's WebDriver protocol (W3C JSON
//! over HTTP on 127.0.0.1), with the reqwest client the tests already use: the
//! few commands a page test needs, without a WebDriver crate and its TLS stack.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// The element key of the W3C protocol.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session; the driver process ends with it.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
}

/// Where ChromeDriver and Chromium are, if installed (Debian's packages).
pub fn installed() -> Option<(&'static str, &'static str)> {
    let driver = "/usr/bin/chromedriver";
    let chromium = "/usr/bin/chromium";
    (std::path::Path::new(driver).exists() && std::path::Path::new(chromium).exists()).then_some((driver, chromium))
}

impl Browser {
    pub async fn start(driver: &str, chromium: &str) -> Self {
        let port = super::free_address().port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // Finding an element waits for it (up to 10 s) while a page loads.
            "timeouts": {"implicit": 10000},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                         "--disable-component-update", "--no-first-run", "--window-size=1280,1000"],
            },
        }}});
        let session = super::poll_until("chromedriver to start a session", || {
            let (http, base, capabilities) = (&http, &base, &capabilities);
            async move {
                let response = http
                    .post(format!("{base}/session"))
                    .json(capabilities)
                    .send()
                    .await
                    .ok()?;
                let answer: Value = response.json().await.ok()?;
                answer["value"]["sessionId"]
                    .as_str()
                    .map(|id| format!("{base}/session/{id}"))
            }
        })
        .await;
        Self { driver, http, session }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("webdriver command")
            .json()
            .await
            .expect("webdriver answer");
        if answer["value"].get("error").is_some() {
            panic!("webdriver {path}: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element matching a CSS selector, if any.
    pub async fn find(&self, css: &str) -> Option<String> {
        let found = self
            .command(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found.as_array()?.first()?[ELEMENT].as_str().map(str::to_owned)
    }

    pub async fn text(&self, element: &str) -> String {
        let text = self
            .command(reqwest::Method::GET, &format!("/element/{element}/text"), None)
            .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    pub async fn click(&self, element: &str) {
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    pub async fn attribute(&self, element: &str, name: &str) -> Option<String> {
        let value = self
            .command(
                reqwest::Method::GET,
                &format!("/element/{element}/attribute/{name}"),
                None,
            )
            .await;
        value.as_str().map(str::to_owned)
    }

    pub async fn type_into(&self, element: &str, text: &str) {
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let encoded = self.command(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .expect("a base64 PNG")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
