//! Webhook verification (`verify:`): signatures and credentials checked over the
//! raw body bytes, before anything is parsed, with constant-time comparisons.
//!
//! The clock is a parameter (`now`, Unix seconds), so the published test vectors,
//! which carry their own time, run as they are.

use std::fmt;
use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, KeyInit, Mac};
use subtle::ConstantTimeEq;

/// The default window for schemes with a timestamp.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Standard base64 as the reference libraries decode it: `=` padding may be
/// missing, and the unused bits of the last symbol are ignored.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Key material; never printed.
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

/// A digest for the generic `hmac` scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

/// How the generic `hmac` scheme's header spells the MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
}

/// A recipe's `verify:`.
#[derive(Debug, Clone)]
pub enum Verifier {
    /// `X-Hub-Signature-256: sha256=<hex>` over the body.
    Github { key: Key },
    /// `Stripe-Signature: t=…,v1=…` over `t.body`, keyed with the literal
    /// `whsec_…` text; only an old timestamp is refused.
    Stripe { key: Key, tolerance: Duration },
    /// `X-Slack-Signature: v0=<hex>` over `v0:ts:body`; the timestamp is checked
    /// both ways.
    Slack { key: Key, tolerance: Duration },
    /// `X-Shopify-Hmac-Sha256: <base64>` over the body.
    Shopify { key: Key },
    /// Standard Webhooks: `webhook-signature: v1,<base64> …` over `id.ts.body`,
    /// keyed with the base64-decoded secret; the timestamp is checked both ways.
    Standard { key: Key, tolerance: Duration },
    /// Any HMAC in any header.
    Hmac {
        header: String,
        algorithm: Algorithm,
        encoding: Encoding,
        prefix: String,
        key: Key,
    },
    /// A header that must equal the secret.
    Token { header: String, secret: Key },
    /// `Authorization: Basic …` with these credentials.
    Basic { expected: Key },
}

/// A verified request, with the provider's delivery id when it has one (used to
/// deduplicate replays when the recipe sets no `dedup`).
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub delivery_id: Option<String>,
}

/// Why a request was refused: for the log, never for the sender, and never with
/// the values that were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected(pub &'static str);

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Verifier {
    /// Standard Webhooks: the secret is base64, optionally after `whsec_`.
    pub fn standard(secret: &str, tolerance: Duration) -> Result<Self, String> {
        let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
        let key = BASE64
            .decode(encoded)
            .map_err(|_| "a Standard Webhooks secret is base64 (usually after `whsec_`)".to_owned())?;
        Ok(Verifier::Standard {
            key: Key(key),
            tolerance,
        })
    }

    /// The key of a scheme keyed with the secret's text as written.
    pub fn key(secret: &str) -> Key {
        Key(secret.as_bytes().to_vec())
    }

    /// `Authorization: Basic` for `username:password`.
    pub fn basic(username: &str, password: &str) -> Self {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        Verifier::Basic {
            expected: Key(format!("Basic {token}").into_bytes()),
        }
    }

    /// The scheme's name as recipes write it.
    pub fn scheme(&self) -> &'static str {
        match self {
            Verifier::Github { .. } => "github",
            Verifier::Stripe { .. } => "stripe",
            Verifier::Slack { .. } => "slack",
            Verifier::Shopify { .. } => "shopify",
            Verifier::Standard { .. } => "standard",
            Verifier::Hmac { .. } => "hmac",
            Verifier::Token { .. } => "token",
            Verifier::Basic { .. } => "basic",
        }
    }

    /// The header a `token` or `hmac` scheme reads, whose name the recipe chose:
    /// it carries the credential, so it is never stored.
    pub fn header_name(&self) -> Option<&str> {
        match self {
            Verifier::Token { header, .. } | Verifier::Hmac { header, .. } => Some(header),
            _ => None,
        }
    }

    /// Whether the scheme compares a credential a sender could guess (`token`,
    /// `basic`), as opposed to a signature over the body.
    pub fn is_guessable(&self) -> bool {
        matches!(self, Verifier::Token { .. } | Verifier::Basic { .. })
    }

    /// Checks a request; `now` is the current time in Unix seconds.
    pub fn check(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<Verified, Rejected> {
        match self {
            Verifier::Github { key } => {
                let signature = header(headers, "x-hub-signature-256")?;
                let hex = signature
                    .strip_prefix("sha256=")
                    .ok_or(Rejected("signature without `sha256=`"))?;
                let expected = mac(Algorithm::Sha256, key, &[body]);
                matches_any(&expected, [decode_hex(hex)])?;
                Ok(delivery(headers, "x-github-delivery"))
            }
            Verifier::Stripe { key, tolerance } => {
                let signature = header(headers, "stripe-signature")?;
                let mut timestamp = None;
                let mut candidates = Vec::new();
                for part in signature.split(',') {
                    match part.trim().split_once('=') {
                        Some(("t", value)) => timestamp = Some(value),
                        Some(("v1", value)) => candidates.push(decode_hex(value)),
                        _ => {}
                    }
                }
                let timestamp = timestamp.ok_or(Rejected("no timestamp"))?;
                let sent = parse_timestamp(timestamp)?;
                if now.saturating_sub(sent) > tolerance_seconds(*tolerance) {
                    return Err(Rejected("timestamp too old"));
                }
                let expected = mac(Algorithm::Sha256, key, &[timestamp.as_bytes(), b".", body]);
                matches_any(&expected, candidates)?;
                Ok(Verified {
                    delivery_id: event_id(body),
                })
            }
            Verifier::Slack { key, tolerance } => {
                let timestamp = header(headers, "x-slack-request-timestamp")?;
                let signature = header(headers, "x-slack-signature")?;
                within(parse_timestamp(timestamp)?, now, *tolerance)?;
                let hex = signature
                    .strip_prefix("v0=")
                    .ok_or(Rejected("signature without `v0=`"))?;
                let expected = mac(Algorithm::Sha256, key, &[b"v0:", timestamp.as_bytes(), b":", body]);
                matches_any(&expected, [decode_hex(hex)])?;
                // Slack sends no delivery id; a replay repeats the signature.
                Ok(Verified {
                    delivery_id: Some(format!("slack:{signature}")),
                })
            }
            Verifier::Shopify { key } => {
                let signature = header(headers, "x-shopify-hmac-sha256")?;
                let expected = mac(Algorithm::Sha256, key, &[body]);
                matches_any(&expected, [BASE64.decode(signature).ok()])?;
                Ok(delivery(headers, "x-shopify-webhook-id"))
            }
            Verifier::Standard { key, tolerance } => {
                let id = header(headers, "webhook-id")?;
                let timestamp = header(headers, "webhook-timestamp")?;
                let signatures = header(headers, "webhook-signature")?;
                within(parse_timestamp(timestamp)?, now, *tolerance)?;
                let expected = mac(
                    Algorithm::Sha256,
                    key,
                    &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
                );
                let candidates = signatures
                    .split_whitespace()
                    .filter_map(|entry| entry.strip_prefix("v1,"))
                    .map(|encoded| BASE64.decode(encoded).ok());
                matches_any(&expected, candidates)?;
                Ok(Verified {
                    delivery_id: Some(id.to_owned()),
                })
            }
            Verifier::Hmac {
                header: name,
                algorithm,
                encoding,
                prefix,
                key,
            } => {
                let signature = header(headers, name)?;
                let encoded = signature
                    .strip_prefix(prefix.as_str())
                    .ok_or(Rejected("signature without the configured prefix"))?;
                let decoded = match encoding {
                    Encoding::Hex => decode_hex(encoded),
                    Encoding::Base64 => BASE64.decode(encoded).ok(),
                };
                matches_any(&mac(*algorithm, key, &[body]), [decoded])?;
                Ok(Verified { delivery_id: None })
            }
            Verifier::Token { header: name, secret } => {
                let sent = header(headers, name)?;
                equal(sent.as_bytes(), &secret.0)?;
                Ok(Verified { delivery_id: None })
            }
            Verifier::Basic { expected } => {
                let sent = header(headers, "authorization")?;
                equal(sent.as_bytes(), &expected.0)?;
                Ok(Verified { delivery_id: None })
            }
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, Rejected> {
    headers
        .get(name)
        .ok_or(Rejected("a signature header is missing"))?
        .to_str()
        .map_err(|_| Rejected("a signature header is not text"))
}

fn delivery(headers: &HeaderMap, name: &str) -> Verified {
    Verified {
        delivery_id: headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.is_empty())
            .map(str::to_owned),
    }
}

/// A Stripe event's `id`, read without building the whole payload.
fn event_id(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Event {
        id: Option<String>,
    }
    serde_json::from_slice::<Event>(body).ok()?.id
}

fn parse_timestamp(text: &str) -> Result<i64, Rejected> {
    text.trim().parse().map_err(|_| Rejected("timestamp is not a number"))
}

fn tolerance_seconds(tolerance: Duration) -> i64 {
    i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX)
}

/// Refuses a timestamp more than `tolerance` away from `now`, either way.
fn within(sent: i64, now: i64, tolerance: Duration) -> Result<(), Rejected> {
    let tolerance = tolerance_seconds(tolerance);
    if now.saturating_sub(sent) > tolerance {
        Err(Rejected("timestamp too old"))
    } else if sent.saturating_sub(now) > tolerance {
        Err(Rejected("timestamp in the future"))
    } else {
        Ok(())
    }
}

/// The MAC of the concatenated `parts`.
fn mac(algorithm: Algorithm, key: &Key, parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + KeyInit>(key: &Key, parts: &[&[u8]]) -> Vec<u8> {
        // HMAC takes keys of any length: this cannot fail.
        let Ok(mut mac) = <M as KeyInit>::new_from_slice(&key.0) else {
            return Vec::new();
        };
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, parts),
    }
}

/// Accepts when any well-formed candidate equals `expected` (several signatures
/// in one header: key rotation). Every candidate is compared in constant time.
fn matches_any(expected: &[u8], candidates: impl IntoIterator<Item = Option<Vec<u8>>>) -> Result<(), Rejected> {
    let mut matched = false;
    for candidate in candidates.into_iter().flatten() {
        matched |= candidate.len() == expected.len() && bool::from(candidate.ct_eq(expected));
    }
    if matched {
        Ok(())
    } else {
        Err(Rejected("signature does not match"))
    }
}

fn equal(sent: &[u8], expected: &[u8]) -> Result<(), Rejected> {
    if sent.len() == expected.len() && bool::from(sent.ct_eq(expected)) {
        Ok(())
    } else {
        Err(Rejected("credentials do not match"))
    }
}

/// Lower- or upper-case hex; `None` when it is not hex.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let high = (pair[0] as char).to_digit(16)?;
            let low = (pair[1] as char).to_digit(16)?;
            u8::try_from(high * 16 + low).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        map
    }

    #[test]
    fn hex_decoding_refuses_what_is_not_hex() {
        assert_eq!(decode_hex("00ff7A"), Some(vec![0, 255, 122]));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex("é1"), None);
    }

    #[test]
    fn generic_hmac_token_and_basic() {
        // printf 'hello' | openssl dgst -sha1 -hmac key
        let verifier = Verifier::Hmac {
            header: "x-signature".to_owned(),
            algorithm: Algorithm::Sha1,
            encoding: Encoding::Hex,
            prefix: "sha1=".to_owned(),
            key: Verifier::key("key"),
        };
        let good = headers(&[("x-signature", "sha1=b34ceac4516ff23a143e61d79d0fa7a4fbe5f266")]);
        assert!(verifier.check(&good, b"hello", 0).is_ok());
        assert!(verifier.check(&good, b"hellO", 0).is_err());
        let unprefixed = headers(&[("x-signature", "b34ceac4516ff23a143e61d79d0fa7a4fbe5f266")]);
        assert!(verifier.check(&unprefixed, b"hello", 0).is_err());

        let token = Verifier::Token {
            header: "x-token".to_owned(),
            secret: Verifier::key("s3cret-value"),
        };
        assert!(token.check(&headers(&[("x-token", "s3cret-value")]), b"", 0).is_ok());
        assert!(token.check(&headers(&[("x-token", "s3cret-valuE")]), b"", 0).is_err());
        assert!(token.check(&headers(&[]), b"", 0).is_err());

        let basic = Verifier::basic("ada", "lovelace");
        // base64("ada:lovelace")
        assert!(
            basic
                .check(&headers(&[("authorization", "Basic YWRhOmxvdmVsYWNl")]), b"", 0)
                .is_ok()
        );
        assert!(
            basic
                .check(&headers(&[("authorization", "Basic YWRhOmxvdmVsYWNm")]), b"", 0)
                .is_err()
        );
    }

    #[test]
    fn keys_never_print() {
        let verifier = Verifier::Github {
            key: Verifier::key("do-not-print"),
        };
        assert!(!format!("{verifier:?}").contains("do-not-print"));
    }
}
