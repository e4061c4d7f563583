//! The container's `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`: files moor owns in
//! the container's directory, bind-mounted read-write into it (as Docker's). They are
//! rewritten in place, never replaced: a bind mount pins the inode, so a later rewrite (of
//! `/etc/hosts` as containers come and go) must reach the same file.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::NetworkError;

/// The files and where each is mounted in the container.
pub const FILES: [(&str, &str); 3] = [
    ("hosts", "/etc/hosts"),
    ("resolv.conf", "/etc/resolv.conf"),
    ("hostname", "/etc/hostname"),
];

/// Docker's `/etc/hosts` for a container named `hostname` at `ip`.
pub fn hosts(ip: Ipv4Addr, hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n{ip}\t{hostname}\n"
    )
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

/// Writes the three files into `dir` and returns each with its place in the container.
pub fn write(
    dir: &Path,
    ip: Ipv4Addr,
    hostname: &str,
) -> Result<Vec<(PathBuf, String)>, NetworkError> {
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let texts = [
        hosts(ip, hostname),
        resolv_conf(&host_resolv),
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
        let first = write(dir.path(), Ipv4Addr::new(10, 0, 0, 2), "a").expect("write");
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let before = inode(&first[0].0);
        write(dir.path(), Ipv4Addr::new(10, 0, 0, 3), "b").expect("rewrite");
        assert_eq!(inode(&first[0].0), before);
        let now = std::fs::read_to_string(&first[0].0).unwrap();
        assert!(now.ends_with("10.0.0.3\tb\n"), "{now}");
        assert_eq!(std::fs::read_to_string(&first[2].0).unwrap(), "b\n");
        assert_eq!(first[1].1, "/etc/resolv.conf");
    }
}
