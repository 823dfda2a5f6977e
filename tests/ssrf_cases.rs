//! `tests/data/ssrf_cases.json` (a copy of `shared/data/`) against the
//! destination policy with `FERRY_DENY_PRIVATE_DESTINATIONS` on: each URL is
//! blocked or allowed as the case says, judged on the addresses it resolves to
//! (the case gives them, as the daemon's resolver would get them), and a
//! redirect to a blocked address is not followed.

use std::net::IpAddr;

use ferry::action::destination::check_resolved;
use ferry::action::{DestinationPolicy, Destinations};
use reqwest::Url;
use serde_json::Value;

/// `block`, `allow` or `no_follow`, as the policy decides.
fn decide(destinations: &Destinations, case: &Value) -> Result<&'static str, String> {
    let url = match Url::parse(case["url"].as_str().ok_or("no url")?) {
        Ok(url) => url,
        Err(_) => return Ok("block"),
    };
    if let Some(expected) = case["normalized_host"].as_str() {
        let host = url.host_str().unwrap_or_default();
        if host != expected {
            return Err(format!("the URL parser gives host `{host}`, the case `{expected}`"));
        }
    }
    if destinations.check(&url).is_err() {
        return Ok("block");
    }
    if let Some(url::Host::Domain(name)) = url.host() {
        let addresses: Vec<IpAddr> = case["resolves_to"]
            .as_array()
            .ok_or("a name without resolves_to")?
            .iter()
            .map(|address| address.as_str().and_then(|text| text.parse().ok()).ok_or("an address"))
            .collect::<Result<_, _>>()?;
        if check_resolved(name, &addresses).is_err() {
            return Ok("block");
        }
    }
    if let Some(location) = case["response"]["location"].as_str() {
        let next = url.join(location).map_err(|error| error.to_string())?;
        if destinations.check(&next).is_err() {
            return Ok("no_follow");
        }
    }
    Ok("allow")
}

#[test]
fn every_case_is_blocked_or_allowed_as_it_says() {
    let text =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ssrf_cases.json"))
            .expect("cases");
    let document: Value = serde_json::from_str(&text).expect("JSON");
    let cases = document["cases"].as_array().expect("cases");
    assert!(cases.len() >= 30);
    let destinations = Destinations::new(DestinationPolicy { deny_private: true }).expect("client");
    let mut wrong = Vec::new();
    for case in cases {
        let expected = case["expected"].as_str().expect("expected");
        match decide(&destinations, case) {
            Ok(decided) if decided == expected => {}
            outcome => wrong.push(format!(
                "{} ({}): expected {expected}, got {outcome:?}",
                case["url"], case["reason"]
            )),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cases disagree:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // With the policy off (the default) only the scheme is checked.
    let open = Destinations::new(DestinationPolicy::default()).expect("client");
    assert!(open.check(&Url::parse("http://127.0.0.1:8080/").expect("url")).is_ok());
    assert!(
        open.check(&Url::parse("gopher://127.0.0.1:6379/_INFO").expect("url"))
            .is_err()
    );
}
