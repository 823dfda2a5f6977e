//! Slow clients cannot hold the listener shut: with 1 030 connections dripping
//! request bodies a byte at a time (more than the 1 024 connection slots), a
//! valid webhook is acknowledged and its run succeeds while they are all still
//! connected. Through the real binary.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use support::ChildDaemon;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

const DRIPPERS: usize = 1030;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_webhook_is_acknowledged_while_a_thousand_connections_drip_their_bodies() {
    // The test holds over a thousand sockets itself.
    let files = ferry::api::connections::raise_open_file_limit().unwrap_or(0);
    assert!(files > DRIPPERS as u64 + 100, "the open-file limit is {files}");
    let child = ChildDaemon::start(
        &[(
            "hook.yaml",
            "trigger: {webhook: {}}\nsteps: [{log: 'got {{payload.n}}'}]\n",
        )],
        "hook",
    )
    .await;
    let (http, base) = (&child.http, &child.base);
    let port: u16 = base
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("port");

    let head = "POST /hooks/hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{";
    let mut drippers = Vec::with_capacity(DRIPPERS);
    for _ in 0..DRIPPERS {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        stream.write_all(head.as_bytes()).await.expect("headers");
        drippers.push(stream);
    }
    // A byte every half second on each, until the test is done (at most a minute).
    let stop = Arc::new(AtomicBool::new(false));
    let dripping = {
        let stop = stop.clone();
        tokio::spawn(async move {
            for _ in 0..120 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                for stream in &mut drippers {
                    let _ = stream.try_write(b" ");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            drippers
        })
    };

    let answer: Value = http
        .post(format!("{base}/hooks/hook"))
        .timeout(support::DEADLINE)
        .json(&json!({"n": 1}))
        .send()
        .await
        .expect("the valid webhook is answered")
        .json()
        .await
        .expect("answer");
    let run = support::wait_for_success(http, base, answer["run_id"].as_str().expect("run_id")).await;
    assert_eq!(run["steps"][0]["attempts"][0]["request"]["log"], "got 1");

    stop.store(true, Ordering::SeqCst);
    let drippers = dripping.await.expect("dripping");
    let mut open = 0;
    let mut buffer = [0u8; 64];
    for stream in &drippers {
        // Nothing to read and no end of stream: the server still holds it.
        if matches!(stream.try_read(&mut buffer), Err(error) if error.kind() == std::io::ErrorKind::WouldBlock) {
            open += 1;
        }
    }
    assert_eq!(open, DRIPPERS, "dripping connections were closed");
    drop(drippers);
    drop(child);
}
