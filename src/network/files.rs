//! The container's `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`: files moor owns in
//! the container's directory, bind-mounted read-write into it (as Docker's). They are
//! rewritten in place, never replaced: a bind mount pins the inode, so a later rewrite (of
//! `/etc/hosts` as containers come and go) must reach the same file.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use moor_state::resources::{extra_host, ProcessOptions, HOST_GATEWAY};
use moor_state::ContainerSpec;

use super::NetworkError;

/// The files and where each is mounted in the container.
pub const FILES: [(&str, &str); 3] = [
    ("hosts", "/etc/hosts"),
    ("resolv.conf", "/etc/resolv.conf"),
    ("hostname", "/etc/hostname"),
];

/// Docker's loopback lines of every `/etc/hosts` it writes.
const LOCALHOST: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
    fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
    ff02::2\tip6-allrouters\n";

/// Docker's `/etc/hosts` for a container named `hostname` at `ip`.
pub fn hosts(ip: Ipv4Addr, hostname: &str) -> String {
    format!("{LOCALHOST}{ip}\t{hostname}\n")
}

/// The host's resolv.conf as a container gets it: loopback name servers (unreachable from
/// the container's namespace) removed, Google's public ones when none remain (Docker's rule).
pub fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let server = words.next().unwrap_or_default();
            if server.starts_with("127.") || server == "::1" {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// The `/etc/hosts` lines of ExtraHosts (`HOST:IP`, `host-gateway` as `gateway`), after
/// Docker's own lines.
pub fn extra_hosts(opts: &ProcessOptions, gateway: Option<Ipv4Addr>) -> String {
    let mut out = String::new();
    for line in &opts.extra_hosts {
        let Ok((host, ip)) = extra_host(line) else {
            continue;
        };
        let ip = match (ip.as_str(), gateway) {
            (HOST_GATEWAY, Some(gw)) => gw.to_string(),
            (HOST_GATEWAY, None) => continue,
            (ip, _) => ip.to_string(),
        };
        out.push_str(&format!("{ip}\t{host}\n"));
    }
    out
}

/// `base` (a resolv.conf) with Dns, DnsSearch and DnsOptions in place of its name servers,
/// search domains and options, as Docker writes them.
pub fn resolv_with(base: &str, opts: &ProcessOptions) -> String {
    if !opts.has_dns() {
        return base.to_string();
    }
    let mut out = String::new();
    for line in base.lines() {
        let key = line.split_whitespace().next().unwrap_or_default();
        let replaced = match key {
            "nameserver" => !opts.dns.is_empty(),
            "search" | "domain" => !opts.dns_search.is_empty(),
            "options" => !opts.dns_options.is_empty(),
            _ => false,
        };
        if !replaced {
            out.push_str(line);
            out.push('\n');
        }
    }
    for server in &opts.dns {
        out.push_str(&format!("nameserver {server}\n"));
    }
    if !opts.dns_search.is_empty() {
        out.push_str(&format!("search {}\n", opts.dns_search.join(" ")));
    }
    if !opts.dns_options.is_empty() {
        out.push_str(&format!("options {}\n", opts.dns_options.join(" ")));
    }
    out
}

/// Writes `text` into `path` in place (created when missing, truncated else).
fn write_in_place(path: &Path, text: &str) -> Result<(), NetworkError> {
    let io = |source| NetworkError::Io {
        what: "write",
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_data().map_err(io)
}

/// Rewrites an existing file moor owns (`/etc/hosts` as containers come and go) in place.
pub fn rewrite(path: &Path, text: &str) -> Result<(), NetworkError> {
    write_in_place(path, text)
}

/// Writes the three files of a container at `ip` (on a network whose gateway is
/// `gateway`) into `dir` and returns each with its place in the container.
pub fn write(
    dir: &Path,
    (ip, gateway): (Ipv4Addr, Ipv4Addr),
    hostname: &str,
    opts: &ProcessOptions,
) -> Result<Vec<(PathBuf, String)>, NetworkError> {
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let texts = [
        hosts(ip, hostname) + &extra_hosts(opts, Some(gateway)),
        resolv_with(&resolv_conf(&host_resolv), opts),
        format!("{hostname}\n"),
    ];
    let mut out = Vec::new();
    for ((name, dest), text) in FILES.iter().zip(texts) {
        let path = dir.join(name);
        write_in_place(&path, &text)?;
        out.push((path, dest.to_string()));
    }
    Ok(out)
}

/// For a runc container without a bridge network (`none`, `host`): its `/etc/hosts` and
/// `/etc/resolv.conf` written into `dir` when ExtraHosts or Dns* ask for lines of their own
/// (else none: the image's files, or the host's with `host`).
pub fn write_own(dir: &Path, spec: &ContainerSpec) -> Result<Vec<(PathBuf, String)>, NetworkError> {
    let opts = &spec.process;
    if opts.extra_hosts.is_empty() && !opts.has_dns() {
        return Ok(Vec::new());
    }
    let gateway = |l: &&String| extra_host(l).is_ok_and(|(_, ip)| ip == HOST_GATEWAY);
    if let Some(line) = opts.extra_hosts.iter().find(gateway) {
        return Err(NetworkError::NoGateway { line: line.clone() });
    }
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let (hosts_base, resolv_base) = match spec.network_mode.as_str() {
        "host" => (
            std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
            host_resolv,
        ),
        _ => (LOCALHOST.to_string(), resolv_conf(&host_resolv)),
    };
    let texts = [
        ("hosts", "/etc/hosts", hosts_base + &extra_hosts(opts, None)),
        (
            "resolv.conf",
            "/etc/resolv.conf",
            resolv_with(&resolv_base, opts),
        ),
    ];
    let mut out = Vec::new();
    for (name, dest, text) in texts {
        let path = dir.join(name);
        write_in_place(&path, &text)?;
        out.push((path, dest.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_name_servers_go_and_google_comes_when_none_remain() {
        let host = "search example.org\nnameserver 127.0.0.53\noptions edns0\n";
        assert_eq!(
            resolv_conf(host),
            "search example.org\noptions edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        let host = "nameserver 127.0.0.1\nnameserver 10.0.0.2\n";
        assert_eq!(resolv_conf(host), "nameserver 10.0.0.2\n");
    }

    #[test]
    fn hosts_names_the_container_and_files_are_rewritten_in_place() {
        let text = hosts(Ipv4Addr::new(172, 17, 0, 2), "web");
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"), "{text}");
        assert!(text.ends_with("172.17.0.2\tweb\n"), "{text}");
        let dir = tempfile::tempdir().expect("tempdir");
        let gw = Ipv4Addr::new(10, 0, 0, 1);
        let none = ProcessOptions::default();
        let first = write(dir.path(), (Ipv4Addr::new(10, 0, 0, 2), gw), "a", &none).expect("write");
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let before = inode(&first[0].0);
        write(dir.path(), (Ipv4Addr::new(10, 0, 0, 3), gw), "b", &none).expect("rewrite");
        assert_eq!(inode(&first[0].0), before);
        let now = std::fs::read_to_string(&first[0].0).unwrap();
        assert!(now.ends_with("10.0.0.3\tb\n"), "{now}");
        assert_eq!(std::fs::read_to_string(&first[2].0).unwrap(), "b\n");
        assert_eq!(first[1].1, "/etc/resolv.conf");
    }
}
