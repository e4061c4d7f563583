//! Issue 7, `docker import -c`: an import's `changes` (Dockerfile lines) become the image's
//! config, shown by image inspect and used as the defaults of its containers; the docker CLI
//! and `moor image import --change` both send them; a refused line is a 400 with Docker's
//! text; the config survives a daemon restart (the store rebuild: tests/store_recovery.rs).

mod common;

use common::runc::{busybox_tar, skip_reason};
use common::*;

/// The changes both CLIs import with: `run IMAGE` then prints `1`.
const ENV: &str = "ENV A=1";
const CMD: &str = r#"CMD ["/bin/sh","-c","echo $A"]"#;

/// A daemon on runc with the busybox tar written next to its root, or None (reason printed).
fn daemon() -> Option<(Daemon, String)> {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return None;
    }
    let d = Daemon::start_with_runtime(LIVE_RESTORE_ON, "runc");
    let tar = d.root().with_file_name("bb.tar");
    std::fs::write(&tar, busybox_tar()).expect("write busybox tar");
    let tar = tar.to_str().expect("utf-8").to_string();
    Some((d, tar))
}

#[test]
fn docker_import_changes_are_the_image_defaults() {
    let Some((d, tar)) = daemon() else { return };
    let id = d.docker_ok(&["import", "-c", ENV, "-c", CMD, &tar, "ch:1"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(d.docker_ok(&["run", "--rm", "ch:1"]).trim(), "1");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "-e", "A=2", "ch:1"]).trim(),
        "2"
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "ch:1", "echo", "own"]).trim(),
        "own"
    );
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.Config.Cmd}}", "ch:1"])
            .trim(),
        "[/bin/sh -c echo $A]"
    );
    let config = d.docker_ok(&["image", "inspect", "-f", "{{json .Config}}", "ch:1"]);
    let config: serde_json::Value = serde_json::from_str(&config).expect("config JSON");
    let own = d.cli_ok(&["image", "inspect", "ch:1"]);
    let own: serde_json::Value = serde_json::from_str(&own).expect("a JSON array");
    for key in ["Cmd", "Env"] {
        assert_eq!(
            own[0]["Config"][key], config[key],
            "moor image inspect: {key}"
        );
    }
    assert_eq!(config["Env"], serde_json::json!(["A=1"]), "{config}");
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["/bin/sh", "-c", "echo $A"])
    );
    // API 1.44's shape: null or empty where unset (the CLI's own JSON leaves them out).
    let raw = d.http("GET", "/v1.44/images/ch:1/json", None).json();
    let raw = &raw["Config"];
    assert!(
        raw["Entrypoint"].is_null() && raw["Labels"].is_null(),
        "{raw}"
    );
    assert_eq!((&raw["WorkingDir"], &raw["User"]), (&"".into(), &"".into()));

    // The container's own Config shows the effective values.
    d.docker_ok(&["create", "--name", "merged", "-e", "B=2", "ch:1"]);
    let c = d.inspect_json("merged");
    assert_eq!(c["Config"]["Cmd"], config["Cmd"]);
    let env: Vec<&str> = c["Config"]["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(env.contains(&"A=1") && env.contains(&"B=2"), "{env:?}");

    // The same tarball without changes is another image, with no command.
    let plain = d.docker_ok(&["import", &tar, "plain"]);
    assert_ne!(plain.trim(), id.trim());
    let stderr = d.docker_fail(&["run", "--rm", "plain"]);
    assert!(stderr.contains("No command specified"), "{stderr}");
    let stderr = d.docker_fail(&["import", "-c", "RUN echo hi", &tar, "bad"]);
    assert!(
        stderr.contains(r#"run is not a valid change command (change "RUN echo hi")"#),
        "{stderr}"
    );
}

#[test]
fn moor_import_change_survives_a_restart() {
    let Some((mut d, tar)) = daemon() else { return };
    let out = d.cli_ok(&[
        "image",
        "import",
        "--change",
        ENV,
        "-c",
        CMD,
        "-c",
        "WORKDIR /tmp",
        "-c",
        "LABEL team=moor",
        &tar,
        "mc",
    ]);
    assert!(out.trim().starts_with("sha256:"), "{out}");
    let config = |d: &Daemon| {
        let r = d.http("GET", "/v1.44/images/mc/json", None);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["Config"].clone()
    };
    let before = config(&d);
    assert_eq!(before["WorkingDir"], "/tmp");
    assert_eq!(before["Labels"]["team"], "moor");
    assert_eq!(d.cli_ok(&["run", "--rm", "mc"]).trim(), "1");
    assert_eq!(
        d.cli_ok(&["run", "--rm", "mc", "sh", "-c", "pwd"]).trim(),
        "/tmp"
    );
    d.cli_ok(&["create", "--name", "labelled", "-l", "own=1", "mc"]);
    assert_eq!(
        d.inspect_field("labelled", "{{.Config.Labels.team}} {{.Config.Labels.own}}"),
        "moor 1"
    );

    d.stop_term();
    d.restart();
    assert_eq!(config(&d), before);
    assert_eq!(d.cli_ok(&["run", "--rm", "mc"]).trim(), "1");
}

#[test]
fn a_refused_change_is_a_400_naming_the_line() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let r = d.http(
        "POST",
        "/v1.44/images/create?fromSrc=-&repo=x&changes=ENV%20A%3D1&changes=RUN%20echo%20hi",
        None,
    );
    assert_eq!(
        (r.status, r.message()),
        (
            400,
            r#"run is not a valid change command (change "RUN echo hi")"#.to_string()
        )
    );
    let r = d.http("POST", "/images/create?fromSrc=-&changes=ENV%20A", None);
    assert_eq!(
        (r.status, r.message()),
        (
            400,
            r#"ENV must have two arguments (change "ENV A")"#.to_string()
        )
    );
    let tar = d.root().with_file_name("empty.tar");
    std::fs::write(
        &tar,
        tar::Builder::new(Vec::new()).into_inner().expect("tar"),
    )
    .expect("tar");
    let out = d.cli_fail(&[
        "image",
        "import",
        "-c",
        "COPY a b",
        tar.to_str().expect("utf-8"),
        "x",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"copy is not a valid change command (change "COPY a b")"#),
        "{stderr}"
    );
    let images = d.http("GET", "/images/json", None).json();
    assert_eq!(images, serde_json::json!([]), "nothing was imported");
}
