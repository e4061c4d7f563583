//! Issue 7: the real docker CLI drives moor unmodified (`DOCKER_HOST=unix://<socket>`),
//! with the process runtime's built-in image `host`. Error texts are asserted twice: as the
//! CLI prints them and, with their status codes, on the raw API.

mod common;

use common::*;

/// `docker ps -a --format '{{.Names}} {{.Status}}'` as lines.
fn ps_lines(d: &Daemon) -> Vec<String> {
    d.docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"])
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn version_and_info() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let v = d.docker_ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}",
    ]);
    assert_eq!(v.trim(), "1.44 1.24 linux");
    let info = d.docker_ok(&["info"]);
    for line in [
        "Logging Driver: json-file",
        "Default Runtime: process",
        "Live Restore Enabled: true",
        "OSType: linux",
    ] {
        assert!(info.contains(line), "`docker info` lacks {line:?}:\n{info}");
    }
    // The docker CLI prints the runtimes in Go's map order: check the set, not the order.
    let runtimes = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("Runtimes: "))
        .unwrap_or_else(|| panic!("`docker info` has no Runtimes line:\n{info}"));
    assert!(
        runtimes.split_whitespace().any(|r| r == "process"),
        "{runtimes}"
    );
    let fields = d.docker_ok(&[
        "info",
        "--format",
        "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}} {{.NCPU}} {{.CgroupVersion}}",
    ]);
    assert!(fields.starts_with("0 0 0 0 "), "{fields}");
    for path in ["/_ping", "/v1.24/_ping", "/v1.44/_ping"] {
        let r = d.http("GET", path, None);
        assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{path}");
    }
}

/// Status and exact message of a raw API call.
fn api_error(d: &Daemon, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let r = d.http(method, path, body);
    (r.status, r.message())
}

#[test]
fn errors_are_dockers() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let stderr = d.docker_fail(&["logs", "nope"]);
    assert!(
        stderr.contains("Error response from daemon: No such container: nope"),
        "{stderr}"
    );
    assert_eq!(
        api_error(&d, "GET", "/v1.44/containers/nope/json", None),
        (404, "No such container: nope".into())
    );
    // A pull from a registry that is not there (a closed loopback port) names the reference.
    let out = d.docker(&["pull", "127.0.0.1:1/nothing"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Error response from daemon: pull 127.0.0.1:1/nothing:latest"),
        "{}",
        describe(&out)
    );
    let (status, message) = api_error(
        &d,
        "POST",
        "/v1.44/images/create?fromImage=127.0.0.1:1/nothing&tag=latest",
        None,
    );
    assert_eq!(status, 500, "{message}");
    assert!(
        message.starts_with("pull 127.0.0.1:1/nothing:latest"),
        "{message}"
    );
    let create = |body: &str| api_error(&d, "POST", "/v1.44/containers/create", Some(body));
    assert_eq!(
        create(r#"{"Image":"busybox","Cmd":["true"]}"#),
        (404, "No such image: busybox".into())
    );
    assert_eq!(
        create(r#"{"Image":"host"}"#),
        (400, "No command specified".into())
    );

    let id = d.docker_ok(&["run", "-d", "--name", "web", "host", "sleep", "1000"]);
    let id = id.trim();
    let conflict = format!(
        "Conflict. The container name \"/web\" is already in use by container \"{id}\". \
         You have to remove (or rename) that container to be able to reuse that name."
    );
    let stderr = d.docker_fail(&["run", "-d", "--name", "web", "host", "true"]);
    assert!(stderr.contains(&conflict), "{stderr}");
    assert_eq!(
        api_error(
            &d,
            "POST",
            "/v1.44/containers/create?name=web",
            Some(r#"{"Image":"host","Cmd":["true"]}"#)
        ),
        (409, conflict)
    );
    let running = "cannot remove container \"/web\": container is running: stop the container \
                   before removing or force remove";
    let stderr = d.docker_fail(&["rm", "web"]);
    assert!(stderr.contains(running), "{stderr}");
    assert_eq!(
        api_error(&d, "DELETE", "/v1.44/containers/web", None),
        (409, running.into())
    );
    let stderr = d.docker_fail(&["kill", "-s", "NOPE", "web"]);
    assert!(stderr.contains("Invalid signal: NOPE"), "{stderr}");
    assert_eq!(
        api_error(&d, "POST", "/v1.44/containers/web/kill?signal=NOPE", None),
        (400, "Invalid signal: NOPE".into())
    );
    d.docker_ok(&["rm", "-f", "-v", "web"]);
}

#[test]
fn detached_lifecycle() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    d.docker_ok(&["run", "-d", "--name", "web", "host", "sleep", "1000"]);
    d.docker_ok(&["run", "-d", "--name", "usr1", "host", "sleep", "1000"]);
    let ps = d.docker_ok(&["ps"]);
    assert!(ps.contains("web") && ps.contains("\"sleep 1000\""), "{ps}");
    let lines = ps_lines(&d);
    assert!(lines.iter().any(|l| l.starts_with("web Up ")), "{lines:?}");
    let started = d.docker_ok(&["inspect", "-f", "{{ .State.StartedAt }}", "web"]);
    assert!(is_docker_time(started.trim()), "{started}");

    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "talk",
        "host",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    assert_eq!(d.docker_ok(&["wait", "talk"]).trim(), "0");
    let logs = d.docker(&["logs", "talk"], None);
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&logs.stderr), "err\n");

    d.docker_ok(&["stop", "-t", "5", "web"]);
    d.docker_ok(&["kill", "-s", "USR1", "usr1"]);
    assert_eq!(d.docker_ok(&["wait", "usr1"]).trim(), "138");
    assert_eq!(d.docker_ok(&["wait", "web"]).trim(), "143");
    let lines = ps_lines(&d);
    assert!(
        lines.iter().any(|l| l.starts_with("web Exited (143) ")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("usr1 Exited (138) ")),
        "{lines:?}"
    );
    d.docker_ok(&["rm", "web", "usr1", "talk"]);
    assert!(ps_lines(&d).is_empty());
}

#[test]
fn attached_run_passes_output_exit_code_and_stdin() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let out = d.docker(&["run", "--rm", "host", "echo", "hi"], None);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    let out = d.docker(
        &["run", "--rm", "host", "sh", "-c", "echo oops >&2; exit 3"],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    let out = d.docker(
        &["run", "--rm", "-i", "host", "cat"],
        Some(b"hello\nworld\n"),
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\nworld\n");
    // --rm: the daemon removed every one of them itself.
    assert!(ps_lines(&d).is_empty(), "{:?}", ps_lines(&d));
}

#[test]
fn top_and_prune() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "tree",
        "host",
        "sh",
        "-c",
        "sleep 1001 & sleep 1002",
    ]);
    let top = d.docker_ok(&["top", "tree"]);
    assert!(
        top.contains("sleep 1001") && top.contains("sleep 1002"),
        "{top}"
    );
    // The PID column of the sleeps: they must end with the container.
    let sleeps: Vec<i32> = top
        .lines()
        .filter(|l| l.split_whitespace().nth(7) == Some("sleep"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    assert_eq!(sleeps.len(), 2, "{top}");
    for &pid in &sleeps {
        if let Some(start_time) = proc_start_time(pid) {
            d.track(pid, start_time);
        }
    }
    d.docker_ok(&["run", "--name", "done", "host", "true"]);
    let pruned = d.docker_ok(&["container", "prune", "-f"]);
    let lines = ps_lines(&d);
    assert!(
        lines.len() == 1 && lines[0].starts_with("tree Up"),
        "{pruned}\n{lines:?}"
    );
    d.docker_ok(&["rm", "-f", "tree"]);
    // The container's background process went with it, as in a pid namespace.
    assert!(
        wait_for(EXIT_DEADLINE, || sleeps.iter().all(|&p| !pid_alive(p))),
        "left running: {sleeps:?}"
    );
}

/// Unix seconds now, for `--since`/`--until`.
fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `docker events --since --until` as `ACTION NAME` lines.
fn events(d: &Daemon, since: i64, until: i64, filter: &[&str]) -> Vec<String> {
    let (since, until) = (since.to_string(), until.to_string());
    let mut args = vec!["events", "--since", &since, "--until", &until];
    args.extend_from_slice(filter);
    args.extend_from_slice(&["--format", "{{.Action}} {{.Actor.Attributes.name}}"]);
    d.docker_ok(&args).lines().map(String::from).collect()
}

#[test]
fn events_since_until() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let t0 = unix_now() - 1;
    d.docker_ok(&["run", "--rm", "--name", "brief", "host", "true"]);
    d.docker_ok(&["run", "-d", "--name", "long", "host", "sleep", "1000"]);
    d.docker_ok(&["rename", "long", "longer"]);
    d.docker_ok(&["kill", "longer"]);
    d.docker_ok(&["wait", "longer"]);
    let t1 = unix_now() + 1;
    let got = events(&d, t0, t1, &[]);
    let want = [
        "create brief",
        "start brief",
        "die brief",
        "destroy brief",
        "create long",
        "start long",
        "rename longer",
        "kill longer",
        "die longer",
    ];
    assert_eq!(got, want);
    let dies = events(&d, t0, t1, &["--filter", "event=die"]);
    assert_eq!(dies, ["die brief", "die longer"]);
    assert!(events(&d, t0 - 100, t0 - 50, &[]).is_empty());
    d.docker_ok(&["rm", "longer"]);
}

#[test]
fn started_at_survives_a_daemon_restart() {
    let mut d = Daemon::start(LIVE_RESTORE_ON);
    d.docker_ok(&["run", "-d", "--name", "seed", "host", "sleep", "1000"]);
    let before = d.docker_ok(&[
        "inspect",
        "-f",
        "{{ .State.StartedAt }} {{ .State.Pid }}",
        "seed",
    ]);
    let t0 = unix_now() - 1;
    d.stop_term();
    d.restart();
    assert_eq!(
        events(&d, t0, unix_now() + 1, &["--filter", "event=restore"]),
        ["restore seed"]
    );
    let after = d.docker_ok(&[
        "inspect",
        "-f",
        "{{ .State.StartedAt }} {{ .State.Pid }}",
        "seed",
    ]);
    assert_eq!(before, after);
    let lines = ps_lines(&d);
    assert!(lines.iter().any(|l| l.starts_with("seed Up ")), "{lines:?}");
    d.docker_ok(&["rm", "-f", "seed"]);
}

#[test]
fn import_and_run_an_image_with_runc() {
    if let Some(reason) = runc::skip_reason() {
        println!("skipped: {reason}");
        return;
    }
    let d = Daemon::start_with_runtime(LIVE_RESTORE_ON, "runc");
    let tar = runc::busybox_tar();
    let out = d.docker(&["import", "-", "bb:1"], Some(&tar));
    assert!(out.status.success(), "docker import: {}", describe(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        id.starts_with("sha256:"),
        "import prints the image id: {id:?}"
    );
    let images = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert!(images.contains(&format!("bb:1 {}", &id[7..19])), "{images}");
    let out = d.docker(&["run", "--rm", "bb:1", "echo", "hi"], None);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    let out = d.docker(&["run", "--rm", "bb:1", "sh", "-c", "exit 4"], None);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    d.docker_ok(&["rmi", "bb:1"]);
    assert!(d.docker_ok(&["images", "-q"]).trim().is_empty());
    assert!(
        runc::mounts_under(&d.root()).is_empty(),
        "--rm leaves no overlay mount"
    );
}

/// A tar of one file (`name` holding `text`): an image never run.
fn small_tar(name: &str, text: &str) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = runc::header();
    h.set_size(text.len() as u64);
    h.set_mode(0o644);
    tar.append_data(&mut h, name, text.as_bytes()).expect("tar");
    tar.into_inner().expect("tar")
}

#[test]
fn image_events_for_import_and_rmi() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let t0 = unix_now() - 1;
    let tar = small_tar("hello", "hi\n");
    let out = d.docker(
        &["import", "-c", "LABEL team=infra", "-", "ev:1"],
        Some(&tar),
    );
    assert!(out.status.success(), "docker import: {}", describe(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let out = d.docker(
        &["import", "-c", "LABEL team=infra", "-", "ev:2"],
        Some(&tar),
    );
    assert!(out.status.success(), "docker import: {}", describe(&out));
    d.docker_ok(&["rmi", "ev:1"]);
    d.docker_ok(&["rmi", "ev:2"]);
    let t1 = unix_now() + 1;
    let got = events(&d, t0, t1, &["--filter", "type=image"]);
    let want = [
        "tag ev:1".to_string(),
        format!("import {id}"),
        "tag ev:2".into(),
        format!("import {id}"),
        "untag ev:1".into(),
        "untag ev:2".into(),
        format!("delete {id}"),
    ];
    assert_eq!(got, want);
    // The same events by image, with the image's labels as attributes.
    let (since, until) = (t0.to_string(), t1.to_string());
    let by_image = d.docker_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "image=ev:2",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}} {{index .Actor.Attributes \"team\"}}",
    ]);
    assert_eq!(
        by_image.lines().collect::<Vec<_>>(),
        [
            format!("image tag {id} infra"),
            format!("image untag {id} infra")
        ]
    );
    // Container filters do not pick image events.
    assert!(events(&d, t0, t1, &["--filter", "type=container"]).is_empty());
}

#[test]
fn docker_tag_moves_names_and_bad_names_are_refused() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let import = |name: &str, tar: &[u8]| {
        let out = d.docker(&["import", "-", name], Some(tar));
        assert!(out.status.success(), "docker import: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).trim()[7..19].to_string()
    };
    let one = import("one:1", &small_tar("a", "1"));
    let two = import("two:1", &small_tar("b", "2"));
    d.docker_ok(&["tag", "one:1", "team/one:v2"]);
    // A name another image holds moves, as in Docker: that image keeps its others.
    d.docker_ok(&["tag", &one, "two:1"]);
    let images = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let mut lines: Vec<&str> = images.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            format!("<none>:<none> {two}"),
            format!("one:1 {one}"),
            format!("team/one:v2 {one}"),
            format!("two:1 {one}"),
        ]
    );
    // moor's own CLI, and the names Docker refuses, with its texts.
    d.cli_ok(&["image", "tag", "team/one:v2", "localhost:5000/one"]);
    let listed = d.cli_ok(&["image", "ls"]);
    assert!(listed.contains("localhost:5000/one"), "{listed}");
    let refused = d.cli_fail(&["image", "tag", "one:1", "Bad"]);
    let refused = String::from_utf8_lossy(&refused.stderr);
    assert!(
        refused
            .contains("invalid reference format: repository name (library/Bad) must be lowercase"),
        "{refused}"
    );
    let r = d.http("POST", "/v1.44/images/one:1/tag?repo=a..b", None);
    assert_eq!(
        (r.status, r.body.contains("invalid reference format")),
        (400, true),
        "{}",
        r.body
    );
    let r = d.http("POST", "/v1.44/images/create?fromSrc=-&repo=Up&tag=1", None);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body
            .contains("repository name (library/Up) must be lowercase"),
        "{}",
        r.body
    );
    let r = d.http("POST", "/v1.44/images/nosuch/tag?repo=x", None);
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("No such image: nosuch"), "{}", r.body);
    // The names survive a restart (the store, and each image's metadata file).
    let mut d = d;
    d.stop_term();
    d.restart();
    let images = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        images.contains("team/one:v2") && images.contains("localhost:5000/one:latest"),
        "{images}"
    );
}
