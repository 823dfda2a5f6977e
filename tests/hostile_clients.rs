//! Hostile and broken clients: a thousand malformed requests get only 4xx
//! answers and start no run while valid webhooks keep being served, and a client
//! that sends its headers a byte at a time is cut off without holding up others.

use crate::support;

use std::time::{Duration, Instant};

use ferry::api::HookLimitSettings;
use ferry::api::server::ConnectionLimits;
use serde_json::json;
use support::{Setup, TestDaemon};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "hook-token-abcdef";

/// Sends raw bytes on a new connection, closes the sending side, and gives the
/// status of the answer (`None`: closed without one).
async fn raw(address: &str, request: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(address).await.ok()?;
    // The server may answer (and close) before reading everything: not an error.
    let _ = stream.write_all(request).await;
    let _ = stream.shutdown().await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    answer.extend_from_slice(&buffer[..read]);
                    if answer.len() > 12 {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server neither answered nor closed within 5 s");
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// The malformed request number `n`, cycling through the kinds.
fn malformed(n: usize) -> (&'static str, Vec<u8>) {
    let post = |content_type: &str, body: &[u8], extra: &str| {
        let mut request = format!(
            "POST /hooks/guarded HTTP/1.1\r\nhost: x\r\nx-token: {TOKEN}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{extra}\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        request
    };
    match n % 10 {
        0 => ("bad JSON", post("application/json", br#"{"a": [1, 2"#, "")),
        1 => ("invalid UTF-8", post("application/json", b"{\"a\": \"\xff\xfe\"}", "")),
        2 => ("a form declared as JSON", post("application/json", b"a=1&b=2", "")),
        3 => ("oversized body", post("application/json", &vec![b' '; 70_000], "")),
        4 => (
            "huge header",
            post(
                "application/json",
                b"{}",
                &format!("x-huge: {}\r\n", "h".repeat(600_000)),
            ),
        ),
        5 => {
            // Claims 100 bytes, sends 10, then closes.
            let mut request = format!(
                "POST /hooks/guarded HTTP/1.1\r\nhost: x\r\nx-token: {TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n"
            )
            .into_bytes();
            request.extend_from_slice(b"{\"a\": 1234");
            ("truncated body", request)
        }
        6 => ("garbage request line", b"\x16\x03\x01\x02\x00 garbage\r\n\r\n".to_vec()),
        7 => (
            "wrong method",
            b"DELETE /hooks/guarded HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
        ),
        8 => ("no token", post("application/json", b"{}", "").replace_token()),
        _ => (
            "unknown hook",
            b"POST /hooks/../../etc/passwd HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n".to_vec(),
        ),
    }
}

trait WithoutToken {
    fn replace_token(self) -> Vec<u8>;
}

impl WithoutToken for Vec<u8> {
    /// The same request with a wrong token.
    fn replace_token(self) -> Vec<u8> {
        String::from_utf8_lossy(&self)
            .replace(TOKEN, "hook-token-WRONG!")
            .into_bytes()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_malformed_requests_get_4xx_and_valid_ones_keep_working() {
    let recipe = format!(
        "trigger:\n  webhook:\n    path: guarded\n    verify: {{scheme: token, header: x-token, secret: '{TOKEN}'}}\nsteps: [{{log: ok}}]\n"
    );
    let ferry = TestDaemon::start_with(
        &[("guarded.yaml", &recipe)],
        Setup {
            max_body: Some(64 * 1024),
            // Every request here comes from 127.0.0.1: the rate limits would answer
            // 429 (also a 4xx) and throttle the valid requests this test needs.
            hook_limits: Some(HookLimitSettings {
                per_ip: None,
                failures_per_ip: None,
                trust_forwarded_for: false,
            }),
            ..Setup::default()
        },
    )
    .await;
    let address = ferry.base.trim_start_matches("http://").to_owned();
    let valid = |n: usize| {
        ferry
            .http
            .post(format!("{}/hooks/guarded", ferry.base))
            .header("x-token", TOKEN)
            .json(&json!({"n": n}))
            .send()
    };

    let mut accepted = 0;
    let mut wrong = Vec::new();
    for round in 0..100 {
        let sends = (0..10).map(|kind| {
            let address = address.clone();
            async move {
                let (what, request) = malformed(round * 10 + kind);
                (what, raw(&address, &request).await)
            }
        });
        for (what, status) in futures_join_all(sends).await {
            match status {
                Some(status) if (400..500).contains(&status) => {}
                other => wrong.push(format!("{what}: {other:?}")),
            }
        }
        let response = valid(round).await.expect("a valid webhook");
        assert_eq!(response.status().as_u16(), 202, "round {round}");
        accepted += 1;
    }
    assert!(
        wrong.is_empty(),
        "{} answers were not 4xx:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    let (_, runs) = ferry.get_json("/api/v1/runs?limit=500").await;
    assert_eq!(
        runs["runs"].as_array().map(Vec::len),
        Some(accepted),
        "only the valid ones ran"
    );
}

/// Runs the futures concurrently and collects their outputs in order.
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("a task"));
    }
    outputs
}

#[tokio::test]
async fn a_client_sending_headers_a_byte_at_a_time_is_cut_off_and_others_are_served() {
    let ferry = TestDaemon::start_with(
        &[("hook.yaml", "trigger: {webhook: {}}\nsteps: [{log: ok}]\n")],
        Setup {
            connections: Some(ConnectionLimits {
                header_read_timeout: Duration::from_secs(1),
                ..ConnectionLimits::default()
            }),
            ..Setup::default()
        },
    )
    .await;
    let address = ferry.base.trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&address).await.expect("connect");
    let started = Instant::now();
    let request = b"POST /hooks/hook HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}";
    let mut cut_off = None;
    // At most 25 bytes, one every 200 ms: 5 s, well past the 1 s deadline.
    for byte in request.iter().take(25) {
        if slow.write_all(&[*byte]).await.is_err() {
            cut_off = Some(started.elapsed());
            break;
        }
        // Meanwhile another client is served at once.
        let (status, _) = ferry.post_hook("hook", &json!({})).await;
        assert_eq!(status.as_u16(), 202);
        let mut probe = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(200), slow.read(&mut probe)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut_off = Some(started.elapsed());
                break;
            }
            // An answer (408) before closing also ends it.
            Ok(Ok(_)) => {
                cut_off = Some(started.elapsed());
                break;
            }
            Err(_) => {}
        }
    }
    let cut_off = cut_off.expect("the slow client was never cut off");
    assert!(cut_off < Duration::from_secs(4), "cut off only after {cut_off:?}");
}
