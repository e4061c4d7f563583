//! The watcher that keeps the `/etc/hosts` of the containers on user networks current: once
//! at start (what changed while the daemon was away), then after a start or end of a
//! container on a user network. A rewrite reads every record of the store, so it runs only
//! for the events that can change a hosts file, and once for a burst of them: rewriting
//! after every start and end of any container read the whole store a thousand times while
//! 1,000 process containers started, on the blocking pool's threads, whose malloc arenas
//! kept that memory (BENCHMARKS.md, "Daemon memory").

use std::collections::HashSet;
use std::sync::Arc;

use moor_state::store::Store;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tracing::warn;

use crate::daemon::events::DockerEvent;
use crate::daemon::Shared;

/// Which events call for a rewrite of the hosts files.
#[derive(Default)]
pub struct Relevance {
    /// Containers seen on a user network since the watcher started (a destroyed one has no
    /// record left to look at).
    on_user: HashSet<String>,
}

impl Relevance {
    /// Whether `event` can change a hosts file: a start, end, removal or restore of a
    /// container on a user network (or one whose record cannot be read: rewrite to be sure).
    pub fn wants_rewrite(&mut self, store: &Store, event: &DockerEvent) -> bool {
        if event.kind != "container"
            || !matches!(
                event.action.as_ref(),
                "start" | "die" | "destroy" | "restore"
            )
        {
            return false;
        }
        let id = &event.actor.id;
        match store.get(id) {
            Ok(Some(rec)) if crate::network::user::on_user_network(&rec) => {
                self.on_user.insert(id.clone());
                true
            }
            Ok(Some(_)) => self.on_user.remove(id),
            Ok(None) => self.on_user.remove(id),
            Err(e) => {
                warn!(container_id = %short(id), error = %e, "record unreadable: hosts files rewritten");
                true
            }
        }
    }
}

fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}

/// Starts the watcher (see the module doc); it runs until the event bus closes.
pub fn watch_hosts(shared: Arc<Shared>) {
    let (_, mut events) = shared.events.subscribe();
    actix_rt::spawn(async move {
        let first = shared.clone();
        let _ = tokio::task::spawn_blocking(move || super::network::rewrite_all(&first)).await;
        let mut relevance = Relevance::default();
        loop {
            let mut changed = match events.recv().await {
                Ok(e) => relevance.wants_rewrite(&shared.store, &e),
                Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => break,
            };
            // What else is queued is covered by the same rewrite.
            loop {
                changed |= match events.try_recv() {
                    Ok(e) => relevance.wants_rewrite(&shared.store, &e),
                    Err(TryRecvError::Lagged(_)) => true,
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                };
            }
            if changed {
                let s = shared.clone();
                let _ = tokio::task::spawn_blocking(move || super::network::rewrite_all(&s)).await;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use moor_state::network::Endpoint;
    use moor_state::{ContainerRecord, ContainerSpec};
    use std::net::Ipv4Addr;

    fn record(id: &str, network: Option<&str>) -> ContainerRecord {
        let endpoint = network.map(|net| Endpoint {
            network: net.into(),
            network_id: "n".repeat(64),
            bridge: "moor-x".into(),
            ip: Ipv4Addr::new(10, 1, 0, 2),
            prefix_len: 24,
            gateway: Ipv4Addr::new(10, 1, 0, 1),
            internal: false,
        });
        let spec = ContainerSpec {
            image: "host".into(),
            cmd: vec!["sleep".into(), "1".into()],
            endpoint,
            ..ContainerSpec::default()
        };
        ContainerRecord::new(id.repeat(64), format!("c{id}"), spec, chrono::Utc::now())
    }

    fn event(action: &'static str, rec: &ContainerRecord) -> DockerEvent {
        DockerEvent::container(action, &rec.id, &rec.name, "host", &[])
    }

    #[test]
    fn only_containers_on_a_user_network_call_for_a_rewrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db")).expect("store");
        let plain = record("a", None);
        let bridged = record("b", Some(moor_state::network::DEFAULT_NETWORK));
        let user = record("c", Some("backend"));
        for rec in [&plain, &bridged, &user] {
            store.create(rec).expect("create");
        }
        let mut relevance = Relevance::default();
        for action in ["start", "die", "restore", "destroy"] {
            for rec in [&plain, &bridged] {
                assert!(
                    !relevance.wants_rewrite(&store, &event(action, rec)),
                    "{action} of {} (not on a user network)",
                    rec.name
                );
            }
        }
        for action in ["start", "die", "restore"] {
            assert!(
                relevance.wants_rewrite(&store, &event(action, &user)),
                "{action}"
            );
        }
        assert!(!relevance.wants_rewrite(&store, &event("rename", &user)));
        // Its record gone, its removal still counts: it was seen on a user network.
        store.remove(&user.id).expect("remove");
        assert!(relevance.wants_rewrite(&store, &event("destroy", &user)));
        assert!(!relevance.wants_rewrite(&store, &event("destroy", &user)));
    }
}
