//! `--network container:NAME`: at each start the container's actor finds the other
//! container (by name, id or unique id prefix), which must run, and hands the runtime its
//! network namespace, its `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`, and its
//! hostname (Docker's). Nothing of it is stored: when the other container stops, the joiner
//! keeps the namespace it holds (what the kernel does, and Docker); its next start joins
//! the other's network as it is then.

use std::borrow::Cow;

use moor_state::network::JoinedNetwork;
use moor_state::{ContainerRecord, ContainerSpec};

use super::ContainerActor;
use crate::daemon::error::ContainerError;

/// The record `key` names among `records`: a name, an id or a unique id prefix.
fn find<'a>(records: &'a [ContainerRecord], key: &str) -> Option<&'a ContainerRecord> {
    let key = key.trim_start_matches('/');
    if let Some(r) = records.iter().find(|r| r.name == key || r.id == key) {
        return Some(r);
    }
    let mut by_prefix = records.iter().filter(|r| r.id.starts_with(key));
    match (by_prefix.next(), by_prefix.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

impl ContainerActor {
    /// The spec this start hands the runtime: the record's, with the other container's
    /// network resolved for a `container:NAME` network mode.
    pub(super) fn start_spec(&self) -> Result<Cow<'_, ContainerSpec>, ContainerError> {
        let spec = &self.record.spec;
        let Some(key) = spec.network_mode.strip_prefix("container:") else {
            return Ok(Cow::Borrowed(spec));
        };
        let records = self.shared.store.list()?;
        let other = find(&records, key).ok_or_else(|| ContainerError::NotFound(key.into()))?;
        if other.id == self.record.id {
            return Err(ContainerError::BadRequest(format!(
                "container {} cannot join its own network",
                self.record.name
            )));
        }
        let run = other
            .state
            .run()
            .ok_or_else(|| ContainerError::JoinNotRunning(other.name.clone()))?;
        let layout = &self.shared.layout_of(other);
        let own_file = crate::network::netns::path(&layout.run_dir, &other.id);
        let netns = match crate::network::netns::is_mounted(&own_file) {
            true => own_file,
            false => format!("/proc/{}/ns/net", run.process.pid).into(),
        };
        let dir = layout.container_dir(&other.id);
        let files = crate::network::files::FILES
            .iter()
            .map(|(name, dest)| (dir.join(name), dest.to_string()))
            .filter(|(path, _)| path.is_file())
            .collect();
        let hostname = match other.spec.hostname.as_str() {
            "" => other.id[..12.min(other.id.len())].to_string(),
            name => name.to_string(),
        };
        let mut joined = ContainerSpec::clone(spec);
        joined.hostname = hostname.clone();
        joined.joined_network = Some(JoinedNetwork {
            netns,
            files,
            hostname,
        });
        Ok(Cow::Owned(joined))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_other_container_is_found_by_name_id_or_unique_prefix() {
        let ts = chrono::DateTime::from_timestamp(0, 0).expect("epoch");
        let rec = |id: &str, name: &str| {
            ContainerRecord::new(id.repeat(64), name.into(), ContainerSpec::default(), ts)
        };
        let records = [rec("a", "web"), rec("b", "db"), rec("ab", "x")];
        assert_eq!(find(&records, "web").map(|r| &r.name[..]), Some("web"));
        assert_eq!(find(&records, "/db").map(|r| &r.name[..]), Some("db"));
        assert_eq!(find(&records, "bbb").map(|r| &r.name[..]), Some("db"));
        assert!(find(&records, "a").is_none(), "a and ab share the prefix");
        assert!(find(&records, "nosuch").is_none());
    }
}
