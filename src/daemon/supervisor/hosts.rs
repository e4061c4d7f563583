//! The `/etc/hosts` of containers on user networks, kept current by a watcher of the event
//! bus: once at start (what changed while the daemon was away), then after container starts
//! and ends (each recorded before its event). A rewrite reads every record, so the watcher
//! never rewrites once per event: it takes every event already queued before it rewrites
//! (a daemon start publishes a `restore` per running container, 10,000 at once at scale),
//! and with no user network in the store there is nothing to read at all.

use std::sync::Arc;

use moor_state::{ContainerRecord, State};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;
use tracing::warn;

use crate::daemon::events::DockerEvent;
use crate::daemon::Shared;

fn running(rec: &ContainerRecord) -> bool {
    matches!(
        rec.state,
        State::Running(_) | State::Paused(_) | State::Stopping(_)
    )
}

/// Whether the store holds a user network (only their containers have hosts files to keep).
fn any_user_network(shared: &Shared) -> bool {
    let listed = shared.store.networks().map_err(|e| e.to_string());
    match listed.and_then(|tree| tree.list().map_err(|e| e.to_string())) {
        Ok(networks) => networks.iter().any(|n| n.is_user()),
        Err(e) => {
            warn!(error = %e, "the networks cannot be read: hosts files rewritten anyway");
            true
        }
    }
}

/// Rewrites the `/etc/hosts` of the containers on user networks (blocking).
pub(super) fn rewrite_all(shared: &Shared) {
    if !any_user_network(shared) {
        return;
    }
    match shared.store.list() {
        Ok(records) => {
            let n = crate::network::user::rewrite_hosts(&records, running, |id| {
                shared.layout.container_dir(id)
            });
            tracing::debug!(written = n, "hosts files rewritten");
        }
        Err(e) => warn!(error = %e, "hosts files not rewritten: the store"),
    }
}

/// Whether an event can change a hosts file.
fn changes_hosts(e: &DockerEvent) -> bool {
    matches!(e.action.as_ref(), "start" | "die" | "destroy" | "restore")
}

/// Waits for an event, then takes every event already queued: whether any of them changes a
/// hosts file; None once the bus is closed.
async fn next_batch(events: &mut Receiver<DockerEvent>) -> Option<bool> {
    let mut changed = match events.recv().await {
        Ok(e) => changes_hosts(&e),
        Err(RecvError::Lagged(_)) => true,
        Err(RecvError::Closed) => return None,
    };
    loop {
        match events.try_recv() {
            Ok(e) => changed |= changes_hosts(&e),
            Err(TryRecvError::Lagged(_)) => changed = true,
            // Closed: the next call says so.
            Err(TryRecvError::Empty | TryRecvError::Closed) => return Some(changed),
        }
    }
}

/// Runs `rewrite` (blocking) once at once, then once per batch of events that changes a
/// hosts file ([`next_batch`]), until the bus closes.
async fn watch(mut events: Receiver<DockerEvent>, rewrite: impl Fn() + Clone + Send + 'static) {
    let first = rewrite.clone();
    let _ = tokio::task::spawn_blocking(first).await;
    while let Some(changed) = next_batch(&mut events).await {
        if changed {
            let _ = tokio::task::spawn_blocking(rewrite.clone()).await;
        }
    }
}

/// Keeps the hosts files of containers on user networks current (see the module header).
pub fn watch_hosts(shared: Arc<Shared>) {
    let (_, events) = shared.events.subscribe();
    actix_rt::spawn(watch(events, move || rewrite_all(&shared)));
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::daemon::events::EventBus;

    fn start(id: &str) -> DockerEvent {
        DockerEvent::container("start", id, "name", "image", &[])
    }

    /// 200 starts queued while the first rewrite runs make one more rewrite, not 200.
    #[actix_rt::test]
    async fn queued_events_make_one_rewrite() {
        let bus = EventBus::default();
        let (_, events) = bus.subscribe();
        let rewrites = Arc::new(AtomicUsize::new(0));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(std::sync::Mutex::new(hold));
        let count = rewrites.clone();
        let rewrite = move || {
            // The first rewrite waits until every event is published.
            if count.fetch_add(1, Ordering::SeqCst) == 0 {
                let _ = hold.lock().unwrap().recv();
            }
        };
        let watcher = actix_rt::spawn(watch(events, rewrite));
        for i in 0..200 {
            bus.publish(start(&format!("{i:064}")));
        }
        release.send(()).unwrap();
        let settled = async {
            while rewrites.load(Ordering::SeqCst) < 2 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            // Time for more rewrites, were any coming.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), settled)
            .await
            .expect("a rewrite after the events");
        assert_eq!(
            rewrites.load(Ordering::SeqCst),
            2,
            "the first, then one for all"
        );
        // One more event later: one more rewrite.
        bus.publish(start(&"f".repeat(64)));
        let one_more = async {
            while rewrites.load(Ordering::SeqCst) < 3 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), one_more)
            .await
            .expect("a rewrite for a later event");
        watcher.abort();
    }

    /// Events that change no hosts file make no rewrite.
    #[actix_rt::test]
    async fn other_events_make_none() {
        let bus = EventBus::default();
        let (_, mut events) = bus.subscribe();
        bus.publish(DockerEvent::container(
            "create",
            &"a".repeat(64),
            "n",
            "i",
            &[],
        ));
        bus.publish(DockerEvent::container(
            "rename",
            &"a".repeat(64),
            "n",
            "i",
            &[],
        ));
        assert_eq!(next_batch(&mut events).await, Some(false));
        bus.publish(DockerEvent::container(
            "create",
            &"a".repeat(64),
            "n",
            "i",
            &[],
        ));
        bus.publish(start(&"a".repeat(64)));
        assert_eq!(next_batch(&mut events).await, Some(true));
    }

    /// Without a user network a rewrite does not read the records; with one it reads
    /// them once.
    #[test]
    fn no_user_network_no_read_of_the_records() {
        use moor_state::network::{NetworkRecord, Subnet};
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = crate::runtime::fake::FakeRuntime::default();
        let shared = Shared::for_tests(dir.path(), Arc::new(fake));
        for i in 0..3 {
            let rec = ContainerRecord::new(
                format!("{i:064}"),
                format!("c{i}"),
                Default::default(),
                chrono::Utc::now(),
            );
            shared.store.create(&rec).expect("create");
        }
        let before = shared.store.lists();
        rewrite_all(&shared);
        assert_eq!(
            shared.store.lists(),
            before,
            "no user network: nothing read"
        );
        let gateway = [10, 99, 0, 1].into();
        let net = NetworkRecord {
            version: 1,
            name: "un".into(),
            id: "u".repeat(64),
            bridge: "moor-un".into(),
            subnet: Subnet::new(gateway, 24).expect("subnet"),
            gateway,
            labels: Default::default(),
            created: None,
            internal: false,
            ip_range: None,
        };
        shared
            .store
            .networks()
            .unwrap()
            .put(&net)
            .expect("put network");
        rewrite_all(&shared);
        assert_eq!(shared.store.lists(), before + 1, "a user network: one read");
    }
}
