//! The reconciler's decision, as a pure function: a recovered record plus what the
//! daemon observed on the host in, one [`Class`] out. The daemon acts on it; `moor
//! admin inspect` prints it as a dry run. Unit-tested with the facts given as data.

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::machine::{Run, State};
use crate::record::{Exit, Timestamp};
pub use crate::runtime_state::RuntimeState;

/// The result of checking a recorded process identity against /proc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// A process with this pid, start time and boot id runs.
    Alive,
    /// No process has this pid (or the boot id differs: the host rebooted).
    Gone,
    /// The pid runs, but it is another process (start time differs): never signalled.
    Reused,
}

impl Liveness {
    /// Whether it is the recorded process, alive.
    pub fn is_alive(self) -> bool {
        self == Liveness::Alive
    }
}

/// A run found in the container's run directory (the shim's `started` file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedRun {
    /// The run as the shim wrote it.
    pub run: Run,
    /// Whether the shim is still that process.
    pub shim: Liveness,
    /// Whether the container process is still that process.
    pub process: Liveness,
}

/// An exit status found in the container's run directory (the shim's `exit` file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedExit {
    /// How the process ended.
    pub exit: Exit,
    /// When the shim reaped it.
    pub at: Timestamp,
}

/// Everything the daemon looked at for one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// The shim's started file, if present and readable.
    pub started: Option<ObservedRun>,
    /// The shim's exit file, if present and readable.
    pub exit: Option<ObservedExit>,
    /// Set when the run directory holds files of a shim protocol this daemon cannot read.
    pub unsupported_protocol: Option<u32>,
    /// `runc state` for a runc container; None for the process runtime (nothing to ask).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_state: Option<RuntimeState>,
    /// Set when the runtime binary the container was started under is gone (its path):
    /// a live container of it cannot be managed (README "Changing daemon options").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_missing: Option<String>,
    /// When the observation was made (the time of a `Lost`).
    pub now: Timestamp,
}

/// What the reconciler does with one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Shim and process alive, identities match: watched again, same pid and StartedAt.
    Resume(Run),
    /// The shim finished while the daemon was away and left the exit status.
    ExitedWhileDown(ObservedExit),
    /// Nothing alive and no exit file: the end is unknown.
    Lost {
        /// Why, for logs and `State.Error`.
        reason: String,
    },
    /// A live process moor cannot manage: left running, listed for the admin.
    Orphan {
        /// Why, for logs and `moor admin orphans`.
        reason: String,
        /// The run, when known.
        run: Option<Run>,
    },
    /// A removal was under way: finish it.
    FinishRemoval,
    /// Nothing to do (created and never started, or exited before).
    Unchanged,
}

impl Class {
    /// A short name for the one log line per container.
    pub fn name(&self) -> &'static str {
        match self {
            Class::Resume(_) => "resume",
            Class::ExitedWhileDown(_) => "exited-while-down",
            Class::Lost { .. } => "lost",
            Class::Orphan { .. } => "orphan",
            Class::FinishRemoval => "finish-removal",
            Class::Unchanged => "unchanged",
        }
    }

    /// The event that applies this class to the record, if it changes the state.
    pub fn event(&self, now: Timestamp) -> Option<Event> {
        match self {
            Class::Resume(run) => Some(Event::Resumed(run.clone())),
            Class::ExitedWhileDown(e) => Some(Event::Exited {
                exit: e.exit,
                at: e.at,
            }),
            Class::Lost { reason } => Some(Event::Lost {
                reason: reason.clone(),
                at: now,
            }),
            Class::Orphan { reason, run } => Some(Event::Orphaned {
                reason: reason.clone(),
                run: run.clone(),
            }),
            Class::FinishRemoval | Class::Unchanged => None,
        }
    }
}

/// Classifies one recovered container. See DESIGN.md, "reconciler".
pub fn classify(state: &State, obs: &Observation) -> Class {
    if matches!(state, State::Removing) {
        return Class::FinishRemoval;
    }
    if let Some(version) = obs.unsupported_protocol {
        if (state.is_ended() || matches!(state, State::Created)) && obs.started.is_none() {
            return Class::Unchanged;
        }
        return Class::Orphan {
            reason: format!("shim protocol version {version} is not supported by this daemon"),
            run: obs.started.as_ref().map(|o| o.run.clone()),
        };
    }
    if let Some(class) = runtime_contradiction(state, obs) {
        return class;
    }
    match &obs.started {
        Some(o) => classify_run(state, o, obs.exit),
        None => classify_without_run(state, obs.exit),
    }
    .with_runtime_state(obs.runtime_state)
    .without_runtime(obs.runtime_missing.as_deref())
}

/// A container whose runtime state contradicts the process check: a live process the
/// runtime calls stopped or missing, or a container the runtime runs while the recorded
/// process is gone (and no live shim will report on it). Either is left to the admin: a
/// `runc delete --force` would kill it silently.
fn runtime_contradiction(state: &State, obs: &Observation) -> Option<Class> {
    let runtime = obs.runtime_state?;
    let run = obs.started.as_ref();
    let process_alive = run.is_some_and(|o| o.process.is_alive());
    let shim_alive = run.is_some_and(|o| o.shim.is_alive());
    let reason = if process_alive && !runtime.is_live() {
        format!(
            "process alive but the runtime state is {}: it cannot be managed",
            runtime.name()
        )
    } else if runtime.is_live() && !process_alive && !shim_alive {
        format!(
            "the runtime state is {} but the recorded process is gone",
            runtime.name()
        )
    } else {
        return None;
    };
    if state.is_ended() && !runtime.is_live() {
        // Classified as before: a live process contradicts an exited record anyway.
        return None;
    }
    Some(Class::Orphan {
        reason,
        run: run.map(|o| o.run.clone()),
    })
}

impl Class {
    /// A container to resume whose runtime binary is gone cannot be managed: an orphan,
    /// left running, adoptable once the binary is back. Other classes need no runtime call.
    fn without_runtime(self, missing: Option<&str>) -> Class {
        match (self, missing) {
            (Class::Resume(run), Some(path)) => Class::Orphan {
                reason: format!(
                    "its runtime binary {path} is gone: put it back, then `moor admin adopt`"
                ),
                run: Some(run),
            },
            (class, _) => class,
        }
    }

    /// Adds the runtime state to a lost container's reason.
    fn with_runtime_state(self, runtime: Option<RuntimeState>) -> Class {
        match (self, runtime) {
            (Class::Lost { reason }, Some(r)) => Class::Lost {
                reason: format!("{reason} (runtime state: {})", r.name()),
            },
            (class, _) => class,
        }
    }
}

fn classify_run(state: &State, o: &ObservedRun, exit: Option<ObservedExit>) -> Class {
    let shim_alive = o.shim.is_alive();
    let process_alive = o.process.is_alive();
    if state.is_ended() {
        // The record says it ended; only a live process contradicts that.
        return if process_alive {
            Class::Orphan {
                reason: "process alive but the record says it exited".into(),
                run: Some(o.run.clone()),
            }
        } else {
            Class::Unchanged
        };
    }
    if shim_alive {
        // A live shim reports the exit itself, even when the process just ended.
        return Class::Resume(o.run.clone());
    }
    if let Some(e) = exit {
        return Class::ExitedWhileDown(e);
    }
    if process_alive {
        // Whether the daemon saw the shim die or finds it gone at start-up: the process
        // runs on, so this is no exit, and nothing may start a second copy of it.
        return Class::Orphan {
            reason: format!(
                "shim (pid {}) gone while the process runs: its exit cannot be collected",
                o.run.shim.pid
            ),
            run: Some(o.run.clone()),
        };
    }
    Class::Lost {
        reason: match (o.shim, o.process) {
            (Liveness::Reused, _) | (_, Liveness::Reused) => {
                "shim and process gone without an exit status (pid reused since)".into()
            }
            _ => "shim and process gone without an exit status".into(),
        },
    }
}

fn classify_without_run(state: &State, exit: Option<ObservedExit>) -> Class {
    match (state, exit) {
        (State::Exited { .. } | State::Restarting { .. } | State::Created, _) => Class::Unchanged,
        (_, Some(e)) => Class::ExitedWhileDown(e),
        (State::Starting, None) => Class::Lost {
            reason: "the daemon stopped while starting it, and no shim reported".into(),
        },
        (State::Orphaned { .. }, None) => Class::Lost {
            reason: "the orphaned process is gone without an exit status".into(),
        },
        (_, None) => Class::Lost {
            reason: "no shim state in the run directory (host rebooted?)".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::machine::transition;
    use crate::record::ProcessIdentity;

    fn at(secs: i64) -> Timestamp {
        Utc.timestamp_opt(1_700_000_000 + secs, 42).unwrap()
    }

    fn run() -> Run {
        let id = |pid: i32, start_time| ProcessIdentity {
            pid,
            start_time,
            boot_id: "b0".into(),
        };
        Run {
            shim: id(100, 5000),
            process: id(101, 5001),
            started_at: at(1),
        }
    }

    fn obs(shim: Liveness, process: Liveness, exit: Option<ObservedExit>) -> Observation {
        Observation {
            started: Some(ObservedRun {
                run: run(),
                shim,
                process,
            }),
            exit,
            unsupported_protocol: None,
            runtime_state: None,
            runtime_missing: None,
            now: at(500),
        }
    }

    fn no_run(exit: Option<ObservedExit>) -> Observation {
        Observation {
            started: None,
            exit,
            unsupported_protocol: None,
            runtime_state: None,
            runtime_missing: None,
            now: at(500),
        }
    }

    fn exit_file() -> Option<ObservedExit> {
        Some(ObservedExit {
            exit: Exit::Code(7),
            at: at(300),
        })
    }

    fn exited() -> State {
        State::Exited {
            exit: Some(Exit::Code(0)),
            error: String::new(),
            started_at: Some(at(1)),
            finished_at: at(2),
        }
    }

    use Liveness::{Alive, Gone, Reused};

    #[test]
    fn resume_when_shim_and_process_alive() {
        let c = classify(&State::Running(run()), &obs(Alive, Alive, None));
        assert_eq!(c, Class::Resume(run()));
        let s = transition(&State::Running(run()), c.event(at(500)).unwrap()).unwrap();
        assert_eq!(s.run().unwrap().process.pid, 101);
        assert_eq!(s.started_at(), Some(at(1)));
    }

    #[test]
    fn a_live_container_whose_runtime_binary_is_gone_is_an_orphan_adoptable_later() {
        let mut o = obs(Alive, Alive, None);
        o.runtime_missing = Some("/old/runc".into());
        let c = classify(&State::Running(run()), &o);
        match &c {
            Class::Orphan {
                reason,
                run: Some(r),
            } => {
                assert!(reason.contains("/old/runc"), "{reason}");
                assert_eq!(r, &run());
            }
            other => panic!("{other:?}"),
        }
        let s = transition(&State::Running(run()), c.event(at(500)).unwrap()).unwrap();
        assert_eq!(s.name(), "orphaned");
        // Back: adopted (the state machine's transition), managed again.
        let adopted = transition(&s, crate::Event::Adopted(run())).unwrap();
        assert_eq!(adopted, State::Running(run()));
        // An exit while away needs no runtime: recorded as usual.
        let mut gone = obs(Gone, Gone, exit_file());
        gone.runtime_missing = Some("/old/runc".into());
        let c = classify(&State::Running(run()), &gone);
        assert_eq!(c, Class::ExitedWhileDown(exit_file().unwrap()));
        // The binary back before the next start: resumed.
        let c = classify(&s, &obs(Alive, Alive, None));
        assert_eq!(c, Class::Resume(run()));
    }

    #[test]
    fn a_paused_record_resumes_as_paused() {
        // The process is still frozen: the daemon's restart does not thaw it.
        let c = classify(&State::Paused(run()), &obs(Alive, Alive, None));
        assert_eq!(c, Class::Resume(run()));
        let s = transition(&State::Paused(run()), c.event(at(500)).unwrap()).unwrap();
        assert_eq!(s, State::Paused(run()));
        assert_eq!(s.docker_status(), "paused");
        // Killed while the daemon was away: the exit file wins, as for a running one.
        let c = classify(&State::Paused(run()), &obs(Gone, Gone, exit_file()));
        assert_eq!(c, Class::ExitedWhileDown(exit_file().unwrap()));
        let c = classify(&State::Paused(run()), &obs(Gone, Gone, None));
        assert_eq!(c.name(), "lost");
    }

    #[test]
    fn exited_while_down_uses_the_exit_file() {
        let c = classify(&State::Running(run()), &obs(Gone, Gone, exit_file()));
        assert_eq!(c, Class::ExitedWhileDown(exit_file().unwrap()));
        let s = transition(&State::Running(run()), c.event(at(500)).unwrap()).unwrap();
        assert_eq!(
            s,
            State::Exited {
                exit: Some(Exit::Code(7)),
                error: String::new(),
                started_at: Some(at(1)),
                finished_at: at(300),
            }
        );
        // Without a started file too (shim wrote the exit, then the run dir lost `started`).
        let c = classify(&State::Stopping(run()), &no_run(exit_file()));
        assert_eq!(c.name(), "exited-while-down");
    }

    #[test]
    fn lost_when_nothing_alive_and_no_exit_file() {
        let c = classify(&State::Running(run()), &obs(Gone, Gone, None));
        assert_eq!(c.name(), "lost");
        let ev = c.event(at(500)).unwrap();
        let s = transition(&State::Running(run()), ev).unwrap();
        assert!(
            matches!(s, State::Exited { exit: None, finished_at, .. } if finished_at == at(500))
        );
        // After a reboot the run dir is empty.
        let c = classify(&State::Running(run()), &no_run(None));
        assert_eq!(c.name(), "lost");
    }

    #[test]
    fn orphan_when_shim_gone_and_process_alive() {
        let c = classify(&State::Running(run()), &obs(Gone, Alive, None));
        assert!(
            matches!(&c, Class::Orphan { run: Some(r), .. } if *r == run()),
            "{c:?}"
        );
    }

    #[test]
    fn orphan_for_unsupported_protocol_even_when_alive() {
        let mut o = obs(Alive, Alive, None);
        o.unsupported_protocol = Some(9);
        let c = classify(&State::Running(run()), &o);
        match &c {
            Class::Orphan { reason, run: r } => {
                assert!(reason.contains('9'), "{reason}");
                assert_eq!(r.as_ref(), Some(&run()));
            }
            other => panic!("{other:?}"),
        }
        // Nothing recorded as running and no run: nothing to orphan.
        let mut o = no_run(None);
        o.unsupported_protocol = Some(9);
        assert_eq!(classify(&exited(), &o), Class::Unchanged);
    }

    #[test]
    fn orphan_when_an_exited_record_has_a_live_process() {
        let c = classify(&exited(), &obs(Gone, Alive, None));
        assert_eq!(c.name(), "orphan");
    }

    #[test]
    fn finish_removal_whatever_is_observed() {
        for o in [obs(Alive, Alive, None), no_run(exit_file())] {
            assert_eq!(classify(&State::Removing, &o), Class::FinishRemoval);
        }
        assert_eq!(Class::FinishRemoval.event(at(1)), None);
    }

    #[test]
    fn unchanged_for_created_and_exited_without_a_live_process() {
        assert_eq!(classify(&State::Created, &no_run(None)), Class::Unchanged);
        assert_eq!(classify(&exited(), &no_run(exit_file())), Class::Unchanged);
        assert_eq!(
            classify(&exited(), &obs(Gone, Gone, None)),
            Class::Unchanged
        );
        assert_eq!(Class::Unchanged.event(at(1)), None);
    }

    #[test]
    fn reused_process_pid_is_never_alive() {
        // Shim gone, process pid reused: lost (or exited with a file), never resumed or orphaned.
        let c = classify(&State::Running(run()), &obs(Gone, Reused, None));
        match &c {
            Class::Lost { reason } => assert!(reason.contains("reused"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let c = classify(&State::Running(run()), &obs(Reused, Reused, exit_file()));
        assert_eq!(c.name(), "exited-while-down");
        // An exited record with a reused pid is not a live process to orphan.
        assert_eq!(
            classify(&exited(), &obs(Gone, Reused, None)),
            Class::Unchanged
        );
        assert_eq!(
            classify(&exited(), &obs(Reused, Reused, None)),
            Class::Unchanged
        );
    }

    #[test]
    fn reused_shim_pid_is_not_a_live_shim() {
        // Shim pid reused while the process runs: nobody collects its exit, so orphan.
        let c = classify(&State::Running(run()), &obs(Reused, Alive, None));
        assert_eq!(c.name(), "orphan");
        let c = classify(&State::Running(run()), &obs(Reused, Gone, None));
        assert_eq!(c.name(), "lost");
    }

    #[test]
    fn live_shim_is_resumed_even_if_its_process_just_ended() {
        // The shim reaped it (so the pid may be reused) and will report the exit itself.
        for p in [Gone, Reused] {
            let c = classify(&State::Running(run()), &obs(Alive, p, None));
            assert_eq!(c, Class::Resume(run()));
        }
    }

    #[test]
    fn a_shim_killed_under_a_running_daemon_is_an_orphan_never_an_exit() {
        // The daemon's actor classifies with this same function when the shim's pidfd fires.
        for state in [
            State::Running(run()),
            State::Paused(run()),
            State::Stopping(run()),
        ] {
            for runtime in [None, Some(RuncRunning)] {
                let mut o = obs(Gone, Alive, None);
                o.runtime_state = runtime;
                match classify(&state, &o) {
                    Class::Orphan {
                        reason,
                        run: Some(r),
                    } => {
                        assert!(reason.contains("shim (pid 100) gone"), "{reason}");
                        assert_eq!(r, run());
                        let next = transition(
                            &state,
                            Class::Orphan {
                                reason,
                                run: Some(r),
                            }
                            .event(at(9))
                            .unwrap(),
                        );
                        assert_eq!(next.unwrap().name(), "orphaned");
                    }
                    other => panic!("{} {runtime:?}: {other:?}", state.name()),
                }
            }
            // The shim wrote its exit file before it went: that is the evidence of an exit.
            let c = classify(&state, &obs(Gone, Gone, exit_file()));
            assert_eq!(c, Class::ExitedWhileDown(exit_file().unwrap()));
        }
        // The orphan stays one while its process lives; a start is refused meanwhile.
        let orphan = State::Orphaned {
            reason: "shim gone".into(),
            run: Some(run()),
        };
        assert_eq!(classify(&orphan, &obs(Gone, Alive, None)).name(), "orphan");
        assert!(matches!(
            transition(&orphan, Event::StartRequested),
            Err(crate::machine::TransitionError::Orphaned { .. })
        ));
        // Its process verified gone (or its pid reused): lost, and only now may a policy
        // start a new copy.
        for p in [Gone, Reused] {
            let c = classify(&orphan, &obs(Gone, p, None));
            assert_eq!(c.name(), "lost", "{p:?}");
            let next = transition(&orphan, c.event(at(9)).unwrap()).unwrap();
            assert!(matches!(next, State::Exited { exit: None, .. }));
        }
        let mut o = obs(Gone, Gone, None);
        o.runtime_state = Some(Stopped);
        assert_eq!(classify(&orphan, &o).name(), "lost");
    }

    fn with_runtime(mut o: Observation, r: RuntimeState) -> Observation {
        o.runtime_state = Some(r);
        o
    }

    use RuntimeState::{Missing, Running as RuncRunning, Stopped};

    #[test]
    fn runc_running_and_alive_resumes() {
        let o = with_runtime(obs(Alive, Alive, None), RuncRunning);
        assert_eq!(classify(&State::Running(run()), &o), Class::Resume(run()));
        // The shim reaped the init and will report: runc says stopped, still a resume.
        let o = with_runtime(obs(Alive, Gone, None), Stopped);
        assert_eq!(classify(&State::Running(run()), &o), Class::Resume(run()));
    }

    #[test]
    fn runc_stopped_or_missing_with_the_process_gone_ends_the_container() {
        for r in [Stopped, Missing] {
            let o = with_runtime(obs(Gone, Gone, exit_file()), r);
            let c = classify(&State::Running(run()), &o);
            assert_eq!(c, Class::ExitedWhileDown(exit_file().unwrap()));
            let o = with_runtime(obs(Gone, Gone, None), r);
            match classify(&State::Running(run()), &o) {
                Class::Lost { reason } => assert!(reason.contains(r.name()), "{reason}"),
                other => panic!("{other:?}"),
            }
            let o = with_runtime(no_run(None), r);
            assert_eq!(classify(&State::Running(run()), &o).name(), "lost");
            assert_eq!(classify(&exited(), &o), Class::Unchanged);
        }
    }

    #[test]
    fn runc_state_contradicting_the_process_is_an_orphan() {
        for shim in [Alive, Gone] {
            for r in [Stopped, Missing] {
                let o = with_runtime(obs(shim, Alive, None), r);
                match classify(&State::Running(run()), &o) {
                    Class::Orphan {
                        reason,
                        run: Some(got),
                    } => {
                        assert!(reason.contains(r.name()), "{reason}");
                        assert_eq!(got, run());
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        // runc runs a container whose recorded process and shim are gone: never deleted.
        let o = with_runtime(obs(Gone, Gone, exit_file()), RuncRunning);
        assert_eq!(classify(&State::Running(run()), &o).name(), "orphan");
        let o = with_runtime(no_run(None), RuncRunning);
        assert_eq!(classify(&exited(), &o).name(), "orphan");
        // No runtime state (process runtime): as before.
        assert_eq!(
            classify(&State::Running(run()), &obs(Gone, Alive, None)).name(),
            "orphan"
        );
    }

    fn all_states() -> Vec<State> {
        vec![
            State::Created,
            State::Starting,
            State::Running(run()),
            State::Paused(run()),
            State::Stopping(run()),
            exited(),
            State::Removing,
            State::Orphaned {
                reason: "r".into(),
                run: Some(run()),
            },
            State::Orphaned {
                reason: "r".into(),
                run: None,
            },
        ]
    }

    fn all_observations() -> Vec<Observation> {
        let mut out = Vec::new();
        for unsupported in [None, Some(3)] {
            for exit in [None, exit_file()] {
                let mut o = no_run(exit);
                o.unsupported_protocol = unsupported;
                out.push(o);
                for shim in [Alive, Gone, Reused] {
                    for process in [Alive, Gone, Reused] {
                        let mut o = obs(shim, process, exit);
                        o.unsupported_protocol = unsupported;
                        for r in [None, Some(RuncRunning), Some(Stopped), Some(Missing)] {
                            o.runtime_state = r;
                            out.push(o.clone());
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_class_event_is_a_valid_transition() {
        let mut bad = Vec::new();
        for state in all_states() {
            for o in all_observations() {
                let class = classify(&state, &o);
                if let Some(ev) = class.event(o.now) {
                    if let Err(e) = transition(&state, ev) {
                        bad.push(format!("{} / {o:?} -> {}: {e}", state.name(), class.name()));
                    }
                }
            }
        }
        assert!(bad.is_empty(), "{bad:#?}");
    }

    #[test]
    fn nothing_but_an_alive_shim_resumes() {
        for state in all_states() {
            for o in all_observations() {
                if let Class::Resume(_) = classify(&state, &o) {
                    let started = o.started.as_ref().unwrap();
                    assert_eq!(started.shim, Alive, "{state:?} {o:?}");
                    assert_eq!(o.unsupported_protocol, None);
                }
            }
        }
    }
}
