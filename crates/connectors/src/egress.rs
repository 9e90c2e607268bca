//! The operator's egress policy: which networks and hosts connections may reach.
//!
//! `--egress-allow` takes a comma-separated list of CIDR networks (`10.0.0.0/8`), IP addresses,
//! host names (`db.internal`), domain wildcards (`*.corp.example`) and the words `loopback`,
//! `private` (RFC 1918 and unique-local) and `public` (every globally routable address). Without
//! the option the hub may reach public addresses only. Whatever the list says, link-local
//! addresses — where cloud metadata services live (169.254.169.254, fd00:ec2::254) — and the
//! unspecified address are always refused.
//!
//! Every address is checked after name resolution, and connectors connect to the checked
//! addresses, so a name cannot resolve to something else between the check and the connection.
//! The HTTP client resolves through the policy and checks each redirect's target before following.

use crate::{ConnectorError, FailureKind};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostRule {
    Exact(String),
    /// `*.corp.example`: any name ending in `.corp.example`.
    Suffix(String),
}

/// The networks the word `loopback` stands for.
const LOOPBACK: &[&str] = &["127.0.0.0/8", "::1/128"];
/// The networks the word `private` stands for (RFC 1918 and unique-local).
const PRIVATE: &[&str] = &["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"];

/// Which addresses connections may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPolicy {
    networks: Vec<IpNet>,
    hosts: Vec<HostRule>,
    public: bool,
}

impl Default for EgressPolicy {
    /// Public addresses only.
    fn default() -> Self {
        EgressPolicy {
            networks: Vec::new(),
            hosts: Vec::new(),
            public: true,
        }
    }
}

impl EgressPolicy {
    /// Parses an `--egress-allow` list. An empty list allows nothing.
    pub fn parse(list: &str) -> Result<EgressPolicy, String> {
        let mut policy = EgressPolicy {
            networks: Vec::new(),
            hosts: Vec::new(),
            public: false,
        };
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let lower = entry.to_ascii_lowercase();
            match lower.as_str() {
                "public" => policy.public = true,
                "loopback" => policy.networks.extend(parse_nets(LOOPBACK)),
                "private" => policy.networks.extend(parse_nets(PRIVATE)),
                _ => {
                    if let Ok(net) = lower.parse::<IpNet>() {
                        policy.networks.push(net);
                    } else if let Ok(ip) = lower.parse::<IpAddr>() {
                        policy.networks.push(IpNet::from(ip));
                    } else if let Some(suffix) = lower.strip_prefix("*.") {
                        check_name(entry, suffix)?;
                        policy.hosts.push(HostRule::Suffix(format!(".{suffix}")));
                    } else {
                        check_name(entry, &lower)?;
                        policy.hosts.push(HostRule::Exact(lower));
                    }
                }
            }
        }
        Ok(policy)
    }

    /// Whether `ip` may be reached, whatever name led to it.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if always_refused(ip) {
            return false;
        }
        self.networks.iter().any(|net| net.contains(&ip)) || (self.public && is_public(ip))
    }

    /// What the policy allows, in words for the operator: "public addresses only",
    /// "this machine (loopback), private networks and public addresses", "10.1.0.0/16 and
    /// db.internal", or "nothing".
    pub fn describe(&self) -> String {
        let loopback = parse_nets(LOOPBACK);
        let private = parse_nets(PRIVATE);
        let has_all =
            |set: &[IpNet]| !set.is_empty() && set.iter().all(|n| self.networks.contains(n));
        let mut parts = Vec::new();
        let with_loopback = has_all(&loopback);
        let with_private = has_all(&private);
        if with_loopback {
            parts.push("this machine (loopback)".to_owned());
        }
        if with_private {
            parts.push("private networks".to_owned());
        }
        for net in &self.networks {
            let named = (with_loopback && loopback.contains(net))
                || (with_private && private.contains(net));
            if !named {
                parts.push(net.to_string());
            }
        }
        for host in &self.hosts {
            parts.push(match host {
                HostRule::Exact(name) => name.clone(),
                HostRule::Suffix(suffix) => format!("*{suffix}"),
            });
        }
        match (parts.is_empty(), self.public) {
            (true, true) => "public addresses only".to_owned(),
            (true, false) => "nothing".to_owned(),
            (false, public) => {
                if public {
                    parts.push("public addresses".to_owned());
                }
                let last = parts.pop().unwrap_or_default();
                if parts.is_empty() {
                    last
                } else {
                    format!("{} and {last}", parts.join(", "))
                }
            }
        }
    }

    /// Whether the host name is listed by name (its addresses are then allowed, except the
    /// always-refused ones).
    pub fn allows_name(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.iter().any(|rule| match rule {
            HostRule::Exact(name) => *name == host,
            HostRule::Suffix(suffix) => host.ends_with(suffix.as_str()),
        })
    }

    fn allows(&self, host: Option<&str>, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if always_refused(ip) {
            return false;
        }
        host.is_some_and(|h| self.allows_name(h)) || self.allows_ip(ip)
    }

    /// Resolves `host` and answers the addresses the policy allows; refused when there is none.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ConnectorError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return if self.allows(None, ip) {
                Ok(vec![SocketAddr::new(canonical(ip), port)])
            } else {
                Err(refused())
            };
        }
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| {
                ConnectorError::failed(FailureKind::Dns, "the host name does not resolve")
            })?
            .collect();
        if found.is_empty() {
            return Err(ConnectorError::failed(
                FailureKind::Dns,
                "the host name does not resolve",
            ));
        }
        let allowed: Vec<SocketAddr> = found
            .into_iter()
            .filter(|addr| self.allows(Some(host), addr.ip()))
            .map(|addr| SocketAddr::new(canonical(addr.ip()), addr.port()))
            .collect();
        if allowed.is_empty() {
            return Err(refused());
        }
        Ok(allowed)
    }

    /// Checks a URL's host before a request: IP literals here, names when they are resolved.
    pub fn check_url(&self, url: &url::Url) -> Result<(), ConnectorError> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) if !self.allows(None, IpAddr::V4(ip)) => Err(refused()),
            Some(url::Host::Ipv6(ip)) if !self.allows(None, IpAddr::V6(ip)) => Err(refused()),
            Some(_) => Ok(()),
            None => Err(ConnectorError::failed(
                FailureKind::Policy,
                "the URL has no host",
            )),
        }
    }

    /// An HTTP client that reaches only what this policy allows: names resolve through the
    /// policy, IP literals and redirect targets are checked, at most 5 redirects and only within
    /// the first URL's origin, no proxy from the environment.
    pub fn http_client(
        self: &Arc<Self>,
        timeout: Duration,
    ) -> Result<reqwest::Client, ConnectorError> {
        // reqwest is built without a bundled provider: make sure ring's is the process default
        // (a no-op when the server installed it already).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let for_redirects = Arc::clone(self);
        reqwest::Client::builder()
            .user_agent(concat!("lockstep/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .connect_timeout(timeout)
            .timeout(timeout)
            .dns_resolver(Arc::new(PolicyResolver(Arc::clone(self))))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                let same_origin = attempt
                    .previous()
                    .first()
                    .is_some_and(|first| first.origin() == attempt.url().origin());
                if attempt.previous().len() >= 5 {
                    attempt.error("too many redirects")
                } else if !same_origin {
                    // Credentials in custom headers (API keys) would follow the redirect to
                    // another host: connectors follow redirects within an origin only.
                    attempt.error("redirect to another origin: the egress policy follows redirects within one origin only")
                } else if for_redirects.check_url(attempt.url()).is_err() {
                    attempt.error("redirect to an address the egress policy refuses")
                } else {
                    attempt.follow()
                }
            }))
            .build()
            .map_err(|_| {
                ConnectorError::failed(FailureKind::Other, "cannot set up the HTTP client")
            })
    }
}

fn refused() -> ConnectorError {
    ConnectorError::failed(
        FailureKind::Policy,
        "the egress policy does not allow this address (see --egress-allow)",
    )
}

fn parse_nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().filter_map(|n| n.parse().ok()).collect()
}

fn check_name(entry: &str, name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "'{entry}' is not a network, an address, a host name, '*.domain', 'loopback', 'private' or 'public'"
        ))
    }
}

/// IPv4-mapped IPv6 addresses are checked as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Link-local (cloud metadata services), the AWS IPv6 metadata address and the unspecified
/// address (which reaches the local host): refused whatever the policy lists.
fn always_refused(ip: IpAddr) -> bool {
    const AWS_V6_METADATA: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
    match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast(),
        IpAddr::V6(v6) => {
            v6.is_unicast_link_local() || v6.is_unspecified() || v6 == AWS_V6_METADATA
        }
    }
}

/// Globally routable: not private, loopback, shared (CGNAT), documentation, benchmarking,
/// multicast or reserved.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_documentation()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || (a == 192 && b == 0 && v4.octets().get(2) == Some(&0)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments().first().copied().unwrap_or(0);
            // Global unicast is 2000::/3, less documentation (2001:db8::/32).
            (first & 0xe000) == 0x2000 && !(first == 0x2001 && v6.segments().get(1) == Some(&0xdb8))
        }
    }
}

/// reqwest's resolver, filtered by the policy.
struct PolicyResolver(Arc<EgressPolicy>);

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Arc::clone(&self.0);
        Box::pin(async move {
            let addrs = policy
                .resolve(name.as_str(), 0)
                .await
                .map_err(|err| -> Box<dyn std::error::Error + Send + Sync> { Box::new(err) })?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Used by tests and by callers that need an address family check.
pub fn is_loopback(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => v4 == Ipv4Addr::LOCALHOST || v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn describe_says_what_is_allowed_in_words() {
        let described = |list: &str| EgressPolicy::parse(list).map(|p| p.describe());
        assert_eq!(EgressPolicy::default().describe(), "public addresses only");
        assert_eq!(described(""), Ok("nothing".to_owned()));
        assert_eq!(
            described("loopback"),
            Ok("this machine (loopback)".to_owned())
        );
        assert_eq!(
            described("public,private,loopback"),
            Ok("this machine (loopback), private networks and public addresses".to_owned())
        );
        assert_eq!(
            described("10.1.0.0/16, db.internal, *.corp.example"),
            Ok("10.1.0.0/16, db.internal and *.corp.example".to_owned())
        );
    }

    #[test]
    fn default_allows_public_only() {
        let p = EgressPolicy::default();
        assert!(p.allows_ip(ip("93.184.216.34")));
        assert!(p.allows_ip(ip("2606:4700::1111")));
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "::1",
            "fd12::1",
            "169.254.169.254",
            "0.0.0.0",
            "192.0.2.1",
            "2001:db8::1",
        ] {
            assert!(
                !p.allows_ip(ip(refused)),
                "{refused} must be refused by default"
            );
        }
    }

    #[test]
    fn metadata_and_link_local_are_refused_whatever_the_list() {
        let p = EgressPolicy::parse("0.0.0.0/0,::/0,public,private,loopback,169.254.0.0/16")
            .unwrap_or_default();
        for refused in [
            "169.254.169.254",
            "169.254.0.1",
            "fd00:ec2::254",
            "fe80::1",
            "0.0.0.0",
            "::",
            "::ffff:169.254.169.254",
        ] {
            assert!(
                !p.allows_ip(ip(refused)),
                "{refused} must always be refused"
            );
        }
        assert!(p.allows_ip(ip("10.0.0.1")));
    }

    #[test]
    fn lists_networks_hosts_and_words() {
        let p = EgressPolicy::parse("10.0.0.0/8, db.internal,*.corp.example,loopback")
            .unwrap_or_default();
        assert!(p.allows_ip(ip("10.9.8.7")));
        assert!(p.allows_ip(ip("127.0.0.1")));
        assert!(p.allows_ip(ip("::ffff:127.0.0.1")));
        assert!(!p.allows_ip(ip("192.168.0.1")));
        assert!(!p.allows_ip(ip("93.184.216.34")), "public is not listed");
        assert!(p.allows_name("DB.internal."));
        assert!(p.allows_name("pg.corp.example"));
        assert!(!p.allows_name("corp.example.evil"));
        assert!(!p.allows(Some("db.internal"), ip("169.254.169.254")));
        assert!(p.allows(Some("db.internal"), ip("192.168.0.1")));
    }

    #[test]
    fn refuses_malformed_entries() {
        assert!(EgressPolicy::parse("10.0.0.0/33").is_err());
        assert!(EgressPolicy::parse("db internal").is_err());
        assert!(EgressPolicy::parse("http://x").is_err());
    }

    #[tokio::test]
    async fn resolve_refuses_what_the_policy_refuses() {
        let p = EgressPolicy::default();
        let err = p.resolve("127.0.0.1", 5432).await.err();
        assert_eq!(err.and_then(|e| e.kind()), Some(FailureKind::Policy));
        let err = p.resolve("localhost", 5432).await.err();
        assert_eq!(err.and_then(|e| e.kind()), Some(FailureKind::Policy));
        let p = EgressPolicy::parse("loopback").unwrap_or_default();
        let ok = p.resolve("localhost", 5432).await.unwrap_or_default();
        assert!(!ok.is_empty() && ok.iter().all(|a| a.ip().is_loopback() && a.port() == 5432));
    }
}
