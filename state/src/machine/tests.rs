//! The transition table, state by state and event by event.
use chrono::{TimeZone, Utc};

use super::*;

fn at(secs: i64) -> Timestamp {
    Utc.timestamp_opt(1_700_000_000 + secs, 123_456_789)
        .unwrap()
}

fn run(pid: i32) -> Run {
    let id = |pid| ProcessIdentity {
        pid,
        start_time: 1000 + pid as u64,
        boot_id: "boot-a".into(),
    };
    Run {
        shim: id(pid - 1),
        process: id(pid),
        started_at: at(i64::from(pid)),
    }
}

fn states() -> Vec<State> {
    vec![
        State::Created,
        State::Starting,
        State::Running(run(10)),
        State::Paused(run(10)),
        State::Stopping(run(10)),
        State::Exited {
            exit: Some(Exit::Code(3)),
            error: String::new(),
            started_at: Some(at(10)),
            finished_at: at(20),
        },
        State::Removing,
        State::Orphaned {
            reason: "unknown shim".into(),
            run: Some(run(10)),
        },
        State::Restarting {
            exit: Some(Exit::Code(3)),
            error: String::new(),
            started_at: Some(at(10)),
            finished_at: at(20),
        },
    ]
}

fn events() -> Vec<Event> {
    vec![
        Event::StartRequested,
        Event::Started(run(30)),
        Event::StartFailed {
            code: 127,
            error: "not found".into(),
            at: at(31),
        },
        Event::StopRequested,
        Event::Pause,
        Event::Unpause,
        Event::Exited {
            exit: Exit::Signal(9),
            at: at(32),
        },
        Event::Lost {
            reason: "gone".into(),
            at: at(33),
        },
        Event::RemoveRequested,
        Event::Resumed(run(40)),
        Event::Orphaned {
            reason: "why".into(),
            run: None,
        },
        Event::Adopted(run(50)),
        Event::RestartScheduled,
    ]
}

/// The resulting state's name, or the error's kind.
fn outcome(r: Result<State, TransitionError>) -> &'static str {
    match r {
        Ok(s) => s.name(),
        Err(TransitionError::AlreadyRunning) => "E:already-running",
        Err(TransitionError::NotRunning) => "E:not-running",
        Err(TransitionError::AlreadyPaused) => "E:already-paused",
        Err(TransitionError::NotPaused) => "E:not-paused",
        Err(TransitionError::PausedCannotStart) => "E:paused-cannot-start",
        Err(TransitionError::RunningCannotRemove) => "E:running-cannot-remove",
        Err(TransitionError::BeingRemoved) => "E:being-removed",
        Err(TransitionError::Orphaned { .. }) => "E:orphaned",
        Err(TransitionError::Invalid { .. }) => "E:invalid",
        Err(TransitionError::RestartingCannotRemove) => "E:restarting-cannot-remove",
        Err(TransitionError::Restarting) => "E:restarting",
    }
}

/// Rows: states in `states()` order; columns: events in `events()` order (start,
/// started, start-failed, stop, pause, unpause, exited, lost, remove, resumed, orphaned,
/// adopted, restart-scheduled).
#[rustfmt::skip]
const TABLE: [[&str; 13]; 9] = {
    const I: &str = "E:invalid";
    const AR: &str = "E:already-running";
    const NR: &str = "E:not-running";
    const AP: &str = "E:already-paused";
    const NP: &str = "E:not-paused";
    const PS: &str = "E:paused-cannot-start";
    const RC: &str = "E:running-cannot-remove";
    const BR: &str = "E:being-removed";
    const OR: &str = "E:orphaned";
    const RR: &str = "E:restarting-cannot-remove";
    const RS: &str = "E:restarting";
    [
        // created
        ["starting", I, I, NR, NR, NP, "exited", "exited", "removing", "running", "orphaned", I, I],
        // starting
        [AR, "running", "exited", NR, NR, NP, "exited", "exited", RC, "running", "orphaned", I, I],
        // running
        [AR, I, I, "stopping", "paused", NP, "exited", "exited", RC, "running", "orphaned", I, I],
        // paused
        [PS, I, I, "stopping", AP, "running", "exited", "exited", RC, "paused", "orphaned", I, I],
        // stopping
        [AR, I, I, "stopping", NR, NP, "exited", "exited", RC, "stopping", "orphaned", I, I],
        // exited
        ["starting", I, I, NR, NR, NP, I, I, "removing", I, "orphaned", I, "restarting"],
        // removing
        [BR, I, I, BR, BR, BR, I, I, "removing", I, I, I, I],
        // orphaned
        [OR, I, I, OR, OR, OR, "exited", "exited", OR, "running", "orphaned", "running", I],
        // restarting
        ["starting", I, I, "exited", RS, RS, I, I, RR, I, "orphaned", I, I],
    ]
};

#[test]
fn every_state_event_pair_matches_the_table() {
    let mut mismatches = Vec::new();
    for (state, row) in states().iter().zip(TABLE) {
        for (event, want) in events().into_iter().zip(row) {
            let name = event.name();
            let got = outcome(transition(state, event));
            if got != want {
                mismatches.push(format!("{} + {name}: got {got}, want {want}", state.name()));
            }
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

#[test]
fn invalid_names_state_and_event() {
    let err = transition(&State::Removing, Event::Adopted(run(5))).unwrap_err();
    assert_eq!(
        err,
        TransitionError::Invalid {
            state: "removing",
            event: "adopted"
        }
    );
}

#[test]
fn exit_keeps_started_at_of_the_run() {
    for s in [State::Running(run(10)), State::Stopping(run(10))] {
        let ev = Event::Exited {
            exit: Exit::Code(0),
            at: at(99),
        };
        match transition(&s, ev).unwrap() {
            State::Exited {
                exit,
                started_at,
                finished_at,
                error,
            } => {
                assert_eq!(exit, Some(Exit::Code(0)));
                assert_eq!(started_at, Some(at(10)));
                assert_eq!(finished_at, at(99));
                assert!(error.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn lost_gives_no_exit_and_the_reason() {
    let ev = Event::Lost {
        reason: "host rebooted".into(),
        at: at(77),
    };
    let s = transition(&State::Running(run(10)), ev).unwrap();
    assert_eq!(
        s,
        State::Exited {
            exit: None,
            error: "host rebooted".into(),
            started_at: Some(at(10)),
            finished_at: at(77),
        }
    );
    assert_eq!(s.started_at(), Some(at(10)));
}

#[test]
fn stop_keeps_the_run() {
    let s = transition(&State::Running(run(10)), Event::StopRequested).unwrap();
    assert_eq!(s, State::Stopping(run(10)));
    assert_eq!(s.signal_target(), Ok(&run(10)));
}

#[test]
fn start_failed_has_the_code_and_no_start() {
    let ev = Event::StartFailed {
        code: 126,
        error: "not executable".into(),
        at: at(5),
    };
    match transition(&State::Starting, ev).unwrap() {
        State::Exited {
            exit, started_at, ..
        } => {
            assert_eq!(exit.map(Exit::code), Some(126));
            assert_eq!(started_at, None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn remove_of_running_is_refused() {
    let r = transition(&State::Running(run(10)), Event::RemoveRequested);
    assert_eq!(r, Err(TransitionError::RunningCannotRemove));
}

#[test]
fn orphan_refusal_carries_its_reason() {
    let s = State::Orphaned {
        reason: "protocol 9".into(),
        run: None,
    };
    let r = transition(&s, Event::StartRequested);
    assert_eq!(
        r,
        Err(TransitionError::Orphaned {
            reason: "protocol 9".into()
        })
    );
    assert!(matches!(
        s.signal_target(),
        Err(TransitionError::Orphaned { .. })
    ));
}

#[test]
fn adopt_and_resume_keep_the_given_run() {
    let o = State::Orphaned {
        reason: "r".into(),
        run: Some(run(10)),
    };
    assert_eq!(
        transition(&o, Event::Adopted(run(10))),
        Ok(State::Running(run(10)))
    );
    assert_eq!(
        transition(&State::Starting, Event::Resumed(run(12))),
        Ok(State::Running(run(12)))
    );
    assert_eq!(State::Running(run(12)).started_at(), Some(at(12)));
}

#[test]
fn pause_keeps_the_run_and_reads_as_docker_does() {
    let p = transition(&State::Running(run(10)), Event::Pause).unwrap();
    assert_eq!(p, State::Paused(run(10)));
    assert_eq!(p.docker_status(), "paused");
    assert_eq!(p.started_at(), Some(at(10)));
    assert_eq!(p.signal_target(), Ok(&run(10)));
    assert_eq!(transition(&p, Event::Unpause), Ok(State::Running(run(10))));
    // A stop of a paused container stops it (the daemon thaws it after the signal).
    assert_eq!(
        transition(&p, Event::StopRequested),
        Ok(State::Stopping(run(10)))
    );
    // The reconciler finds it still frozen: it stays paused, with the run it found.
    assert_eq!(
        transition(&p, Event::Resumed(run(12))),
        Ok(State::Paused(run(12)))
    );
}

#[test]
fn a_paused_container_killed_records_its_exit() {
    let ev = Event::Exited {
        exit: Exit::Signal(9),
        at: at(50),
    };
    match transition(&State::Paused(run(10)), ev).unwrap() {
        State::Exited {
            exit, started_at, ..
        } => {
            assert_eq!(exit.map(Exit::code), Some(137));
            assert_eq!(started_at, Some(at(10)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn exit_codes_follow_docker() {
    assert_eq!(Exit::Code(3).code(), 3);
    assert_eq!(Exit::Signal(9).code(), 137);
}
