//! Where steps and polls may send requests (`FERRY_DENY_PRIVATE_DESTINATIONS`).
//!
//! With the policy on, only globally reachable unicast addresses are allowed:
//! no loopback, private, link-local (cloud metadata), CGNAT, ULA, multicast,
//! documentation or other special ranges. A name is checked on what it
//! *resolves to*, inside the client's resolver, and the client connects to the
//! addresses that were checked — there is no second lookup that DNS rebinding
//! could answer differently. Every redirect hop goes through the same checks.
//! Off by default: operators run local destinations.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::error::{AttemptError, Refused};
use super::sender::{Body, BoxError, PlainHttp};

/// What destinations are allowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestinationPolicy {
    pub deny_private: bool,
}

/// The shared HTTP clients with the policy they enforce.
#[derive(Debug, Clone)]
pub struct Destinations {
    client: reqwest::Client,
    /// For plain-HTTP URLs, when neither a proxy nor the policy applies.
    plain: Option<PlainHttp>,
    pub policy: DestinationPolicy,
}

impl Destinations {
    /// The daemon's client: redirects are followed by [`super::http::execute`]
    /// itself (GET only, each hop checked), never by reqwest.
    pub fn new(policy: DestinationPolicy) -> Result<Self, reqwest::Error> {
        // reqwest is built without a default crypto provider (no OpenSSL, no
        // aws-lc): install ring once per process. A second install is a no-op error.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .user_agent(super::sender::AGENT)
            .redirect(reqwest::redirect::Policy::none());
        let proxied = proxy_in_environment();
        if !proxied {
            // reqwest matches every request against the environment's proxies,
            // even when there are none, at every delivery (counted with callgrind).
            // Without any, the client does not look.
            builder = builder.no_proxy();
        }
        if policy.deny_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(Self {
            client: builder.build()?,
            // A proxy or the policy's resolver are reqwest's to apply.
            plain: (!proxied && !policy.deny_private).then(PlainHttp::new),
            policy,
        })
    }

    /// Sends one request (redirects are the caller's to follow) and gives the
    /// answer as soon as its head has come.
    pub(super) async fn send(
        &self,
        method: reqwest::Method,
        url: &Url,
        headers: reqwest::header::HeaderMap,
        body: Option<hyper::body::Bytes>,
    ) -> Result<hyper::Response<Body>, BoxError> {
        match &self.plain {
            Some(plain) if PlainHttp::serves(url) => plain.send(method, url, headers, body).await,
            _ => super::sender::send_reqwest(&self.client, method, url, headers, body).await,
        }
    }

    /// Refuses a URL this policy does not allow before any connection: a scheme
    /// other than http(s), or a literal address that is not public. Names are
    /// checked when they are resolved.
    pub fn check(&self, url: &Url) -> Result<(), AttemptError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(AttemptError::Build(format!(
                "`{}:` URLs are not allowed; use http or https",
                url.scheme()
            )));
        }
        if !self.policy.deny_private {
            return Ok(());
        }
        let address = match url.host() {
            Some(url::Host::Ipv4(address)) => IpAddr::V4(address),
            Some(url::Host::Ipv6(address)) => IpAddr::V6(address),
            Some(url::Host::Domain(_)) => return Ok(()),
            None => return Err(AttemptError::Build("the URL has no host".to_owned())),
        };
        if is_public(address) {
            Ok(())
        } else {
            Err(Refused {
                address,
                resolved_from: None,
            }
            .into())
        }
    }
}

/// Whether the daemon's environment names a proxy, in the variables reqwest
/// reads on Linux (`NO_PROXY` only narrows these).
fn proxy_in_environment() -> bool {
    [
        "ALL_PROXY",
        "all_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

/// A resolver that answers only when every address of a name is public.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ips: Vec<IpAddr> = addresses.iter().map(SocketAddr::ip).collect();
            check_resolved(&host, &ips).map_err(|error| -> BoxError {
                match error {
                    // Typed, so that it is known again among reqwest's causes.
                    AttemptError::Refused(refused) => Box::new(refused),
                    other => other.to_string().into(),
                }
            })?;
            let addresses: Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// Refuses a name unless every address it resolves to is public. One private
/// answer among public ones is a rebinding attempt: the name is refused rather
/// than narrowed to its public answers.
pub fn check_resolved(host: &str, addresses: &[IpAddr]) -> Result<(), AttemptError> {
    if let Some(private) = addresses.iter().find(|address| !is_public(**address)) {
        return Err(Refused {
            address: *private,
            resolved_from: Some(host.to_owned()),
        }
        .into());
    }
    if addresses.is_empty() {
        return Err(AttemptError::Transport(format!("`{host}` resolves to no address")));
    }
    Ok(())
}

/// Whether an address is globally reachable unicast. Addresses that embed an
/// IPv4 address (mapped, NAT64, 6to4) are judged by it or refused.
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(address: Ipv4Addr) -> bool {
    let [a, b, c, _] = address.octets();
    let special = a == 0                              // "this network"
        || a == 10                                    // private
        || (a == 100 && (64..128).contains(&b))       // CGNAT
        || a == 127                                   // loopback
        || (a == 169 && b == 254)                     // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))        // private
        || (a == 192 && b == 0 && c == 0)             // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)             // documentation
        || (a == 192 && b == 88 && c == 99)           // 6to4 relay anycast
        || (a == 192 && b == 168)                     // private
        || (a == 198 && (b == 18 || b == 19))         // benchmarking
        || (a == 198 && b == 51 && c == 100)          // documentation
        || (a == 203 && b == 0 && c == 113)           // documentation
        || a >= 224; // multicast, reserved, broadcast
    !special
}

fn is_public_v6(address: Ipv6Addr) -> bool {
    let segments = address.segments();
    // Only global unicast (2000::/3) can be public…
    if segments[0] & 0xe000 != 0x2000 {
        return false;
    }
    // …minus its special blocks: IETF protocol assignments and Teredo
    // (2001::/23), documentation (2001:db8::/32), 6to4 (2002::/16, which embeds
    // an IPv4 address), ORCHID and benchmarking ranges.
    let special = (segments[0] == 0x2001 && (segments[1] < 0x0200 || segments[1] == 0x0db8))
        || segments[0] == 0x2002
        || (segments[0] == 0x3fff && segments[1] < 0x1000);
    !special
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().expect("an address"))
    }

    #[test]
    fn special_ranges_are_not_public() {
        for address in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "127.0.0.1",
            "169.254.169.254",
            "172.31.255.255",
            "192.168.0.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "2002:7f00:1::",
        ] {
            assert!(!public(address), "{address}");
        }
        for address in [
            "8.8.8.8",
            "93.184.215.14",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(public(address), "{address}");
        }
    }
}
