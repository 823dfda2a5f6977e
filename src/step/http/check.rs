//! The checks of an `http` step's keys (also a poll's request), each problem
//! with its place in the file.

use std::sync::LazyLock;

use indexmap::IndexMap;
use serde_saphyr::Location;

use super::config::{AuthConfig, HttpConfig};
use super::{AuthTemplate, BodyTemplate, HttpTemplate};
use crate::checks::{Checker, Diagnostic};
use crate::environment::TemplateText;
use crate::template::{ROOTS, Template, ValueTemplate};

/// An `http` step's request, or `None` when it has problems (reported).
pub fn validate_http(
    checker: &mut Checker<'_>,
    label: &str,
    location: Location,
    http: &HttpConfig,
) -> Option<HttpTemplate> {
    let url = checker.template(&http.url, &format!("{label} `url`"));
    if let Some((username, password)) = userinfo(&http.url.value) {
        checker.basic_pair(&username, &password, http.url.referenced, "the URL's userinfo");
    }
    if let Some(source) = host_from_trigger_data(&http.url.value) {
        checker.warnings.push(Diagnostic::new(
            checker.file,
            Some(http.url.referenced),
            format!(
                "{label} `url` takes its host from `{source}`: whoever sends the trigger chooses where this request goes (and its credentials with it); set FERRY_DENY_PRIVATE_DESTINATIONS=true, or write the host in the recipe"
            ),
        ));
    }
    let query = named_templates(checker, &http.query, |name| format!("{label} query `{name}`"));
    for (name, value) in &http.headers {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            checker.report(
                value.referenced,
                format!("{label}: `{name}` is not a valid header name"),
            );
        }
    }
    let headers = named_templates(checker, &http.headers, |name| format!("{label} header `{name}`"));
    let headers = headers
        .into_iter()
        .filter(|(name, _)| reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok())
        .collect();

    let given: Vec<&str> = [
        http.json.as_ref().map(|_| "json"),
        http.form.as_ref().map(|_| "form"),
        http.body.as_ref().map(|_| "body"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let body = if given.len() > 1 {
        checker.report(
            location,
            format!("{label} has {}; give at most one body", given.join(" and ")),
        );
        None
    } else if let Some(json) = &http.json {
        match ValueTemplate::compile(&json.value) {
            Ok(tree) => {
                let mut clean = true;
                for (path, template) in tree.templates() {
                    clean &= checker
                        .checked(template.clone(), json.referenced, &format!("{label} `json` at {path}"))
                        .is_some();
                }
                clean.then_some(BodyTemplate::Json(tree))
            }
            Err(error) => {
                checker.report(json.referenced, format!("{label} `json`: {error}"));
                None
            }
        }
    } else if let Some(form) = &http.form {
        let fields = named_templates(checker, &form.value, |name| format!("{label} form `{name}`"));
        (fields.len() == form.value.len()).then_some(BodyTemplate::Form(fields))
    } else {
        http.body
            .as_ref()
            .and_then(|body| checker.template(body, &format!("{label} `body`")))
            .map(BodyTemplate::Text)
    };
    let auth = match http.auth.as_ref().map(|auth| &auth.value) {
        Some(AuthConfig::Bearer(token)) => checker
            .template(token, &format!("{label} `auth.bearer`"))
            .map(AuthTemplate::Bearer),
        Some(AuthConfig::Basic(basic)) => {
            checker.basic_pair(
                &basic.username.value,
                &basic.password.value,
                basic.username.referenced,
                "`auth.basic`",
            );
            let username = checker.template(&basic.username, &format!("{label} `auth.basic.username`"));
            let password = checker.template(&basic.password, &format!("{label} `auth.basic.password`"));
            username
                .zip(password)
                .map(|(username, password)| AuthTemplate::Basic { username, password })
        }
        None => None,
    };
    let auth_failed = http.auth.is_some() && auth.is_none();
    let body_failed = !given.is_empty() && body.is_none();

    let method = match &http.method {
        Some(method) => match reqwest::Method::from_bytes(method.value.to_ascii_uppercase().as_bytes()) {
            Ok(parsed) => parsed,
            Err(_) => {
                checker.report(
                    method.referenced,
                    format!("{label}: `{}` is not an HTTP method", method.value),
                );
                reqwest::Method::GET
            }
        },
        None if body.is_some() => reqwest::Method::POST,
        None => reqwest::Method::GET,
    };
    if let Some(status) = http.accept.iter().find(|status| !(100..=999).contains(*status)) {
        checker.report(location, format!("{label} `accept`: {status} is not an HTTP status"));
    }

    let fail_when = http.fail_when.as_ref().map(|condition| {
        // Its templates may read the answer besides what every template reads.
        let roots = std::mem::replace(&mut checker.roots, FAIL_WHEN_ROOTS.as_slice());
        let checked = checker.template(condition, &format!("{label} `fail_when`"));
        checker.roots = roots;
        checked
    });
    if auth_failed || body_failed || fail_when.as_ref().is_some_and(Option::is_none) {
        return None;
    }
    let mut template = HttpTemplate {
        method,
        url: url?,
        query,
        headers,
        body,
        auth,
        accept: http.accept.clone(),
        fail_when: fail_when.flatten(),
        renders_alike: false,
        has_blocks: false,
        fixed_url: None,
    };
    template.renders_alike = template.volatile_free();
    template.has_blocks = template.any_blocks();
    template.fixed_url = template.parse_plain_url();
    Some(template)
}

/// What a `fail_when` may read: what every template may, and the answer.
static FAIL_WHEN_ROOTS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| ROOTS.iter().copied().chain(["response"]).collect());

/// The templates of a map of names to templates (query parameters, headers,
/// form fields), each checked; those with problems are left out (reported).
fn named_templates(
    checker: &mut Checker<'_>,
    values: &IndexMap<String, TemplateText>,
    what: impl Fn(&str) -> String,
) -> Vec<(String, Template)> {
    values
        .iter()
        .filter_map(|(name, value)| Some((name.clone(), checker.template(value, &what(name))?)))
        .collect()
}

/// The percent-decoded `user:password` of a URL's userinfo, when it has one.
fn userinfo(url: &str) -> Option<(String, String)> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (username, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let decode = |part: &str| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((decode(username), decode(password)))
}

/// The template expression in a URL's scheme-and-host part that reads trigger
/// data or an answer (`payload`, `headers`, `query`, `steps`, `item`), if any.
/// `{{ferry.url}}` and literal hosts are fine.
fn host_from_trigger_data(url: &str) -> Option<String> {
    // The authority ends at the first `/`, `?` or `#` after `://` (or after the
    // start, for a URL that begins with a template), outside `{{…}}`.
    let start = url.find("://").map_or(0, |at| at + 3);
    let mut depth = 0usize;
    let mut end = url.len();
    let bytes = url.as_bytes();
    let mut index = start;
    while index < bytes.len() {
        if url[index..].starts_with("{{") {
            depth += 1;
            index += 2;
            continue;
        }
        if url[index..].starts_with("}}") {
            depth = depth.saturating_sub(1);
            index += 2;
            continue;
        }
        if depth == 0 && matches!(bytes[index], b'/' | b'?' | b'#') {
            end = index;
            break;
        }
        index += 1;
    }
    let host_part = &url[..end];
    let mut rest = host_part;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let close = after.find("}}").unwrap_or(after.len());
        let expression = after[..close].trim();
        let reads_input = expression
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|word| matches!(word, "payload" | "headers" | "query" | "steps" | "item"));
        if reads_input {
            return Some(format!("{{{{{expression}}}}}"));
        }
        rest = &after[close.min(after.len())..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::host_from_trigger_data;

    #[test]
    fn hosts_built_from_trigger_data_are_found() {
        assert_eq!(
            host_from_trigger_data("https://{{payload.host}}/x").as_deref(),
            Some("{{payload.host}}")
        );
        assert_eq!(
            host_from_trigger_data("{{payload.callback}}").as_deref(),
            Some("{{payload.callback}}")
        );
        assert_eq!(
            host_from_trigger_data("https://api.{{lower headers.x-region}}.example.com/v1").as_deref(),
            Some("{{lower headers.x-region}}")
        );
        assert_eq!(
            host_from_trigger_data("https://api.example.com/{{payload.id}}?q={{query.q}}"),
            None
        );
        assert_eq!(host_from_trigger_data("{{ferry.url}}/hooks/demo-sink"), None);
        assert_eq!(host_from_trigger_data("https://chat.example.com/hooks/T0/B0"), None);
    }
}
