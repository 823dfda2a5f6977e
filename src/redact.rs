//! Redaction: a secret never reaches stored runs, logs or API answers.
//!
//! A secret is searched for as written, URL-encoded (`%20` and `+` forms),
//! JSON-escaped, upper- and lower-cased, hex-encoded and base64-encoded, and so is
//! the base64 of each `user:password` pair of basic credentials a recipe builds
//! from secrets (what a destination echoing `Authorization` sends back); each is
//! replaced by `[redacted:NAME]`. Recipes cannot transform a secret any other way:
//! a `${NAME}` inside a `{{ … }}` expression is refused at load time, and so is a
//! secret shorter than [`MIN_SEARCHED_LENGTH`] in a template field, which could not
//! be told apart from ordinary text. A header that carries any secret is replaced
//! whole.

use std::borrow::Cow;

use serde_json::Value;

/// A value that came from the environment, and the variable it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub name: String,
    pub value: String,
}

/// Shorter secrets are not searched for in free text.
pub const MIN_SEARCHED_LENGTH: usize = 6;

/// What credentials headers of a request are stored as.
pub const REDACTED: &str = "[redacted]";

/// Parts of header names that mark credentials or signatures.
const SENSITIVE_NAME_PARTS: &[&str] = &[
    "auth",
    "token",
    "secret",
    "key",
    "signature",
    "hmac",
    "password",
    "passwd",
    "credential",
    "session",
    "jwt",
];

/// Whether a header's value is a credential or a signature whatever it holds:
/// `Authorization`, `Cookie`, `Set-Cookie`, and names with `auth`, `token`,
/// `secret`, `key`, `signature`, `hmac`, `password`, `passwd`, `credential`,
/// `session` or `jwt` in them (`X-Forwarded-Authorization`, `X-Hook-Auth`). Such values are
/// stored and logged as `[redacted]`. `Idempotency-Key` is an identifier, not a
/// credential, and is kept.
pub fn is_sensitive_header(name: &str) -> bool {
    // Called for every header of every webhook and answer. HTTP libraries give
    // names in lower case: those are compared in place, each position against
    // the first letters of the parts before a whole part is compared.
    if name.bytes().any(|byte| byte.is_ascii_uppercase()) {
        return is_sensitive_header(&name.to_ascii_lowercase());
    }
    if name == "idempotency-key" {
        return false;
    }
    let bytes = name.as_bytes();
    matches!(name, "authorization" | "proxy-authorization" | "cookie" | "set-cookie")
        || (0..bytes.len()).any(|at| {
            SENSITIVE_NAME_PARTS
                .iter()
                .any(|part| part.as_bytes()[0] == bytes[at] && bytes[at..].starts_with(part.as_bytes()))
        })
}

/// A URL without the credentials of its userinfo (`https://user:pass@host/` →
/// `https://[redacted]@host/`); anything that is not such a URL is kept.
pub fn without_userinfo(url: &str) -> Cow<'_, str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Cow::Borrowed(url);
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => Cow::Owned(format!("{scheme}://{REDACTED}{}", &rest[at..])),
        None => Cow::Borrowed(url),
    }
}

/// Basic credentials a recipe builds from at least one secret: the base64 of
/// `username:password` is searched for too, under the secret's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicPair {
    pub username: String,
    pub password: String,
    /// The secret the pair is redacted as.
    pub name: String,
}

/// Replaces a recipe's secrets in text and JSON.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<Secret>,
    /// `(form, replacement)`, longest form first so that a secret containing
    /// another is replaced whole.
    forms: Vec<(String, String)>,
    /// `(form, marker)` of every secret whatever its length, for sealing.
    sealing: Vec<(String, String)>,
}

/// The searched forms of each secret at least `min_chars` long — as written,
/// JSON-escaped, URL-encoded with `+` and with `%20`, and (when `derived`) upper-
/// and lower-cased, hex and unpadded base64 (standard and URL-safe: the padded
/// text starts with it) — longest first, each with its replacement (`kind` names
/// the form: `raw`, `json`, `url`, `pct`, …).
fn forms(
    secrets: &[Secret],
    min_chars: usize,
    derived: bool,
    replacement: impl Fn(&Secret, &str) -> String,
) -> Vec<(String, String)> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

    let mut forms: Vec<(String, String)> = Vec::new();
    for secret in secrets {
        if secret.value.is_empty() || secret.value.chars().count() < min_chars {
            continue;
        }
        let json_escaped = serde_json::to_string(&secret.value)
            .map(|quoted| quoted[1..quoted.len() - 1].to_owned())
            .unwrap_or_default();
        let url_plus: String = form_urlencoded::byte_serialize(secret.value.as_bytes()).collect();
        let url_percent = url_plus.replace('+', "%20");
        let mut kinds = vec![
            ("raw", secret.value.clone()),
            ("json", json_escaped),
            ("url", url_plus),
            ("pct", url_percent),
        ];
        if derived {
            let hex: String = secret.value.bytes().map(|byte| format!("{byte:02x}")).collect();
            kinds.extend([
                ("upper", secret.value.to_uppercase()),
                ("lower", secret.value.to_lowercase()),
                ("hex-upper", hex.to_ascii_uppercase()),
                ("hex", hex),
                ("base64", STANDARD_NO_PAD.encode(&secret.value)),
                ("base64url", URL_SAFE_NO_PAD.encode(&secret.value)),
            ]);
        }
        for (kind, form) in kinds {
            if !form.is_empty() && !forms.iter().any(|(known, _)| *known == form) {
                forms.push((form, replacement(secret, kind)));
            }
        }
    }
    forms.sort_by_key(|(form, _)| std::cmp::Reverse(form.len()));
    forms
}

/// The base64 of each pair's `username:password`, as an `Authorization: Basic`
/// header carries it, with its replacement (`index` tells pairs apart).
fn basic_forms(pairs: &[BasicPair], replacement: impl Fn(&BasicPair, usize) -> String) -> Vec<(String, String)> {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD_NO_PAD;

    pairs
        .iter()
        .enumerate()
        .map(|(index, pair)| {
            (
                STANDARD_NO_PAD.encode(format!("{}:{}", pair.username, pair.password)),
                replacement(pair, index),
            )
        })
        .collect()
}

/// Several lists of forms as one, each form once (the first replacement wins),
/// longest first so that a form containing another is replaced whole.
fn merged(lists: impl IntoIterator<Item = Vec<(String, String)>>) -> Vec<(String, String)> {
    let mut merged: Vec<(String, String)> = Vec::new();
    for (form, replacement) in lists.into_iter().flatten() {
        if !merged.iter().any(|(known, _)| *known == form) {
            merged.push((form, replacement));
        }
    }
    merged.sort_by_key(|(form, _)| std::cmp::Reverse(form.len()));
    merged
}

impl Redactor {
    pub fn new(secrets: &[Secret]) -> Self {
        Self::with_basic_pairs(secrets, &[])
    }

    /// A redactor that also knows the basic credentials built from the secrets.
    pub fn with_basic_pairs(secrets: &[Secret], pairs: &[BasicPair]) -> Self {
        let redacted = |name: &str| format!("[redacted:{name}]");
        let marker = |name: &str, kind: &str| format!("\u{2983}sealed:{name}:{kind}\u{2984}");
        Self {
            secrets: secrets.to_vec(),
            forms: merged([
                forms(secrets, MIN_SEARCHED_LENGTH, true, |secret, _| redacted(&secret.name)),
                basic_forms(pairs, |pair, _| redacted(&pair.name)),
            ]),
            // Sealed results hold what destinations answered, echoes included:
            // every form redaction searches is sealed, and every length of what a
            // request itself holds.
            sealing: merged([
                forms(secrets, MIN_SEARCHED_LENGTH, true, |secret, kind| {
                    marker(&secret.name, kind)
                }),
                forms(secrets, 1, false, |secret, kind| marker(&secret.name, kind)),
                basic_forms(pairs, |pair, index| marker(&pair.name, &format!("basic{index}"))),
            ]),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Text with every searched form of every secret replaced.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut result = Cow::Borrowed(text);
        for (form, replacement) in &self.forms {
            if result.contains(form.as_str()) {
                result = Cow::Owned(result.replace(form.as_str(), replacement));
            }
        }
        result
    }

    /// [`Self::value`], borrowed when there is nothing to redact.
    pub fn value_cow<'a>(&self, value: &'a Value) -> Cow<'a, Value> {
        if self.forms.is_empty() {
            Cow::Borrowed(value)
        } else {
            Cow::Owned(self.value(value))
        }
    }

    /// Every string in a JSON tree (keys too) redacted.
    pub fn value(&self, value: &Value) -> Value {
        if self.forms.is_empty() {
            return value.clone();
        }
        match value {
            Value::String(text) => Value::String(self.text(text).into_owned()),
            Value::Array(items) => Value::Array(items.iter().map(|item| self.value(item)).collect()),
            Value::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(key, value)| (self.text(key).into_owned(), self.value(value)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// A header as records keep it: a known secret's name when it holds one, else
    /// `[redacted]` for a credential or signature header, else the value.
    pub fn recorded_header(&self, name: &str, value: &str) -> String {
        if self.secrets.is_empty() {
            return if is_sensitive_header(name) { REDACTED } else { value }.to_owned();
        }
        let redacted = self.header(value);
        if redacted == value && is_sensitive_header(name) {
            REDACTED.to_owned()
        } else {
            redacted
        }
    }

    /// A header value: replaced whole by `[redacted:NAME]` when it contains any
    /// secret, however short.
    pub fn header(&self, value: &str) -> String {
        match self
            .secrets
            .iter()
            .find(|secret| !secret.value.is_empty() && value.contains(&secret.value))
        {
            Some(secret) => format!("[redacted:{}]", secret.name),
            None => self.text(value).into_owned(),
        }
    }
}

/// Sealing: a *reversible* redaction for what the engine must store to resume a
/// run (the rendered request, earlier steps' results) but never holds a secret.
/// Every occurrence of every secret — as written, URL-encoded or JSON-escaped,
/// whatever its length — becomes a marker naming the variable and the form, which
/// [`Redactor::unseal`] turns back into the value in memory.
impl Redactor {
    /// Replaces every secret by its marker, in every string of the tree.
    pub fn seal(&self, value: &Value) -> Value {
        if self.sealing.is_empty() {
            return value.clone();
        }
        map_strings(value, &|text| {
            self.sealing.iter().fold(text.to_owned(), |text, (form, marker)| {
                text.replace(form.as_str(), marker)
            })
        })
    }

    /// Puts the secrets back. A marker of a variable that is no longer set stays as
    /// it is (the request then fails visibly rather than sending a wrong value).
    pub fn unseal(&self, value: &Value) -> Value {
        if self.sealing.is_empty() {
            return value.clone();
        }
        map_strings(value, &|text| {
            if !text.contains('\u{2983}') {
                return text.to_owned();
            }
            self.sealing.iter().fold(text.to_owned(), |text, (form, marker)| {
                text.replace(marker.as_str(), form)
            })
        })
    }
}

fn map_strings(value: &Value, map: &dyn Fn(&str) -> String) -> Value {
    match value {
        Value::String(text) => Value::String(map(text)),
        Value::Array(items) => Value::Array(items.iter().map(|item| map_strings(item, map)).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| (map(key), map_strings(value, map)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn redactor() -> Redactor {
        Redactor::new(&[
            Secret {
                name: "KEY".into(),
                value: "p@ss word/\"x\"".into(),
            },
            Secret {
                name: "PIN".into(),
                value: "1234".into(),
            },
        ])
    }

    #[test]
    fn every_searched_form_is_replaced() {
        let redactor = redactor();
        assert_eq!(redactor.text("a p@ss word/\"x\" b"), "a [redacted:KEY] b");
        assert_eq!(redactor.text("?k=p%40ss+word%2F%22x%22"), "?k=[redacted:KEY]");
        assert_eq!(redactor.text("?k=p%40ss%20word%2F%22x%22"), "?k=[redacted:KEY]");
        assert_eq!(
            redactor.value(&json!({"t": "p@ss word/\"x\"", "n": [1, "x p@ss word/\"x\""]})),
            json!({"t": "[redacted:KEY]", "n": [1, "x [redacted:KEY]"]})
        );
        let escaped = serde_json::to_string(&json!({"k": "p@ss word/\"x\""})).expect("json");
        assert_eq!(redactor.text(&escaped), "{\"k\":\"[redacted:KEY]\"}");
    }

    proptest::proptest! {
        /// The in-place comparison says what a lower-cased search says.
        #[test]
        fn sensitive_names_are_found_in_any_case(name in "[a-zA-Z-]{0,6}(Token|key|SECRET|hmac|Password|session|signature|cookie|authorization)?[a-zA-Z-]{0,6}") {
            let lower = name.to_ascii_lowercase();
            let expected = lower != "idempotency-key"
                && (["authorization", "proxy-authorization", "cookie", "set-cookie"].contains(&lower.as_str())
                    || SENSITIVE_NAME_PARTS.iter().any(|part| lower.contains(part)));
            proptest::prop_assert_eq!(is_sensitive_header(&name), expected);
        }
    }

    #[test]
    fn credential_headers_and_userinfo_are_recognised() {
        for name in [
            "Authorization",
            "cookie",
            "Set-Cookie",
            "X-Hub-Signature-256",
            "Stripe-Signature",
            "webhook-signature",
            "X-Shopify-Hmac-Sha256",
            "x-api-key",
            "X-Auth-Token",
            "x-client-secret",
            "X-Forwarded-Authorization",
            "x-hook-auth",
            "x-amz-security-credential",
        ] {
            assert!(is_sensitive_header(name), "{name}");
        }
        for name in [
            "content-type",
            "idempotency-key",
            "Idempotency-Key",
            "x-github-delivery",
            "user-agent",
        ] {
            assert!(!is_sensitive_header(name), "{name}");
        }
        assert_eq!(
            without_userinfo("https://ada:s3cret@api.example.com/x?a=b@c"),
            "https://[redacted]@api.example.com/x?a=b@c"
        );
        assert_eq!(
            without_userinfo("https://api.example.com/x?a=b@c"),
            "https://api.example.com/x?a=b@c"
        );
    }

    #[test]
    fn derived_forms_and_basic_credentials_are_replaced() {
        use base64::Engine as _;
        let secrets = [Secret {
            name: "TOKEN".into(),
            value: "tok-Secret.42".into(),
        }];
        let pairs = [BasicPair {
            username: "ada".into(),
            password: "tok-Secret.42".into(),
            name: "TOKEN".into(),
        }];
        let redactor = Redactor::with_basic_pairs(&secrets, &pairs);
        let engine = base64::engine::general_purpose::STANDARD;
        let hex: String = "tok-Secret.42".bytes().map(|byte| format!("{byte:02x}")).collect();
        for echoed in [
            "TOK-SECRET.42".to_owned(),
            "tok-secret.42".to_owned(),
            hex.clone(),
            hex.to_ascii_uppercase(),
            engine.encode("tok-Secret.42"),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("tok-Secret.42"),
            format!("Basic {}", engine.encode("ada:tok-Secret.42")),
        ] {
            let text = format!("echo: {echoed}");
            let redacted = redactor.text(&text);
            assert!(redacted.contains("[redacted:TOKEN]"), "{text} → {redacted}");
            assert!(
                !redacted.contains(echoed.trim_start_matches("Basic ").trim_end_matches('=')),
                "{redacted}"
            );
        }
    }

    #[test]
    fn short_secrets_are_not_searched_in_text_but_headers_are_redacted_whole() {
        let redactor = redactor();
        assert_eq!(redactor.text("order 1234"), "order 1234");
        assert_eq!(redactor.header("Pin 1234"), "[redacted:PIN]");
        assert_eq!(redactor.header("no secret here"), "no secret here");
    }

    #[test]
    fn sealing_hides_every_secret_and_unsealing_restores_the_exact_value() {
        let redactor = redactor();
        let original = json!({
            "url": "https://x/?k=p%40ss+word%2F%22x%22&pin=1234",
            "body": {"text": "p@ss word/\"x\" and 1234", "raw": "{\"k\":\"p@ss word/\\\"x\\\"\"}"},
        });
        let sealed = redactor.seal(&original);
        let text = sealed.to_string();
        assert!(
            !text.contains("p@ss") && !text.contains("1234") && !text.contains("p%40ss"),
            "{text}"
        );
        assert_eq!(redactor.unseal(&sealed), original);
    }
}
