//! Headless Chromium driven through ChromeDriver's WebDriver protocol (W3C JSON
//! over HTTP on 127.0.0.1), with the reqwest client the tests already use: the
//! few commands a page test needs, without a WebDriver crate and its TLS stack.

use std::io::{Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// The element key of the W3C protocol.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session; the driver and every browser process it started end with
/// it, also when the test fails.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
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
            // A group of its own: Chromium's processes are the driver's children
            // and grandchildren, and a kill of the driver alone leaves them running.
            .process_group(0)
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

impl Browser {
    /// The process group of the driver and the browser it started.
    pub fn process_group(&self) -> u32 {
        self.driver.id()
    }

    /// Ends the WebDriver session (the driver quits Chromium) with a plain
    /// blocking request: a drop cannot wait for the async client.
    fn quit_session(&self) {
        let Some((address, path)) = self
            .session
            .strip_prefix("http://")
            .and_then(|rest| rest.split_once('/'))
        else {
            return;
        };
        let Ok(mut stream) = std::net::TcpStream::connect(address) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request =
            format!("DELETE /{path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        if stream.write_all(request.as_bytes()).is_ok() {
            let _ = stream.read_to_end(&mut Vec::new());
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.quit_session();
        // Whatever is still running of the group goes too.
        if let Some(group) = rustix::process::Pid::from_raw(self.driver.id() as i32) {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = self.driver.wait();
    }
}

/// Processes alive in a process group (Linux `/proc`), zombies aside.
pub fn processes_in_group(group: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the command's closing parenthesis: state, ppid, pgrp.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            fields.first() != Some(&"Z") && fields.get(2).and_then(|group| group.parse::<u32>().ok()) == Some(group)
        })
        .collect()
}
