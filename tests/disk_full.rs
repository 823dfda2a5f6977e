//! A full disk: the database on a small tmpfs (mounted by the test, which CI runs
//! as root). While it is full, webhooks get only `202` or `503` with
//! `Retry-After`, and health says `503`; once space returns, every acknowledged
//! run ends without a restart and nothing acknowledged is lost.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::{Running, poll_until};

/// A tmpfs mounted for the test, unmounted when it ends (also on failure).
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts one of `size` on `path`; `Err` with the reason where that cannot
    /// be done (not root, no `mount`).
    fn mount(path: &Path, size: &str) -> Result<Self, String> {
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|error| format!("cannot run mount: {error}"))?;
        if output.status.success() {
            Ok(Self(path.to_owned()))
        } else {
            Err(format!(
                "cannot mount a tmpfs: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test]
async fn a_full_disk_answers_503_and_every_acknowledged_run_ends_once_space_returns() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tmpfs = match Tmpfs::mount(dir.path(), "16m") {
        Ok(tmpfs) => tmpfs,
        Err(reason) if std::env::var("CI").as_deref() != Ok("true") => {
            println!("skipped: {reason} (run as root, as CI does)");
            return;
        }
        Err(reason) => panic!("{reason}; CI runs this test as root"),
    };
    std::fs::create_dir(dir.path().join("recipes")).expect("recipes dir");
    std::fs::write(
        dir.path().join("recipes/hook.yaml"),
        "trigger: {webhook: {}}\nsteps:\n  - log: 'got {{payload.n}}'\n",
    )
    .expect("recipe");
    let port = support::free_address().port();
    let log_path = std::env::temp_dir().join(format!("ferry-disk-full-{port}.log"));
    let daemon = Running(
        support::ferry_serve(dir.path(), port)
            .stderr(std::fs::File::create(&log_path).expect("log file"))
            .spawn()
            .expect("start ferry serve"),
    );
    let http = support::http_client();
    let base = format!("http://127.0.0.1:{port}");
    let first = support::post_hook_when_up(&http, &base, "hook", &json!({"n": 0})).await;
    let mut accepted: Vec<String> = vec![first["run_id"].as_str().expect("run_id").to_owned()];

    // Leave about a megabyte free.
    let (free, _) = ferry::store::space::free_space(&dir.path().join("ferry.db")).expect("free space");
    let filler = dir.path().join("filler");
    std::fs::write(&filler, vec![0u8; (free as usize).saturating_sub(1024 * 1024)]).expect("filler");

    let padding = "x".repeat(20 * 1024);
    let mut refused = 0;
    for n in 1..=400 {
        let response = http
            .post(format!("{base}/hooks/hook"))
            .json(&json!({"n": n, "padding": padding}))
            .send()
            .await
            .expect("POST");
        match response.status().as_u16() {
            202 => {
                let answer: Value = response.json().await.expect("answer");
                accepted.push(answer["run_id"].as_str().expect("run_id").to_owned());
            }
            503 => {
                assert!(
                    response.headers().contains_key("retry-after"),
                    "503 without Retry-After"
                );
                refused += 1;
                if refused >= 20 {
                    break;
                }
            }
            other => panic!("webhook {n}: {other} {}", response.text().await.unwrap_or_default()),
        }
    }
    assert!(refused >= 20, "the disk never filled: {} accepted", accepted.len());
    let health = http.get(format!("{base}/api/v1/health")).send().await.expect("health");
    assert_eq!(health.status().as_u16(), 503, "health while the disk is full");
    let health: Value = health.json().await.expect("health JSON");
    assert!(
        health["database"].as_str().unwrap_or_default().contains("writes fail"),
        "{health}"
    );

    // Space returns: health recovers and every acknowledged run ends, no restart.
    std::fs::remove_file(&filler).expect("remove filler");
    poll_until("health to answer 200", || async {
        let status = http.get(format!("{base}/api/v1/health")).send().await.ok()?.status();
        (status.as_u16() == 200).then_some(())
    })
    .await;
    // Each acknowledged run is stored and ends; none is left behind.
    for run_id in &accepted {
        support::wait_for_success(&http, &base, run_id).await;
    }
    for status in ["running", "queued", "retrying"] {
        let runs: Value = http
            .get(format!("{base}/api/v1/runs?status={status}"))
            .send()
            .await
            .expect("runs")
            .json()
            .await
            .expect("runs JSON");
        assert_eq!(runs["runs"], json!([]), "{status} runs are left");
    }
    drop(daemon);
    drop(tmpfs);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    let claim_errors = log.matches("cannot claim runs").count();
    assert!(claim_errors <= 5, "the claim loop spun: {claim_errors} lines");
    println!("{} webhooks acknowledged, {refused} refused with 503", accepted.len());
}
