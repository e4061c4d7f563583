//! The capability set of a runc container: Docker's defaults tweaked by `--cap-add` and
//! `--cap-drop` exactly as moby's `caps.TweakCapabilities` does (`ALL` in add: every
//! capability but the dropped ones; `ALL` in drop: only the added ones), or every
//! capability the daemon holds for `--privileged`.

use oci_spec::runtime::Capability;

/// Every capability in kernel order (bit 0 first).
const ALL: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// A capability name as Docker takes it (`NET_ADMIN`, `CAP_NET_ADMIN`, any case), or None.
pub fn parse(name: &str) -> Option<Capability> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

/// The capabilities the daemon itself holds in its bounding set (`CapBnd` of
/// /proc/self/status): a container cannot get more (containerd's `WithAllCurrentCapabilities`,
/// which privileged containers use); every known one when the file cannot be read.
fn all() -> Vec<Capability> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s
                .lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))?
                .trim()
                .to_string();
            u64::from_str_radix(&line, 16).ok()
        })
        .unwrap_or(u64::MAX);
    ALL.iter()
        .enumerate()
        .filter(|(bit, _)| bounding & (1u64 << bit) != 0)
        .filter_map(|(_, n)| parse(n))
        .collect()
}

fn is_all(list: &[String]) -> bool {
    list.iter().any(|c| c.eq_ignore_ascii_case("ALL"))
}

/// The effective set: `defaults` tweaked by `add` and `drop` (names already checked at
/// create), or every capability when `privileged`.
pub fn effective(
    defaults: &[Capability],
    add: &[String],
    drop: &[String],
    privileged: bool,
) -> Vec<Capability> {
    let dropped: Vec<Capability> = drop.iter().filter_map(|c| parse(c)).collect();
    let added = add.iter().filter_map(|c| parse(c));
    let mut caps: Vec<Capability> = if privileged {
        all()
    } else if is_all(add) {
        all().into_iter().filter(|c| !dropped.contains(c)).collect()
    } else if is_all(drop) {
        added.collect()
    } else {
        let kept = defaults.iter().copied().filter(|c| !dropped.contains(c));
        kept.chain(added).collect()
    };
    let mut seen = Vec::new();
    caps.retain(|c| {
        let new = !seen.contains(c);
        seen.push(*c);
        new
    });
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn tweaks_follow_moby() {
        let d = [Capability::Chown, Capability::Kill];
        let caps = effective(&d, &s(&["net_admin"]), &s(&["CAP_CHOWN"]), false);
        assert_eq!(caps, vec![Capability::Kill, Capability::NetAdmin]);
        let caps = effective(&d, &s(&["KILL"]), &s(&["ALL"]), false);
        assert_eq!(caps, vec![Capability::Kill]);
        let caps = effective(&d, &s(&["ALL"]), &s(&["CHOWN"]), false);
        assert!(caps.contains(&Capability::SysAdmin) && !caps.contains(&Capability::Chown));
        assert!(effective(&d, &[], &[], true).contains(&Capability::SysAdmin));
        assert!(parse("NOT_A_CAP").is_none());
    }
}
