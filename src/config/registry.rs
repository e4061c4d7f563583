//! daemon.json `insecure-registries`: registries moor reaches over plain http. Docker's forms:
//! `host[:port]` (matched exactly) or a CIDR (`10.0.0.0/8`, `fd00::/8`) matched against the
//! registry host's addresses. Loopback registries (127.0.0.0/8, ::1) are always insecure, as
//! in Docker. And `registry-mirrors`: `http[s]://host[:port][/]` endpoints tried, in order,
//! before Docker Hub for a pull of a Docker Hub image ([`Mirror`]).

use std::net::IpAddr;

/// The parsed list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InsecureRegistries {
    /// `host[:port]` entries, as written.
    hosts: Vec<String>,
    /// CIDR entries: network address and prefix length.
    cidrs: Vec<(IpAddr, u8)>,
}

impl InsecureRegistries {
    /// Parses the entries; an entry that is neither a CIDR nor `host[:port]` is refused with
    /// a message naming it.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut out = InsecureRegistries::default();
        for entry in entries {
            if entry.contains("://") {
                return Err(format!(
                    "insecure-registries: {entry:?} should not contain '://' (give host[:port] or a CIDR)"
                ));
            }
            if let Some((net, len)) = entry.split_once('/') {
                let bad = || format!("insecure-registries: {entry:?} is not a valid CIDR");
                let ip: IpAddr = net.parse().map_err(|_| bad())?;
                let len: u8 = len.parse().map_err(|_| bad())?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                if len > max {
                    return Err(bad());
                }
                out.cidrs.push((ip, len));
                continue;
            }
            let valid = !entry.is_empty()
                && entry.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                });
            if !valid {
                return Err(format!(
                    "insecure-registries: {entry:?} is neither host[:port] nor a CIDR"
                ));
            }
            out.hosts.push(entry.to_ascii_lowercase());
        }
        Ok(out)
    }

    /// Whether the registry `host` (`name[:port]`), whose name resolves to `addrs`, is
    /// reached over plain http.
    pub fn allows(&self, host: &str, addrs: &[IpAddr]) -> bool {
        let host = host.to_ascii_lowercase();
        let name = host_name(&host);
        if self.hosts.iter().any(|h| *h == host || h == name) {
            return true;
        }
        let literal = name.trim_matches(['[', ']']).parse::<IpAddr>().ok();
        let all: Vec<IpAddr> = literal.into_iter().chain(addrs.iter().copied()).collect();
        all.iter().any(|ip| {
            ip.is_loopback() || self.cidrs.iter().any(|(net, len)| in_cidr(*ip, *net, *len))
        })
    }
}

impl InsecureRegistries {
    /// The `host[:port]` entries (Docker's `IndexConfigs` with `Secure: false`).
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The CIDR entries as `net/len`, loopback's first (Docker's `InsecureRegistryCIDRs`).
    pub fn cidrs(&self) -> Vec<String> {
        let loopback = ["::1/128".to_string(), "127.0.0.0/8".to_string()];
        let listed = self.cidrs.iter().map(|(net, len)| format!("{net}/{len}"));
        loopback.into_iter().chain(listed).collect()
    }
}

/// One `registry-mirrors` entry: an endpoint that serves Docker Hub's repositories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// `https` reaches it over TLS, `http` in plain text, as written (Docker's rule).
    pub tls: bool,
    /// `host[:port]`, lowercase.
    pub host: String,
}

impl Mirror {
    /// Parses `http[s]://host[:port][/]`; anything else (another scheme, credentials, a
    /// path, a query) is refused with a message naming the entry and `key` (a path is
    /// refused: the registry client moor uses puts `/v2/` at the host's root, and a path
    /// would be dropped).
    pub fn parse(key: &str, entry: &str) -> Result<Mirror, String> {
        let bad = |why: &str| format!("{key}: {entry:?} {why}");
        let (tls, rest) = match entry.split_once("://") {
            Some(("https", rest)) => (true, rest),
            Some(("http", rest)) => (false, rest),
            Some((scheme, _)) => {
                return Err(bad(&format!(
                    "has the unsupported scheme {scheme:?} (http or https)"
                )))
            }
            None => return Err(bad("is not a URL (give http[s]://host[:port])")),
        };
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host.contains('@') {
            return Err(bad("carries credentials, which a mirror URL may not"));
        }
        if !path.is_empty() {
            return Err(bad(
                "has a path or query: moor reaches a mirror at its root only",
            ));
        }
        let valid = !host.is_empty()
            && host.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
            });
        if !valid {
            return Err(bad("does not name a host[:port]"));
        }
        Ok(Mirror {
            tls,
            host: host.to_ascii_lowercase(),
        })
    }

    /// Parses every entry of `registry-mirrors`.
    pub fn parse_all(entries: &[String]) -> Result<Vec<Mirror>, String> {
        entries
            .iter()
            .map(|e| Mirror::parse("registry-mirrors", e))
            .collect()
    }

    /// The URL as Docker shows it (`https://host/`).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/", self.host)
    }
}

/// `name` of `name[:port]` (an IPv6 literal keeps its brackets).
pub fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn in_cidr(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    let (a, b, bits) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    if len == 0 {
        return true;
    }
    let shift = bits - u32::from(len);
    (a >> shift) == (b >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> Result<InsecureRegistries, String> {
        InsecureRegistries::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn hosts_cidrs_and_loopback() {
        let r = parse(&["reg.example:5000", "10.1.0.0/16"]).expect("parse");
        assert!(r.allows("reg.example:5000", &[]));
        assert!(!r.allows("reg.example:5001", &[]));
        assert!(r.allows("other:443", &["10.1.2.3".parse().unwrap()]));
        assert!(!r.allows("other:443", &["10.2.0.1".parse().unwrap()]));
        assert!(r.allows("127.0.0.1:5000", &[]));
        assert!(r.allows("localhost:5000", &["127.0.0.1".parse().unwrap()]));
        assert!(r.allows("[::1]:5000", &[]));
        assert!(!InsecureRegistries::default().allows("docker.io", &[]));
    }

    #[test]
    fn mirrors_parse_as_docker_shows_them() {
        let m = Mirror::parse("registry-mirrors", "https://Mirror.example:5000/").unwrap();
        assert_eq!((m.tls, m.host.as_str()), (true, "mirror.example:5000"));
        assert_eq!(m.url(), "https://mirror.example:5000/");
        let m = Mirror::parse("registry-mirrors", "http://127.0.0.1:5000").unwrap();
        assert_eq!(m.url(), "http://127.0.0.1:5000/");
        for bad in [
            "mirror.example",
            "ftp://mirror.example",
            "https://u:p@mirror.example",
            "https://mirror.example/path",
            "https://mirror.example/?q=1",
            "https://",
            "https://a b",
        ] {
            let e = Mirror::parse("registry-mirrors", bad).expect_err(bad);
            assert!(e.contains(bad) && e.contains("registry-mirrors"), "{e}");
        }
        let r = parse(&["10.1.0.0/16", "reg:5000"]).unwrap();
        assert_eq!(r.cidrs(), ["::1/128", "127.0.0.0/8", "10.1.0.0/16"]);
        assert_eq!(r.hosts(), ["reg:5000"]);
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in ["http://reg:5000", "10.0.0.0/33", "1.2.3/8", "a b"] {
            let e = parse(&[bad]).expect_err(bad);
            assert!(e.contains(bad) && e.contains("insecure-registries"), "{e}");
        }
    }
}
