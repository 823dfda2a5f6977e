//! Signing deliveries as providers do, written apart from Ferry's own
//! verification code.

use hmac::{Hmac, KeyInit, Mac};

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Slack's `X-Slack-Request-Timestamp` and `X-Slack-Signature` for `body` now.
pub fn slack_headers(secret: &str, body: &str) -> [(&'static str, String); 2] {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        .to_string();
    let signature = hex(&hmac_sha256(
        secret.as_bytes(),
        format!("v0:{timestamp}:{body}").as_bytes(),
    ));
    [
        ("x-slack-request-timestamp", timestamp),
        ("x-slack-signature", format!("v0={signature}")),
    ]
}
