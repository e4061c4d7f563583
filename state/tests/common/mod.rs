//! Helpers shared by the store and model tests: record builders and proptest strategies.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use moor_state::record::{RestartPolicy, RuntimeKind};
use moor_state::store::{Store, StoreError};
use moor_state::{ContainerRecord, ContainerSpec, Exit, ProcessIdentity, Run, State, Timestamp};
use nix::fcntl::{Flock, FlockArg};
use proptest::prelude::*;

/// A 64-hex-digit id from a small number.
pub fn id(n: u64) -> String {
    format!("{n:064x}")
}

/// A timestamp `secs` after a fixed base, with nanoseconds.
pub fn ts(secs: i64) -> Timestamp {
    let nanos = (secs.unsigned_abs() * 7_919 % 1_000_000_000) as u32;
    Utc.timestamp_opt(1_700_000_000 + secs, nanos).unwrap()
}

/// A fresh record `n`, named `name`, created at `ts(n)`.
pub fn record(n: u64, name: &str) -> ContainerRecord {
    let spec = ContainerSpec {
        image: "host".into(),
        cmd: vec!["sleep".into(), "1000".into()],
        ..ContainerSpec::default()
    };
    ContainerRecord::new(id(n), name.into(), spec, ts(n as i64))
}

/// Opens the store at `path`, waiting (up to 10 s) for a just-dropped handle's lock:
/// sled 0.34 releases its file lock from a background thread after the drop.
pub fn reopen(path: &Path) -> Store {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(path) {
            Ok(store) => return store,
            Err(StoreError::Open { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("reopen {path:?}: {e:?}"),
        }
    }
}

/// Waits (up to 10 s) until no sled handle holds the lock on the store at `path`.
pub fn wait_unlocked(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let db = path.join("db");
    loop {
        let f = std::fs::File::open(&db).unwrap();
        // sled locks the file with flock(2), so a non-blocking flock tells if it is free.
        if Flock::lock(f, FlockArg::LockExclusiveNonblock).is_ok() {
            return;
        }
        assert!(Instant::now() < deadline, "{db:?} still locked");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reads every file in `dir` (not recursive) as name -> bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// Siblings of `path` whose names start with `<name>.corrupt-`.
pub fn moved_aside(path: &Path) -> Vec<std::path::PathBuf> {
    let prefix = format!("{}.corrupt-", path.file_name().unwrap().to_string_lossy());
    std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

pub fn arb_timestamp() -> impl Strategy<Value = Timestamp> {
    (0i64..4_102_444_800, 0u32..1_000_000_000).prop_map(|(s, n)| Utc.timestamp_opt(s, n).unwrap())
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![3 => "[a-zA-Z0-9 =/_.:-]{0,12}", 1 => "\\PC{0,6}"]
}

pub fn arb_identity() -> impl Strategy<Value = ProcessIdentity> {
    (1i32..4_194_304, any::<u64>(), "[0-9a-f-]{0,36}").prop_map(|(pid, start_time, boot_id)| {
        ProcessIdentity {
            pid,
            start_time,
            boot_id,
        }
    })
}

pub fn arb_run() -> impl Strategy<Value = Run> {
    (arb_identity(), arb_identity(), arb_timestamp()).prop_map(|(shim, process, started_at)| Run {
        shim,
        process,
        started_at,
    })
}

fn arb_exit() -> impl Strategy<Value = Exit> {
    prop_oneof![
        any::<i32>().prop_map(Exit::Code),
        (1i32..65).prop_map(Exit::Signal)
    ]
}

pub fn arb_state() -> impl Strategy<Value = State> {
    prop_oneof![
        Just(State::Created),
        Just(State::Starting),
        arb_run().prop_map(State::Running),
        arb_run().prop_map(State::Stopping),
        (
            proptest::option::of(arb_exit()),
            arb_text(),
            proptest::option::of(arb_timestamp()),
            arb_timestamp()
        )
            .prop_map(|(exit, error, started_at, finished_at)| State::Exited {
                exit,
                error,
                started_at,
                finished_at,
            }),
        Just(State::Removing),
        (arb_text(), proptest::option::of(arb_run()))
            .prop_map(|(reason, run)| State::Orphaned { reason, run }),
    ]
}

fn arb_policy() -> impl Strategy<Value = RestartPolicy> {
    prop_oneof![
        Just(RestartPolicy::No),
        any::<u32>().prop_map(|max_retries| RestartPolicy::OnFailure { max_retries }),
        Just(RestartPolicy::Always),
        Just(RestartPolicy::UnlessStopped),
    ]
}

fn arb_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map(arb_text(), arb_text(), 0..3)
}

pub fn arb_spec() -> impl Strategy<Value = ContainerSpec> {
    let strings = || proptest::collection::vec(arb_text(), 0..3);
    (
        (arb_text(), strings(), strings(), strings(), arb_text()),
        (arb_text(), arb_map(), arb_text(), arb_text()),
        (
            proptest::option::of(any::<u32>()),
            any::<bool>(),
            arb_policy(),
            any::<bool>(),
            arb_map(),
        ),
    )
        .prop_map(
            |(
                (image, cmd, entrypoint, env, working_dir),
                (user, labels, hostname, stop_signal),
                (stop_timeout, auto_remove, restart_policy, runc, log_opts),
            )| ContainerSpec {
                image,
                cmd,
                entrypoint,
                env,
                working_dir,
                user,
                labels,
                hostname,
                stop_signal,
                stop_timeout,
                auto_remove,
                restart_policy,
                runtime: if runc {
                    RuntimeKind::Runc
                } else {
                    RuntimeKind::Process
                },
                log_opts,
                open_stdin: false,
                ..ContainerSpec::default()
            },
        )
}

/// Records with distinct ids and names.
pub fn arb_records(max: usize) -> impl Strategy<Value = Vec<ContainerRecord>> {
    proptest::collection::vec(
        (
            arb_spec(),
            arb_state(),
            arb_timestamp(),
            any::<u32>(),
            arb_text(),
        ),
        0..max,
    )
    .prop_map(|items| {
        items
            .into_iter()
            .enumerate()
            .map(|(i, (spec, state, created_at, restart_count, name))| {
                let mut rec =
                    ContainerRecord::new(id(i as u64), format!("{name}-{i}"), spec, created_at);
                rec.state = state;
                rec.restart_count = restart_count;
                rec
            })
            .collect()
    })
}
