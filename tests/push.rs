//! Pushing to a real registry (Debian's docker-registry on loopback) and pulling back into a
//! second moor root: a pulled two-layer image (its whiteouts and opaque dir must survive the
//! re-pack) and an imported tarball, with `moor push` and the docker CLI's push, then to a
//! registry with htpasswd auth after a login.

mod common;

use common::registry::{skip_reason as registry_skip, two_layer_image, Registry};
use common::runc::skip_reason as runc_skip;
use common::Daemon;

/// Two runc daemons on their own roots, or None (reason printed) when asked to skip.
fn daemons() -> Option<(Daemon, Daemon)> {
    if let Some(reason) = runc_skip().or_else(registry_skip) {
        eprintln!("skipped: {reason}");
        return None;
    }
    let a = Daemon::start_with_runtime("{}", "runc");
    let b = Daemon::start_with_runtime("{}", "runc");
    Some((a, b))
}

fn run(d: &Daemon, name: &str, args: &[&str]) -> String {
    let mut all = vec!["run", "--rm", name];
    all.extend_from_slice(args);
    d.cli_ok(&all)
}

#[test]
fn a_pushed_image_pulls_and_runs_in_another_root() {
    let Some((a, b)) = daemons() else { return };
    let reg = Registry::start();
    let (layout, _) = two_layer_image(&a.root().with_file_name("oci"), "v1");
    reg.push(&layout, "v1", "app", &[]);
    let source = format!("{}/app:v1", reg.host());
    a.cli_ok(&["pull", &source]);
    let pushed = format!("{}/copy:v2", reg.host());
    a.cli_ok(&["image", "tag", &source, &pushed]);
    let out = a.cli_ok(&["push", &pushed]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{}/copy]",
            reg.host()
        )),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    assert!(out.contains("v2: digest: sha256:"), "{out}");
    // The pushed manifest's digest is a RepoDigest of the image, as in Docker.
    let digest = out
        .split("v2: digest: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the digest line")
        .to_string();
    let copy_digest = format!("{}/copy@{digest}", reg.host());
    let inspect = a
        .http("GET", &format!("/images/{pushed}/json"), None)
        .json();
    let repo_digests = inspect["RepoDigests"].to_string();
    assert!(repo_digests.contains(&copy_digest), "{repo_digests}");
    let listed = a.docker_ok(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}} {{.Digest}}",
    ]);
    assert!(
        listed.contains(&format!("{}/copy {digest}", reg.host())),
        "{listed}"
    );
    // Pushed again: the registry has every layer.
    let again = a.cli_ok(&["push", &pushed]);
    assert!(
        again.contains("Layer already exists") && !again.contains(": Pushed"),
        "{again}"
    );

    let out = b.cli_ok(&["pull", &pushed]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(run(&b, &pushed, &[]), "from layer 2\n", "the config's Cmd");
    assert_eq!(
        run(&b, &pushed, &["cat", "/etc/base.txt"]),
        "from layer 1\n"
    );
    let etc = run(&b, &pushed, &["ls", "-a", "/etc"]);
    assert!(!etc.contains("gone.txt") && !etc.contains(".wh."), "{etc}");
    let opq = run(&b, &pushed, &["ls", "-a", "/opq"]);
    assert_eq!(
        opq.split_whitespace().collect::<Vec<_>>(),
        [".", "..", "new.txt"]
    );
    assert_eq!(
        run(&b, &pushed, &["sh", "-c", "echo $GREETING; pwd"]),
        "from-config\n/opq\n"
    );
    let inspect = b
        .http("GET", &format!("/images/{pushed}/json"), None)
        .json();
    assert_eq!(inspect["Config"]["Labels"]["org.example.test"], "pull");
    assert!(
        inspect["RepoDigests"].to_string().contains(&copy_digest),
        "the same digest pulled back: {inspect}"
    );
}

#[test]
fn the_docker_cli_pushes_an_imported_image_with_credentials() {
    let Some((a, b)) = daemons() else { return };
    let reg = Registry::start_htpasswd("alice", "s3cr3t");
    let tar = common::runc::busybox_tar_with(&[("etc/imported.txt", "imported\n")]);
    let file = a.root().with_file_name("rootfs.tar");
    std::fs::write(&file, tar).expect("tarball");
    let name = format!("{}/imported:1", reg.host());
    let file = file.to_str().expect("utf-8");
    a.cli_ok(&[
        "image",
        "import",
        "-c",
        "CMD cat /etc/imported.txt",
        file,
        &name,
    ]);
    let denied = a.docker(&["push", &name], None);
    assert!(!denied.status.success(), "{}", common::describe(&denied));
    assert!(
        common::describe(&denied).contains("push access denied"),
        "{}",
        common::describe(&denied)
    );
    let login = ["login", "-u", "alice", "--password-stdin", &reg.host()];
    let out = a.docker(&login, Some(b"s3cr3t\n"));
    assert!(out.status.success(), "{}", common::describe(&out));
    let out = a.docker(&["push", &name], None);
    let text = common::describe(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1: digest: sha256:"), "{text}");
    // The second root logs in with moor and pulls.
    b.cli_ok(&["login", "-u", "alice", "-p", "s3cr3t", &reg.host()]);
    b.cli_ok(&["pull", &name]);
    assert_eq!(run(&b, &name, &[]), "imported\n");
}
