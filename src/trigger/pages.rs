//! The next page of a polled answer: from its `Link` header (RFC 8288), a URL
//! in its body, or a cursor in its body sent back as a query parameter.

use serde_json::Value;

use crate::recipe::{ItemsPath, Pagination};

/// The URL of the page after the one at `current`, or `None` on the last page.
/// A relative URL is taken relative to `current`.
pub fn next_url(
    pagination: &Pagination,
    current: &str,
    link: Option<&str>,
    body: &Value,
) -> Result<Option<String>, String> {
    let next = match pagination {
        Pagination::Link => link.and_then(next_link).map(str::to_owned),
        Pagination::NextUrl(path) => text_at(path, body)?,
        Pagination::Cursor { path, param } => {
            let Some(cursor) = text_at(path, body)? else {
                return Ok(None);
            };
            let mut url =
                reqwest::Url::parse(current).map_err(|error| format!("the page URL does not parse: {error}"))?;
            let kept: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(name, _)| name != param)
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect();
            url.query_pairs_mut()
                .clear()
                .extend_pairs(kept)
                .append_pair(param, &cursor);
            return Ok(Some(url.into()));
        }
    };
    let Some(next) = next else {
        return Ok(None);
    };
    let base = reqwest::Url::parse(current).map_err(|error| format!("the page URL does not parse: {error}"))?;
    base.join(&next)
        .map(|url| Some(url.into()))
        .map_err(|error| format!("the next page's URL `{next}` does not parse: {error}"))
}

/// The text at `path` in the body (a string or a number), or `None` when it is
/// absent, `null` or empty: the last page.
fn text_at(path: &ItemsPath, body: &Value) -> Result<Option<String>, String> {
    match path.path.query(body).first() {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(Value::Number(number)) => Ok(Some(number.to_string())),
        Some(other) => Err(format!(
            "`{}` gave {other}, not the next page's URL or cursor",
            path.source
        )),
    }
}

/// The target of the `rel="next"` link of a `Link` header value.
fn next_link(header: &str) -> Option<&str> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let close = open + rest[open..].find('>')?;
        let target = &rest[open + 1..close];
        let after = &rest[close + 1..];
        // The link's parameters run to the next link (`, <`), or the end.
        let end = after.find(", <").or_else(|| after.find(",<")).unwrap_or(after.len());
        let is_next = after[..end].split(';').any(|param| {
            let Some((name, value)) = param.split_once('=') else {
                return false;
            };
            name.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target);
        }
        rest = &after[end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(source: &str) -> ItemsPath {
        ItemsPath {
            source: source.to_owned(),
            path: serde_json_path::JsonPath::parse(source).expect("path"),
        }
    }

    #[test]
    fn link_headers_give_their_next_target() {
        let github = r#"<https://api.github.com/repositories/1/issues?page=2>; rel="next", <https://api.github.com/repositories/1/issues?page=5>; rel="last""#;
        assert_eq!(
            next_link(github),
            Some("https://api.github.com/repositories/1/issues?page=2")
        );
        assert_eq!(
            next_link(r#"</p/1>; rel="prev", </p/3>; rel="next last""#),
            Some("/p/3")
        );
        assert_eq!(next_link(r#"<https://x/1>; rel=prev"#), None);
        assert_eq!(next_link("garbage"), None);
        let next = next_url(
            &Pagination::Link,
            "https://x.example/feed?page=1",
            Some(r#"</feed?page=2>; rel=next"#),
            &Value::Null,
        );
        assert_eq!(next, Ok(Some("https://x.example/feed?page=2".to_owned())));
    }

    #[test]
    fn urls_and_cursors_come_from_the_body() {
        let body = serde_json::json!({"links": {"next": "https://x.example/feed?p=2"}, "meta": {"next": 42}});
        let next = next_url(
            &Pagination::NextUrl(path("$.links.next")),
            "https://x.example/feed",
            None,
            &body,
        );
        assert_eq!(next, Ok(Some("https://x.example/feed?p=2".to_owned())));
        let cursor = Pagination::Cursor {
            path: path("$.meta.next"),
            param: "cursor".to_owned(),
        };
        let next = next_url(&cursor, "https://x.example/feed?cursor=41&limit=5", None, &body);
        assert_eq!(next, Ok(Some("https://x.example/feed?limit=5&cursor=42".to_owned())));
        let last = serde_json::json!({"meta": {"next": null}, "links": {"next": ""}});
        assert_eq!(next_url(&cursor, "https://x.example/feed", None, &last), Ok(None));
        assert_eq!(
            next_url(
                &Pagination::NextUrl(path("$.links.next")),
                "https://x.example/feed",
                None,
                &last
            ),
            Ok(None)
        );
    }
}
