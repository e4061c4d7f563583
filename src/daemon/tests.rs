//! In-process tests of the Supervisor and the Container actors, and of `api::serve`, with
//! the fake runtime (`runtime::fake`): no shim, no runc, no process is spawned. An actix
//! System runs in the test's thread on a store in a temporary directory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use moor_state::{ContainerSpec, Exit, State};

use super::container::ContainerActor;
use super::error::ContainerError;
use super::messages::*;
use super::supervisor::Supervisor;
use super::Shared;
use crate::runtime::fake::FakeRuntime;

/// What a test gets: the fake, the shared state, the Supervisor (kept in a tempdir).
struct Daemon {
    fake: FakeRuntime,
    shared: Arc<Shared>,
    supervisor: Addr<Supervisor>,
    _dir: tempfile::TempDir,
}

fn daemon() -> Daemon {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeRuntime::default();
    let shared = Arc::new(Shared::for_tests(dir.path(), Arc::new(fake.clone())));
    let supervisor = Supervisor::new(shared.clone(), Default::default()).start();
    Daemon {
        fake,
        shared,
        supervisor,
        _dir: dir,
    }
}

fn spec() -> ContainerSpec {
    ContainerSpec {
        image: "host".into(),
        cmd: vec!["sleep".into(), "100".into()],
        ..ContainerSpec::default()
    }
}

impl Daemon {
    async fn create(&self, name: &str) -> (String, Addr<ContainerActor>) {
        let id = self
            .supervisor
            .send(CreateContainer {
                name: Some(name.into()),
                spec: spec(),
            })
            .await
            .expect("mailbox")
            .expect("create");
        let (id, addr) = self
            .supervisor
            .send(ResolveContainer(id))
            .await
            .expect("mailbox")
            .expect("resolve");
        (id, addr)
    }

    async fn list(&self) -> Arc<Vec<moor_state::ContainerRecord>> {
        self.supervisor
            .send(ListContainers)
            .await
            .expect("mailbox")
            .expect("list")
    }

    async fn started(&self, name: &str) -> (String, Addr<ContainerActor>) {
        let (id, addr) = self.create(name).await;
        addr.send(StartContainer)
            .await
            .expect("mailbox")
            .expect("start");
        (id, addr)
    }
}

async fn state(addr: &Addr<ContainerActor>) -> State {
    addr.send(InspectContainer).await.expect("mailbox").state
}

/// Waits (up to 5 s) until the container's state satisfies `want`; the last state read.
async fn state_until(addr: &Addr<ContainerActor>, want: impl Fn(&State) -> bool) -> State {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = state(addr).await;
        if want(&s) || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (up to 5 s) until the fake has seen `call`.
async fn call_seen(fake: &FakeRuntime, call: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !fake.calls().iter().any(|c| c == call) {
        assert!(
            Instant::now() < deadline,
            "no {call:?} in {:?}",
            fake.calls()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn position(calls: &[String], call: &str) -> usize {
    calls
        .iter()
        .position(|c| c == call)
        .unwrap_or_else(|| panic!("no {call:?} in {calls:?}"))
}

#[test]
fn a_failed_start_records_the_code_and_the_error() {
    System::new().block_on(async {
        let d = daemon();
        let (id, addr) = d.create("box-a").await;
        d.fake
            .fail_next_start(127, "exec: \"nope\": executable file not found");
        let err = addr
            .send(StartContainer)
            .await
            .expect("mailbox")
            .unwrap_err();
        assert!(
            matches!(err, ContainerError::StartFailed { code: 127, .. }),
            "{err}"
        );
        match state(&addr).await {
            State::Exited {
                exit: Some(Exit::Code(127)),
                error,
                ..
            } => assert!(error.contains("executable file not found"), "{error}"),
            other => panic!("state {other:?}"),
        }
        // The record in the store says the same.
        let stored = d.shared.store.get(&id).expect("store").expect("record");
        assert!(matches!(
            stored.state,
            State::Exited {
                exit: Some(Exit::Code(127)),
                ..
            }
        ));
        call_seen(&d.fake, &format!("release {id}")).await;
    });
}

#[test]
fn a_shim_that_dies_under_a_live_process_makes_an_orphan_not_an_exit() {
    System::new().block_on(async {
        let d = daemon();
        let (id, addr) = d.started("box-a").await;
        d.fake.kill_shim(&id);
        let s = state_until(&addr, |s| matches!(s, State::Orphaned { .. })).await;
        assert!(matches!(s, State::Orphaned { .. }), "state {s:?}");
        assert!(!d.fake.calls().contains(&format!("release {id}")));
    });
}

#[test]
fn a_shim_that_ends_with_an_exit_file_records_the_exit() {
    System::new().block_on(async {
        let d = daemon();
        let (id, addr) = d.started("box-a").await;
        d.fake.exit(&id, Exit::Code(3));
        let s = state_until(&addr, |s| matches!(s, State::Exited { .. })).await;
        assert!(
            matches!(
                s,
                State::Exited {
                    exit: Some(Exit::Code(3)),
                    ..
                }
            ),
            "state {s:?}"
        );
        call_seen(&d.fake, &format!("release {id}")).await;
    });
}

#[test]
fn a_slow_pause_of_one_container_does_not_hold_up_another() {
    System::new().block_on(async {
        let d = daemon();
        let (a_id, a) = d.started("box-a").await;
        let (_, b) = d.started("box-b").await;
        d.fake.slow_pause(Duration::from_secs(2));
        let pausing = actix_rt::spawn(a.send(PauseContainer));
        call_seen(&d.fake, &format!("pause-begin {a_id}")).await;
        let inspect = tokio::time::timeout(Duration::from_secs(1), b.send(InspectContainer)).await;
        assert!(matches!(
            inspect
                .expect("inspect of b within 1 s")
                .expect("mailbox")
                .state,
            State::Running(_)
        ));
        let list = tokio::time::timeout(Duration::from_secs(1), d.supervisor.send(ListContainers))
            .await
            .expect("list within 1 s")
            .expect("mailbox")
            .expect("list");
        assert_eq!(list.len(), 2);
        assert!(
            !d.fake.calls().contains(&format!("pause-end {a_id}")),
            "the pause was not slow: the deadlines proved nothing"
        );
        pausing
            .await
            .expect("task")
            .expect("mailbox")
            .expect("pause");
        assert!(matches!(state(&a).await, State::Paused(_)));
    });
}

#[test]
fn a_stop_sent_during_a_pause_is_applied_after_the_pause() {
    System::new().block_on(async {
        let d = daemon();
        let (id, a) = d.started("box-a").await;
        d.fake.slow_pause(Duration::from_secs(2));
        let pausing = actix_rt::spawn(a.send(PauseContainer));
        call_seen(&d.fake, &format!("pause-begin {id}")).await;
        let stop = a.send(StopContainer {
            timeout_secs: Some(5),
            by: StopBy::User,
        });
        stop.await.expect("mailbox").expect("stop");
        pausing
            .await
            .expect("task")
            .expect("mailbox")
            .expect("pause");
        let calls = d.fake.calls();
        let paused = position(&calls, &format!("pause-end {id}"));
        let thawed = position(&calls, &format!("resume {id}"));
        let signalled = position(&calls, &format!("signal {}", libc::SIGTERM));
        assert!(paused < thawed && thawed < signalled, "{calls:?}");
        let s = state(&a).await;
        assert!(
            matches!(
                s,
                State::Exited {
                    exit: Some(Exit::Signal(libc::SIGTERM)),
                    ..
                }
            ),
            "state {s:?}"
        );
    });
}

#[test]
fn a_pidfd_that_cannot_be_opened_is_not_an_exit() {
    System::new().block_on(async {
        let d = daemon();
        d.fake.fail_open(true);
        let (id, a) = d.started("box-a").await;
        // Two liveness polls (1 s apart) find the shim alive: still running.
        tokio::time::sleep(Duration::from_millis(2200)).await;
        let s = state(&a).await;
        assert!(matches!(s, State::Running(_)), "state {s:?}");
        // The poll still watches: the real end is recorded.
        d.fake.exit(&id, Exit::Code(0));
        let s = state_until(&a, |s| matches!(s, State::Exited { .. })).await;
        assert!(
            matches!(
                s,
                State::Exited {
                    exit: Some(Exit::Code(0)),
                    ..
                }
            ),
            "state {s:?}"
        );
    });
}

/// Sends one HTTP/1.1 request on the unix socket at `path`; the whole response as text.
async fn http(path: &std::path::Path, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::UnixStream::connect(path)
        .await
        .expect("connect");
    let text = format!("{request} HTTP/1.1\r\nHost: moor\r\nConnection: close\r\n\r\n");
    stream.write_all(text.as_bytes()).await.expect("write");
    let mut out = String::new();
    stream.read_to_string(&mut out).await.expect("read");
    out
}

#[test]
fn the_api_serves_ping_and_the_container_list_in_process() {
    System::new().block_on(async {
        let d = daemon();
        let (id, _) = d.started("web").await;
        let path = d.shared.layout.socket.clone();
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let server = crate::api::server::serve(listener, d.supervisor.clone(), d.shared.clone())
            .expect("serve");
        let handle = server.handle();
        let task = actix_rt::spawn(server);
        let ping = http(&path, "GET /_ping").await;
        assert!(ping.starts_with("HTTP/1.1 200"), "{ping}");
        assert!(ping.ends_with("OK"), "{ping}");
        let list = http(&path, "GET /containers/json").await;
        assert!(list.starts_with("HTTP/1.1 200"), "{list}");
        assert!(list.contains(&id) && list.contains("/web"), "{list}");
        handle.stop(false).await;
        let _ = task.await;
    });
}

#[test]
fn a_start_records_its_transition_while_the_spec_file_syncs_and_spawns_after() {
    System::new().block_on(async {
        let d = daemon();
        let id = format!("{:064}", 7);
        let rec = moor_state::ContainerRecord::new(
            id.clone(),
            "box-s".into(),
            spec(),
            chrono::Utc::now(),
        );
        d.shared.store.create(&rec).expect("store the record");
        super::supervisor::write_spec_file(&d.shared, &rec)
            .await
            .expect("spec file");
        // The create's fsync of the spec file, held until the test lets it end.
        let (release, held) = tokio::sync::oneshot::channel::<()>();
        let sync = tokio::spawn(async move {
            let _ = held.await;
            Ok(())
        });
        let addr = ContainerActor::new(rec, d.shared.clone(), d.supervisor.clone().recipient())
            .with_spec_sync(sync)
            .start();
        let starting = actix_rt::spawn(addr.send(StartContainer));
        // `starting` is committed (and its flush under way) while the fsync runs...
        let deadline = Instant::now() + Duration::from_secs(5);
        let stored = || {
            d.shared
                .store
                .get(&id)
                .expect("store")
                .expect("record")
                .state
        };
        while !matches!(stored(), State::Starting) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(matches!(stored(), State::Starting), "{:?}", stored());
        // ...and the start goes no further until the spec file is durable.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !starting.is_finished(),
            "started before the spec file was synced"
        );
        assert!(matches!(stored(), State::Starting), "{:?}", stored());
        release.send(()).expect("the sync waits");
        starting
            .await
            .expect("join")
            .expect("mailbox")
            .expect("start");
        assert!(matches!(state(&addr).await, State::Running(_)));
    });
}

/// Sends `msg` to a started container in the very turn its process's end reaches the actor
/// (the fake's hook runs inside the watched end: the actor hears of the end, then of the
/// message, before either is handled); returns the answer, or fails after 5 s.
async fn answer_racing_the_exit<M>(d: &Daemon, name: &str, msg: M) -> (String, Addr<ContainerActor>)
where
    M: Message<Result = Result<(), ContainerError>> + Send + 'static,
    ContainerActor: Handler<M>,
{
    let (id, addr) = d.started(name).await;
    let (tx, rx) = std::sync::mpsc::channel();
    let target = addr.clone();
    d.fake.on_exit_seen(move || {
        let _ = tx.send(target.send(msg));
    });
    d.fake.exit(&id, Exit::Code(0));
    let deadline = Instant::now() + Duration::from_secs(5);
    let asked = loop {
        if let Ok(asked) = rx.try_recv() {
            break asked;
        }
        assert!(
            Instant::now() < deadline,
            "the end of {name} was never seen"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    tokio::time::timeout(Duration::from_secs(5), asked)
        .await
        .unwrap_or_else(|_| panic!("{name}: no answer within 5 s"))
        .expect("mailbox")
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (id, addr)
}

/// `rm -f` and `stop` wait for the container's exit. One that arrives in the instant the
/// process ends is answered: the exit it waits for is the one being recorded (its waiter is
/// taken when the message is handled), not a later one that never comes. (actix runs the
/// last `wait` first: the recording of the end ran before the kill step that used to take
/// the waiter, and the answer hung until some other exit or removal came.)
#[test]
fn a_forced_removal_or_a_stop_racing_the_exit_is_answered() {
    System::new().block_on(async {
        let d = daemon();
        let (id, _) = answer_racing_the_exit(&d, "box-rm", RemoveContainer { force: true }).await;
        assert!(d.shared.store.get(&id).expect("store").is_none());
        let stop = StopContainer {
            timeout_secs: Some(1),
            by: StopBy::User,
        };
        let (_, addr) = answer_racing_the_exit(&d, "box-stop", stop).await;
        let s = state(&addr).await;
        assert!(
            matches!(
                s,
                State::Exited {
                    exit: Some(Exit::Code(0)),
                    ..
                }
            ),
            "state {s:?}"
        );
    });
}

/// The list's records and the actors' records hold one spec each, not two, while the spec is
/// the same; a spec that changed is listed as it is now; equal settings are held once.
#[test]
fn the_list_shares_each_spec_with_its_actor() {
    System::new().block_on(async {
        let d = daemon();
        let (_, a) = d.create("box-a").await;
        let (_, b) = d.started("box-b").await;
        // Listed once before a write, and again after it (the start's commits, an update).
        let before = d.list().await;
        let update = moor_state::resources::ResourceUpdate {
            memory: Some(64 << 20),
            ..Default::default()
        };
        a.send(UpdateContainer(update))
            .await
            .expect("mailbox")
            .expect("update");
        let after = d.list().await;
        assert!(!Arc::ptr_eq(&before, &after), "the update was a write");
        for (records, addr) in [(&before, &b), (&after, &b)] {
            let actor = addr.send(InspectContainer).await.expect("mailbox");
            let listed = records.iter().find(|r| r.id == actor.id).expect("listed");
            assert!(
                Arc::ptr_eq(&listed.spec, &actor.spec),
                "{} has its own copy of the spec in the list",
                actor.name
            );
        }
        let actor = a.send(InspectContainer).await.expect("mailbox");
        let listed = after.iter().find(|r| r.id == actor.id).expect("listed");
        assert_eq!(
            (listed.spec.memory, actor.spec.memory),
            (64 << 20, 64 << 20)
        );
        // Equal settings are one copy, the actors' and the list's, whichever was decoded.
        let settings: Vec<_> = after
            .iter()
            .map(|r| r.settings.clone().expect("settings"))
            .collect();
        assert!(Arc::ptr_eq(&settings[0], &settings[1]), "{settings:?}");
        assert!(Arc::ptr_eq(
            &settings[0],
            actor.settings.as_ref().expect("settings")
        ));
    });
}

/// The specs kept for the next list go with their containers: a daemon never asked for a
/// list does not keep one per container it ever created.
#[test]
fn a_removed_container_leaves_no_spec_held_for_the_next_list() {
    System::new().block_on(async {
        let d = daemon();
        let held = || async {
            d.supervisor
                .send(super::supervisor::HeldSpecs)
                .await
                .expect("mailbox")
        };
        let (_, a) = d.create("box-a").await;
        d.create("box-b").await;
        assert_eq!(held().await, 2);
        a.send(RemoveContainer { force: true })
            .await
            .expect("mailbox")
            .expect("remove");
        // The removal's notice reaches the Supervisor after the answer.
        let t0 = Instant::now();
        while held().await != 1 {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "still held: {}",
                held().await
            );
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
        d.list().await;
        assert_eq!(held().await, 0, "the list took the rest");
    });
}

/// A list rebuilt over many records returns the heap's freed pages once, a while after:
/// not for a list answered from the last one, and once for a burst of rebuilds.
#[test]
fn rebuilt_lists_release_the_freed_heap_once_after_a_burst() {
    System::new().block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = FakeRuntime::default();
        let shared = Arc::new(Shared::for_tests(dir.path(), Arc::new(fake.clone())));
        let delay = Duration::from_millis(300);
        let supervisor = Supervisor::new(shared.clone(), Default::default())
            .with_trim_after_lists(2, delay)
            .start();
        let d = Daemon {
            fake,
            shared,
            supervisor,
            _dir: dir,
        };
        d.create("box-a").await;
        let before = crate::daemon::memory::releases();
        d.list().await;
        actix_rt::time::sleep(delay * 2).await;
        assert_eq!(
            crate::daemon::memory::releases(),
            before,
            "one record: below the threshold"
        );
        d.create("box-b").await;
        d.list().await;
        d.create("box-c").await;
        d.list().await;
        d.list().await;
        assert_eq!(crate::daemon::memory::releases(), before, "not yet");
        actix_rt::time::sleep(delay * 2).await;
        assert_eq!(crate::daemon::memory::releases(), before + 1, "once");
        d.list().await;
        actix_rt::time::sleep(delay * 2).await;
        assert_eq!(
            crate::daemon::memory::releases(),
            before + 1,
            "answered from the last list"
        );
        // Removing them all frees the last list: its size counts, not the new one's.
        for name in ["box-a", "box-b", "box-c"] {
            let (_, addr) = d
                .supervisor
                .send(ResolveContainer(name.into()))
                .await
                .expect("mailbox")
                .expect("resolve");
            addr.send(RemoveContainer { force: true })
                .await
                .expect("mailbox")
                .expect("remove");
        }
        assert!(d.list().await.is_empty());
        actix_rt::time::sleep(delay * 2).await;
        assert_eq!(
            crate::daemon::memory::releases(),
            before + 2,
            "after the removals"
        );
    });
}
