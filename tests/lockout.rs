//! Failed verifications lock out guessers, not senders: a valid HMAC signature
//! passes after any number of wrong ones from the same address, and a `token`
//! recipe under attack stays locked for that address while other recipes serve it.

use crate::support;

use support::TestDaemon;
use support::sign::{hex, hmac_sha256};

const SECRET: &str = "It's a Secret to Everybody";
const TOKEN: &str = "hook-token-5f1e9c";

async fn post(ferry: &TestDaemon, path: &str, headers: &[(&str, &str)], body: &[u8]) -> u16 {
    let mut request = ferry
        .http
        .post(format!("{}/hooks/{path}", ferry.base))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("POST").status().as_u16()
}

async fn daemon() -> TestDaemon {
    let recipes = [
        (
            "github.yaml",
            "trigger:\n  webhook:\n    path: github\n    verify: {scheme: github, secret: '${GITHUB_WEBHOOK_SECRET}'}\nsteps: [{log: ok}]\n",
        ),
        (
            "guarded.yaml",
            "trigger:\n  webhook:\n    path: guarded\n    verify: {scheme: token, header: x-hook-auth, secret: '${HOOK_TOKEN}'}\nsteps: [{log: ok}]\n",
        ),
        (
            "other.yaml",
            "trigger:\n  webhook:\n    path: other\n    verify: {scheme: token, header: x-hook-auth, secret: '${HOOK_TOKEN}'}\nsteps: [{log: ok}]\n",
        ),
    ];
    // The default limits: ten failures a second per address.
    TestDaemon::start_with_env(&recipes, &[("GITHUB_WEBHOOK_SECRET", SECRET), ("HOOK_TOKEN", TOKEN)]).await
}

#[tokio::test]
async fn a_valid_signature_passes_after_fifty_wrong_ones_from_the_same_address() {
    let ferry = daemon().await;
    let body = br#"{"zen":"Keep it logically awesome."}"#;
    let mut refused = 0;
    for attempt in 0..50 {
        let wrong = format!(
            "sha256={}",
            hex(&hmac_sha256(format!("guess {attempt}").as_bytes(), body))
        );
        let status = post(&ferry, "github", &[("x-hub-signature-256", &wrong)], body).await;
        assert!(status == 401 || status == 429, "a wrong signature: {status}");
        refused += usize::from(status == 429);
    }
    assert!(
        refused > 0,
        "fifty wrong signatures in a burst spend the failure budget"
    );
    let valid = format!("sha256={}", hex(&hmac_sha256(SECRET.as_bytes(), body)));
    assert_eq!(
        post(&ferry, "github", &[("x-hub-signature-256", &valid)], body).await,
        202
    );
}

#[tokio::test]
async fn a_token_recipe_under_attack_stays_locked_while_another_recipe_serves_that_address() {
    let ferry = daemon().await;
    for attempt in 0..20 {
        let guess = format!("guess-{attempt}");
        let status = post(&ferry, "guarded", &[("x-hook-auth", &guess)], b"{}").await;
        assert!(status == 401 || status == 429, "a wrong token: {status}");
    }
    // Locked: even the right token is not compared for this address and recipe.
    assert_eq!(post(&ferry, "guarded", &[("x-hook-auth", TOKEN)], b"{}").await, 429);
    // The same address, the same token, another recipe: served.
    assert_eq!(post(&ferry, "other", &[("x-hook-auth", TOKEN)], b"{}").await, 202);
    let body = br#"{"zen":"Design for failure."}"#;
    let valid = format!("sha256={}", hex(&hmac_sha256(SECRET.as_bytes(), body)));
    assert_eq!(
        post(&ferry, "github", &[("x-hub-signature-256", &valid)], body).await,
        202
    );
}
