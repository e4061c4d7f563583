//! Model-based test of the state machine and the store together (after sled's
//! `tests/tree/mod.rs`): random sequences of API calls, shim reports and daemon restarts
//! run against a small reference model written separately from `machine.rs`, and against
//! `transition` + [`Store`]. Both must agree on every outcome and every state, and a
//! reopened store must hold exactly what was written.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{id, ts};
use moor_state::store::{Store, StoreError};
use moor_state::{
    transition, ContainerRecord, ContainerSpec, Event, Exit, ProcessIdentity, Run, State,
    TransitionError,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// Container slots (ids) and names the operations pick from: small, so they collide.
const SLOTS: u8 = 3;
const NAMES: u8 = 4;

#[derive(Debug, Clone)]
enum Op {
    /// `create` with this id slot and name number.
    Create {
        /// Which id.
        slot: u8,
        /// Which name.
        name: u8,
    },
    /// `rename` of this slot to this name number.
    Rename {
        /// Which id.
        slot: u8,
        /// The new name.
        name: u8,
    },
    /// A client's start.
    Start(u8),
    /// The shim's report that the process started.
    ShimStarted(u8),
    /// A client's stop.
    Stop(u8),
    /// A client's pause.
    Pause(u8),
    /// A client's unpause.
    Unpause(u8),
    /// The reconciler found the shim and process alive after a daemon restart.
    Resume(u8),
    /// The shim's exit report with this code.
    Exit(u8, i32),
    /// The reconciler found the run gone without an exit status.
    Lost(u8),
    /// The reconciler found a live process it cannot manage.
    Orphan(u8),
    /// An admin adopted the orphan.
    Adopt(u8),
    /// The restart policy's back-off begins (the daemon's timer).
    ScheduleRestart(u8),
    /// A client's remove (the record goes to `Removing`).
    Remove(u8),
    /// The daemon deleted the files and drops the record.
    FinishRemoval(u8),
    /// The daemon restarts: the store is closed and opened again from disk.
    Restart,
}

fn arb_op() -> impl Strategy<Value = Op> {
    let slot = || 0..SLOTS;
    prop_oneof![
        3 => (slot(), 0..NAMES).prop_map(|(slot, name)| Op::Create { slot, name }),
        1 => (slot(), 0..NAMES).prop_map(|(slot, name)| Op::Rename { slot, name }),
        3 => slot().prop_map(Op::Start),
        3 => slot().prop_map(Op::ShimStarted),
        2 => slot().prop_map(Op::Stop),
        2 => slot().prop_map(Op::Pause),
        2 => slot().prop_map(Op::Unpause),
        1 => slot().prop_map(Op::Resume),
        2 => (slot(), -1i32..256).prop_map(|(s, c)| Op::Exit(s, c)),
        1 => slot().prop_map(Op::Lost),
        1 => slot().prop_map(Op::Orphan),
        1 => slot().prop_map(Op::Adopt),
        1 => slot().prop_map(Op::ScheduleRestart),
        2 => slot().prop_map(Op::Remove),
        1 => slot().prop_map(Op::FinishRemoval),
        1 => Just(Op::Restart),
    ]
}

/// What an operation returned, in the model's words.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Ok,
    AlreadyRunning,
    NotRunning,
    AlreadyPaused,
    NotPaused,
    PausedCannotStart,
    RunningCannotRemove,
    BeingRemoved,
    Orphaned,
    RestartingCannotRemove,
    Restarting,
    Invalid,
    NameInUse { holder: u8 },
    IdInUse,
    NoSuchContainer,
    NotRemoving,
}

/// The reference model's container state. Runs are named by the tick they started at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum M {
    Created,
    Starting,
    Running(i64),
    Paused(i64),
    Stopping(i64),
    Exited {
        code: Option<i32>,
        started: Option<i64>,
    },
    Removing,
    Orphaned(Option<i64>),
    /// Ended, waiting for its policy's restart: the ended run's fields.
    Restarting {
        code: Option<i32>,
        started: Option<i64>,
    },
}

/// The reference model: which containers exist, their names and states.
#[derive(Debug, Default)]
struct Model {
    /// slot -> (name number, state).
    containers: BTreeMap<u8, (u8, M)>,
}

/// The allowed transitions, written from the design, not from `machine.rs`.
fn model_event(s: &M, op: &Op, tick: i64) -> Result<M, Outcome> {
    use Outcome as O;
    use M::*;
    let busy = matches!(s, Starting | Running(_) | Paused(_) | Stopping(_));
    let run_of = |s: &M| match s {
        Running(t) | Paused(t) | Stopping(t) => Some(*t),
        Orphaned(t) => *t,
        _ => None,
    };
    let refused = |s: &M| match s {
        Removing => O::BeingRemoved,
        Orphaned(_) => O::Orphaned,
        _ => O::Invalid,
    };
    let end = |code: Option<i32>| match s {
        Exited { .. } | Restarting { .. } | Removing => Err(O::Invalid),
        _ => Ok(Exited {
            code,
            started: run_of(s),
        }),
    };
    match op {
        Op::Start(_) => match s {
            Created | Exited { .. } | Restarting { .. } => Ok(Starting),
            Paused(_) => Err(O::PausedCannotStart),
            _ if busy => Err(O::AlreadyRunning),
            _ => Err(refused(s)),
        },
        Op::ShimStarted(_) if *s == Starting => Ok(Running(tick)),
        Op::ShimStarted(_) => Err(O::Invalid),
        Op::Stop(_) => match s {
            Running(t) | Paused(t) | Stopping(t) => Ok(Stopping(*t)),
            // A stop during the back-off ends it.
            Restarting { code, started } => Ok(Exited {
                code: *code,
                started: *started,
            }),
            Created | Starting | Exited { .. } => Err(O::NotRunning),
            _ => Err(refused(s)),
        },
        // Only a running container pauses; a stopping one is on its way out.
        Op::Pause(_) => match s {
            Running(t) => Ok(Paused(*t)),
            Restarting { .. } => Err(O::Restarting),
            Paused(_) => Err(O::AlreadyPaused),
            Created | Starting | Stopping(_) | Exited { .. } => Err(O::NotRunning),
            _ => Err(refused(s)),
        },
        Op::Unpause(_) => match s {
            Paused(t) => Ok(Running(*t)),
            Restarting { .. } => Err(O::Restarting),
            Created | Starting | Running(_) | Stopping(_) | Exited { .. } => Err(O::NotPaused),
            _ => Err(refused(s)),
        },
        // The reconciler resumes the run it found; a frozen process stays frozen, and a
        // stop cut short by a crash stays a stop (the next daemon finishes it).
        Op::Resume(_) => match s {
            Paused(_) => Ok(Paused(tick)),
            Stopping(_) => Ok(Stopping(tick)),
            Exited { .. } | Restarting { .. } | Removing => Err(O::Invalid),
            _ => Ok(Running(tick)),
        },
        Op::Exit(_, code) => end(Some(*code)),
        Op::Lost(_) => end(None),
        Op::Orphan(_) if *s == Removing => Err(O::Invalid),
        Op::Orphan(_) => Ok(Orphaned(run_of(s))),
        Op::Adopt(_) => match s {
            Orphaned(t) => Ok(Running(t.unwrap_or(tick))),
            _ => Err(O::Invalid),
        },
        Op::ScheduleRestart(_) => match s {
            Exited { code, started } => Ok(Restarting {
                code: *code,
                started: *started,
            }),
            _ => Err(O::Invalid),
        },
        Op::Remove(_) => match s {
            Created | Exited { .. } | Removing => Ok(Removing),
            Restarting { .. } => Err(O::RestartingCannotRemove),
            _ if busy => Err(O::RunningCannotRemove),
            _ => Err(refused(s)),
        },
        other => unreachable!("not an event: {other:?}"),
    }
}

impl Model {
    fn holder(&self, name: u8) -> Option<u8> {
        self.containers
            .iter()
            .find(|(_, (n, _))| *n == name)
            .map(|(slot, _)| *slot)
    }

    fn apply(&mut self, op: &Op, tick: i64) -> Outcome {
        let slot = match op {
            Op::Restart => return Outcome::Ok,
            Op::Create { slot, name } => {
                if self.containers.contains_key(slot) {
                    return Outcome::IdInUse;
                }
                if let Some(holder) = self.holder(*name) {
                    return Outcome::NameInUse { holder };
                }
                self.containers.insert(*slot, (*name, M::Created));
                return Outcome::Ok;
            }
            Op::Rename { slot, .. }
            | Op::Start(slot)
            | Op::ShimStarted(slot)
            | Op::Stop(slot)
            | Op::Pause(slot)
            | Op::Unpause(slot)
            | Op::Resume(slot)
            | Op::Exit(slot, _)
            | Op::Lost(slot)
            | Op::Orphan(slot)
            | Op::Adopt(slot)
            | Op::Remove(slot)
            | Op::ScheduleRestart(slot)
            | Op::FinishRemoval(slot) => *slot,
        };
        let Some((current, state)) = self.containers.get(&slot).cloned() else {
            return Outcome::NoSuchContainer;
        };
        match op {
            Op::Rename { name, .. } => match self.holder(*name) {
                Some(holder) if holder != slot => Outcome::NameInUse { holder },
                _ => {
                    self.containers.insert(slot, (*name, state));
                    Outcome::Ok
                }
            },
            Op::FinishRemoval(_) if state == M::Removing => {
                self.containers.remove(&slot);
                Outcome::Ok
            }
            Op::FinishRemoval(_) => Outcome::NotRemoving,
            event => match model_event(&state, event, tick) {
                Ok(next) => {
                    self.containers.insert(slot, (current, next));
                    Outcome::Ok
                }
                Err(outcome) => outcome,
            },
        }
    }
}

fn name(n: u8) -> String {
    format!("name-{n}")
}

fn slot_of(id_: &str) -> u8 {
    (0..SLOTS)
        .find(|s| id(u64::from(*s)) == id_)
        .expect("known id")
}

/// A run started at `tick`: the pid encodes the tick so the projection can name it.
fn run_at(tick: i64) -> Run {
    let ident = |pid: i64| ProcessIdentity {
        pid: i32::try_from(pid).unwrap(),
        start_time: pid as u64 * 100,
        boot_id: "boot".into(),
    };
    Run {
        shim: ident(100_000 + tick),
        process: ident(1_000 + tick),
        started_at: ts(tick),
    }
}

fn tick_of(run: &Run) -> i64 {
    assert_eq!(run.started_at, ts(i64::from(run.process.pid) - 1_000));
    i64::from(run.process.pid) - 1_000
}

/// The real state in the model's words.
fn project(state: &State) -> M {
    match state {
        State::Created => M::Created,
        State::Starting => M::Starting,
        State::Running(run) => M::Running(tick_of(run)),
        State::Paused(run) => M::Paused(tick_of(run)),
        State::Stopping(run) => M::Stopping(tick_of(run)),
        State::Exited {
            exit, started_at, ..
        } => M::Exited {
            code: exit.map(|e| match e {
                Exit::Code(c) => c,
                Exit::Signal(s) => panic!("no signal exits in this test: {s}"),
            }),
            started: started_at.map(|t| (t - ts(0)).num_seconds()),
        },
        State::Removing => M::Removing,
        State::Orphaned { run, .. } => M::Orphaned(run.as_ref().map(tick_of)),
        State::Restarting {
            exit, started_at, ..
        } => M::Restarting {
            code: exit.map(|e| match e {
                Exit::Code(c) => c,
                Exit::Signal(s) => panic!("no signal exits in this test: {s}"),
            }),
            started: started_at.map(|t| (t - ts(0)).num_seconds()),
        },
    }
}

fn transition_outcome(e: &TransitionError) -> Outcome {
    match e {
        TransitionError::AlreadyRunning => Outcome::AlreadyRunning,
        TransitionError::NotRunning => Outcome::NotRunning,
        TransitionError::AlreadyPaused => Outcome::AlreadyPaused,
        TransitionError::NotPaused => Outcome::NotPaused,
        TransitionError::PausedCannotStart => Outcome::PausedCannotStart,
        TransitionError::RunningCannotRemove => Outcome::RunningCannotRemove,
        TransitionError::BeingRemoved => Outcome::BeingRemoved,
        TransitionError::Orphaned { .. } => Outcome::Orphaned,
        TransitionError::Invalid { .. } => Outcome::Invalid,
        TransitionError::RestartingCannotRemove => Outcome::RestartingCannotRemove,
        TransitionError::Restarting => Outcome::Restarting,
    }
}

fn store_outcome(r: Result<(), StoreError>) -> Outcome {
    match r {
        Ok(()) => Outcome::Ok,
        Err(StoreError::NameInUse { id, .. }) => Outcome::NameInUse {
            holder: slot_of(&id),
        },
        Err(StoreError::IdInUse { .. }) => Outcome::IdInUse,
        Err(StoreError::NoSuchContainer { .. }) => Outcome::NoSuchContainer,
        Err(other) => panic!("store failed: {other:?}"),
    }
}

/// The system under test: the real machine and store, as the daemon would drive them.
struct Real {
    /// Keeps the temporary directory alive for the test's length.
    _dir: tempfile::TempDir,
    /// The store directory, to reopen it.
    path: PathBuf,
    /// The open store (`None` only during a restart).
    store: Option<Store>,
    /// Every record as last written, to check a reopened store against.
    written: BTreeMap<String, ContainerRecord>,
}

impl Real {
    fn new() -> Real {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let store = Store::open(&path).unwrap();
        Real {
            _dir: dir,
            path,
            store: Some(store),
            written: BTreeMap::new(),
        }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("store open")
    }

    /// The event the daemon would feed `transition` for `op`, given the current state.
    fn event(op: &Op, state: &State, tick: i64) -> Event {
        match op {
            Op::Start(_) => Event::StartRequested,
            Op::ShimStarted(_) => Event::Started(run_at(tick)),
            Op::Stop(_) => Event::StopRequested,
            Op::Pause(_) => Event::Pause,
            Op::Unpause(_) => Event::Unpause,
            Op::Resume(_) => Event::Resumed(run_at(tick)),
            Op::Exit(_, code) => Event::Exited {
                exit: Exit::Code(*code),
                at: ts(tick),
            },
            Op::Lost(_) => Event::Lost {
                reason: "gone".into(),
                at: ts(tick),
            },
            Op::Orphan(_) => Event::Orphaned {
                reason: "test".into(),
                run: state.run().cloned(),
            },
            Op::Adopt(_) => Event::Adopted(state.run().cloned().unwrap_or_else(|| run_at(tick))),
            Op::Remove(_) => Event::RemoveRequested,
            Op::ScheduleRestart(_) => Event::RestartScheduled,
            other => unreachable!("not an event: {other:?}"),
        }
    }

    fn apply(&mut self, op: &Op, tick: i64) -> Outcome {
        let slot = match op {
            Op::Restart => {
                self.restart();
                return Outcome::Ok;
            }
            Op::Create { slot, name: n } => {
                let spec = ContainerSpec {
                    image: format!("image-{tick}"),
                    ..ContainerSpec::default()
                };
                let rec = ContainerRecord::new(id(u64::from(*slot)), name(*n), spec, ts(tick));
                let outcome = store_outcome(self.store().create(&rec));
                if outcome == Outcome::Ok {
                    self.written.insert(rec.id.clone(), rec);
                }
                return outcome;
            }
            Op::Rename { slot, name: n } => {
                let cid = id(u64::from(*slot));
                let outcome = store_outcome(self.store().rename(&cid, &name(*n)));
                if outcome == Outcome::Ok {
                    self.written.get_mut(&cid).unwrap().name = name(*n);
                }
                return outcome;
            }
            Op::Start(s) | Op::ShimStarted(s) | Op::Stop(s) | Op::Exit(s, _) | Op::Lost(s) => *s,
            Op::Pause(s) | Op::Unpause(s) | Op::Resume(s) => *s,
            Op::Orphan(s) | Op::Adopt(s) | Op::Remove(s) | Op::FinishRemoval(s) => *s,
            Op::ScheduleRestart(s) => *s,
        };
        let cid = id(u64::from(slot));
        let Some(mut rec) = self.store().get(&cid).unwrap() else {
            return Outcome::NoSuchContainer;
        };
        if let Op::FinishRemoval(_) = op {
            if rec.state != State::Removing {
                return Outcome::NotRemoving;
            }
            self.store().remove(&cid).unwrap();
            self.written.remove(&cid);
            return Outcome::Ok;
        }
        match transition(&rec.state, Self::event(op, &rec.state, tick)) {
            Ok(next) => {
                rec.state = next;
                self.store().put(&rec).unwrap();
                self.written.insert(cid, rec);
                Outcome::Ok
            }
            Err(e) => transition_outcome(&e),
        }
    }

    /// Closes the store and opens it again; it must hold exactly what was written.
    fn restart(&mut self) {
        drop(self.store.take());
        self.store = Some(common::reopen(&self.path));
        let (got, errors) = self.store().list_with_errors().unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let mut want: Vec<ContainerRecord> = self.written.values().cloned().collect();
        want.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        assert_eq!(got, want, "reopened store differs from what was written");
    }

    /// Checks every container and name against the model.
    fn check(&self, model: &Model) -> Result<(), TestCaseError> {
        for slot in 0..SLOTS {
            let got = self.store().get(&id(u64::from(slot))).unwrap();
            let got = got.map(|r| (r.name.clone(), project(&r.state)));
            let want = model
                .containers
                .get(&slot)
                .map(|(n, m)| (name(*n), m.clone()));
            prop_assert_eq!(got, want, "slot {}", slot);
        }
        for n in 0..NAMES {
            let got = self.store().id_by_name(&name(n)).unwrap();
            let want = model.holder(n).map(|s| id(u64::from(s)));
            prop_assert_eq!(got, want, "name {}", n);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../proptest-regressions/model.txt"
        )))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn machine_and_store_agree_with_the_model(ops in proptest::collection::vec(arb_op(), 1..40)) {
        let mut model = Model::default();
        let mut real = Real::new();
        for (i, op) in ops.iter().enumerate() {
            let tick = i as i64 + 1;
            let want = model.apply(op, tick);
            let got = real.apply(op, tick);
            prop_assert_eq!(&got, &want, "op #{} {:?}", i, op);
            real.check(&model)?;
        }
        real.restart();
    }
}
