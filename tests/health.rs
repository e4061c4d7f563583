//! Issue 16, healthchecks: `Healthcheck` at create (the docker CLI's `--health-*` flags) and
//! `HEALTHCHECK` in an image's config (here from an import's `changes`), probed by the daemon
//! as execs inside a runc container: `State.Health` in inspect, `(healthy)` in `docker ps`,
//! the `health` filter, `health_status` events; a paused container is not probed; a probe
//! past its timeout fails; the health survives a `kill -9` of the daemon and the probes go
//! on from it; `NONE` disables the image's check; bad values are a 400 naming the field.

mod common;

use common::*;
use serde_json::{json, Value};

/// A daemon on runc with busybox imported as `bb`, or None (reason printed).
fn daemon() -> Option<Daemon> {
    if let Some(reason) = common::runc::skip_reason() {
        eprintln!("skipped: {reason}");
        return None;
    }
    let d = Daemon::start_with_runtime(LIVE_RESTORE_ON, "runc");
    d.import_busybox("bb");
    Some(d)
}

/// `docker inspect --format '{{.State.Health.Status}}'`.
fn health(d: &Daemon, name: &str) -> String {
    d.docker_ok(&["inspect", "--format", "{{.State.Health.Status}}", name])
        .trim()
        .to_string()
}

/// Waits until the health of `name` is `status`, or fails with its inspect.
fn wait_health(d: &Daemon, name: &str, status: &str) {
    let seen = wait_for(EXIT_DEADLINE, || health(d, name) == status);
    assert!(
        seen,
        "{name} never {status}: {}",
        d.inspect_json(name)["State"]
    );
}

/// Waits until container `name`'s probes have run `n` more times (the start time of its last
/// logged result moved on `n` times): a clock made of probes, for checks that another
/// container saw no probe meanwhile.
fn probes_pass(d: &Daemon, name: &str, n: usize) {
    let last = |d: &Daemon| {
        let log = d.inspect_json(name)["State"]["Health"]["Log"].clone();
        log.as_array()
            .and_then(|l| l.last())
            .map(|r| r["Start"].to_string())
            .unwrap_or_default()
    };
    let mut seen = last(d);
    for round in 0..n {
        let moved = wait_for(EXIT_DEADLINE, || {
            let now = last(d);
            let moved = now != seen;
            seen = now;
            moved
        });
        assert!(moved, "{name}: no probe ran (round {round})");
    }
}

/// The `health_status` actions of container `id` so far, through `docker events`.
fn health_events(d: &Daemon, id: &str) -> Vec<String> {
    let until = (chrono::Utc::now().timestamp() + 1).to_string();
    let out = d.docker_ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "event=health_status",
        "--filter",
        &format!("container={id}"),
        "--format",
        "{{.Action}}",
    ]);
    out.lines().map(String::from).collect()
}

/// The `Status` column of `docker ps` for `name`, with the list's `health` filter.
fn ps_status(d: &Daemon, name: &str, health: &str) -> String {
    d.docker_ok(&[
        "ps",
        "--filter",
        &format!("name={name}"),
        "--filter",
        &format!("health={health}"),
        "--format",
        "{{.Status}}",
    ])
    .trim()
    .to_string()
}

#[test]
fn a_shell_check_on_a_file_goes_unhealthy_then_healthy() {
    let Some(d) = daemon() else { return };
    let id = d
        .docker_ok(&[
            "run",
            "-d",
            "--name",
            "hc",
            "--health-cmd",
            "test -f /tmp/ok",
            "--health-interval",
            "1s",
            "--health-retries",
            "2",
            "--health-timeout",
            "1s",
            "bb",
            "sleep",
            "300",
        ])
        .trim()
        .to_string();
    let state = &d.inspect_json("hc")["State"];
    assert!(
        matches!(
            state["Health"]["Status"].as_str(),
            Some("starting" | "unhealthy")
        ),
        "{state}"
    );
    wait_health(&d, "hc", "unhealthy");
    let status = ps_status(&d, "hc", "unhealthy");
    assert!(
        status.starts_with("Up ") && status.ends_with(" (unhealthy)"),
        "{status}"
    );
    assert_eq!(
        ps_status(&d, "hc", "healthy"),
        "",
        "the filter leaves it out"
    );
    let state = d.inspect_json("hc")["State"].clone();
    assert!(
        state["Health"]["FailingStreak"].as_i64() >= Some(2),
        "{state}"
    );
    let log = state["Health"]["Log"].as_array().expect("Log").clone();
    assert!(!log.is_empty() && log.len() <= 5, "{state}");
    assert_eq!(log[log.len() - 1]["ExitCode"], 1, "{state}");
    assert!(is_docker_time(log[0]["Start"].as_str().unwrap_or_default()));

    d.docker_ok(&["exec", "hc", "busybox", "touch", "/tmp/ok"]);
    wait_health(&d, "hc", "healthy");
    let status = ps_status(&d, "hc", "healthy");
    assert!(
        status.starts_with("Up ") && status.ends_with(" (healthy)"),
        "{status}"
    );
    let inspect = d.inspect_json("hc");
    assert_eq!(inspect["State"]["Health"]["FailingStreak"], 0);
    assert_eq!(
        inspect["Config"]["Healthcheck"],
        json!({"Test": ["CMD-SHELL", "test -f /tmp/ok"], "Interval": 1_000_000_000_i64,
               "Timeout": 1_000_000_000_i64, "Retries": 2}),
        "shown back as given"
    );
    let events = health_events(&d, &id);
    assert_eq!(
        events,
        ["health_status: unhealthy", "health_status: healthy"],
        "one event per change"
    );

    // Paused: no probe runs (one would time out and be logged), then they go on.
    let log_now = |d: &Daemon| d.inspect_json("hc")["State"]["Health"]["Log"].clone();
    let witness = [
        "run",
        "-d",
        "--name",
        "witness",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        "bb",
        "sleep",
        "300",
    ];
    d.docker_ok(&witness);
    d.docker_ok(&["pause", "hc"]);
    let before = log_now(&d);
    // Two probe intervals of the witness (the same 1 s interval) pass.
    probes_pass(&d, "witness", 2);
    assert_eq!(log_now(&d), before, "a paused container is probed");
    d.docker_ok(&["rm", "-f", "witness"]);
    d.docker_ok(&["unpause", "hc"]);
    assert!(wait_for(EXIT_DEADLINE, || log_now(&d) != before));

    // Stopped: the last health is kept, as Docker shows it, and no probe runs.
    d.docker_ok(&["stop", "-t", "1", "hc"]);
    let state = d.inspect_json("hc")["State"].clone();
    assert_eq!(state["Health"]["Status"], "healthy", "{state}");
    let status = d.docker_ok(&["ps", "-a", "--filter", "name=hc", "--format", "{{.Status}}"]);
    assert!(status.trim().starts_with("Exited"), "{status}");
    d.docker_ok(&["rm", "hc"]);
}

#[test]
fn an_imported_healthcheck_is_probed_and_none_disables_it() {
    let Some(d) = daemon() else { return };
    let tar = d.root().with_file_name("hc.tar");
    std::fs::write(&tar, common::runc::busybox_tar()).expect("write busybox tar");
    let change = "HEALTHCHECK --interval=1s --retries=1 CMD test -f /tmp/ok || exit 3";
    d.docker_ok(&["import", "-c", change, tar.to_str().expect("utf-8"), "hc:1"]);
    let config = d.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Healthcheck}}",
        "hc:1",
    ]);
    let config: Value = serde_json::from_str(&config).expect("Healthcheck JSON");
    assert_eq!(
        config,
        json!({"Test": ["CMD-SHELL", "test -f /tmp/ok || exit 3"],
               "Interval": 1_000_000_000_i64, "Retries": 1})
    );
    // The image's check, with the create's timeout merged over it.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "img",
        "--health-timeout",
        "9s",
        "hc:1",
        "sleep",
        "300",
    ]);
    let inspect = d.inspect_json("img");
    assert_eq!(
        inspect["Config"]["Healthcheck"],
        json!({"Test": ["CMD-SHELL", "test -f /tmp/ok || exit 3"],
               "Interval": 1_000_000_000_i64, "Timeout": 9_000_000_000_i64, "Retries": 1})
    );
    wait_health(&d, "img", "unhealthy");
    let last = d.inspect_json("img")["State"]["Health"]["Log"][0].clone();
    assert_eq!(last["ExitCode"], 3, "{last}");

    // NONE: no health, no probe.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "off",
        "--no-healthcheck",
        "hc:1",
        "sleep",
        "300",
    ]);
    // Two probes of `img` (interval 1 s, as `off`'s would be) pass.
    probes_pass(&d, "img", 2);
    let inspect = d.inspect_json("off");
    assert_eq!(inspect["Config"]["Healthcheck"]["Test"], json!(["NONE"]));
    assert!(
        inspect["State"].get("Health").is_none(),
        "{}",
        inspect["State"]
    );
    let status = d.docker_ok(&["ps", "--filter", "name=off", "--format", "{{.Status}}"]);
    assert!(!status.contains('('), "{status}");
    let none = d.docker_ok(&["ps", "-q", "--no-trunc", "--filter", "health=none"]);
    assert_eq!(none.trim(), inspect["Id"].as_str().unwrap_or_default());
    d.docker_ok(&["rm", "-f", "img", "off"]);
}

#[test]
fn a_probe_past_its_timeout_is_a_failure() {
    let Some(d) = daemon() else { return };
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "echo begun; exec sleep 30",
        "--health-interval",
        "1s",
        "--health-timeout",
        "1s",
        "--health-retries",
        "1",
        "bb",
        "sleep",
        "300",
    ]);
    wait_health(&d, "slow", "unhealthy");
    let health = d.inspect_json("slow")["State"]["Health"].clone();
    let first = &health["Log"][0];
    assert_eq!(first["ExitCode"], -1, "{health}");
    assert_eq!(
        first["Output"], "Health check exceeded timeout (1s): begun\n",
        "{health}"
    );
    // Each probe's process was killed at its timeout: after three probes, only the one
    // running may be left (the container's own is `sleep 300`).
    let results = || {
        d.inspect_json("slow")["State"]["Health"]["Log"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert!(wait_for(EXIT_DEADLINE, || results() >= 3));
    let ps = d.docker_ok(&["exec", "slow", "busybox", "ps", "-o", "args"]);
    let probes = ps.lines().filter(|l| l.trim() == "sleep 30").count();
    assert!(probes <= 1, "probes pile up: {ps}");
    d.docker_ok(&["rm", "-f", "slow"]);
}

#[test]
fn the_health_survives_a_kill_9_of_the_daemon_and_probes_go_on() {
    let Some(mut d) = daemon() else { return };
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "keep",
        "--health-cmd",
        "test -f /tmp/ok && seq 2000",
        "--health-interval",
        "1s",
        "--health-retries",
        "3",
        "bb",
        "sh",
        "-c",
        "busybox touch /tmp/ok; exec sleep 300",
    ]);
    wait_health(&d, "keep", "healthy");
    let before = d.inspect_json("keep")["State"].clone();
    // 8,893 bytes of output: the first 4 KiB are kept, marked as cut.
    let output = before["Health"]["Log"][0]["Output"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(output.len(), 4096 + 3, "{output}");
    assert!(
        output.starts_with("1\n2\n") && output.ends_with("..."),
        "{output}"
    );
    d.kill9();
    d.restart();
    let after = d.inspect_json("keep")["State"].clone();
    assert_eq!(after["Health"]["Status"], "healthy", "{after}");
    assert_eq!(after["Health"]["FailingStreak"], 0, "{after}");
    assert_eq!(
        (&after["Pid"], &after["StartedAt"]),
        (&before["Pid"], &before["StartedAt"]),
        "not restarted"
    );
    d.docker_ok(&["exec", "keep", "busybox", "rm", "/tmp/ok"]);
    let streak = || d.inspect_json("keep")["State"]["Health"]["FailingStreak"].clone();
    assert!(
        wait_for(EXIT_DEADLINE, || streak().as_i64() >= Some(1)),
        "the probes did not go on"
    );
    wait_health(&d, "keep", "unhealthy");
    d.docker_ok(&["rm", "-f", "keep"]);
}

#[test]
fn bad_healthcheck_values_are_refused_by_name() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let create = |check: Value| {
        let body = json!({"Image": "host", "Cmd": ["true"], "Healthcheck": check});
        d.http("POST", "/v1.44/containers/create", Some(&body.to_string()))
    };
    for (check, named) in [
        (json!({"Test": ["HTTP", "x"]}), "Healthcheck.Test"),
        (json!({"Test": ["CMD"]}), "Healthcheck.Test"),
        (
            json!({"Test": ["CMD", "true"], "Interval": -1}),
            "Healthcheck.Interval",
        ),
        (
            json!({"Test": ["CMD", "true"], "Timeout": -5}),
            "Healthcheck.Timeout",
        ),
        (
            json!({"Test": ["CMD", "true"], "StartPeriod": 10}),
            "Healthcheck.StartPeriod",
        ),
        (
            json!({"Test": ["CMD", "true"], "Retries": -1}),
            "Healthcheck.Retries",
        ),
    ] {
        let r = create(check.clone());
        assert_eq!(r.status, 400, "{check}: {}", r.body);
        assert!(r.body.contains(named), "{check}: {}", r.body);
    }
    let r = create(json!({"Test": ["CMD", "true"], "StartInterval": 2_000_000_000_i64}));
    assert_eq!(r.status, 201, "{}", r.body);
    let r = d.http(
        "GET",
        "/v1.44/containers/json?filters=%7B%22health%22%3A%5B%22ok%22%5D%7D",
        None,
    );
    assert_eq!(r.status, 400, "{}", r.body);
}
