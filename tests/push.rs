//! Pushing to a real registry (Debian's docker-registry on loopback) and pulling back into a
//! second moor root: a pulled two-layer image (its whiteouts and opaque dir must survive the
//! re-pack) and an imported tarball, with `moor push` and the docker CLI's push, then to a
//! registry with htpasswd auth after a login, and through a bearer-token realm; a push of
//! all tags (`docker push -a`), Docker schema 2 kept for an image pulled that way, and the
//! pushed digest as `docker pull` and the registry see it.

mod common;

use std::sync::atomic::Ordering;

use common::registry::{sha256, skip_reason as registry_skip, two_layer_image, Registry};
use common::runc::skip_reason as runc_skip;
use common::token_realm::TokenRealm;
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

/// The digest a push printed for `tag` (`TAG: digest: sha256:... size: N`).
fn pushed_digest(out: &str, tag: &str) -> String {
    out.split(&format!("{tag}: digest: "))
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest line for {tag}: {out}"))
        .to_string()
}

/// The manifest's `mediaType`.
fn media_type(raw: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(raw).expect("manifest json");
    v["mediaType"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_push_follows_a_bearer_token_realm() {
    let Some((a, b)) = daemons() else { return };
    let reg = Registry::start();
    let realm = TokenRealm::start(reg.port, "bob", "hunter2");
    let tar = common::runc::busybox_tar_with(&[("etc/token.txt", "through the realm\n")]);
    let file = a.root().with_file_name("rootfs.tar");
    std::fs::write(&file, tar).expect("tarball");
    let name = format!("{}/tok:1", realm.host());
    let file = file.to_str().expect("utf-8");
    a.cli_ok(&[
        "image",
        "import",
        "-c",
        "CMD cat /etc/token.txt",
        file,
        &name,
    ]);
    let denied = a.cli_fail(&["push", &name]);
    let text = common::describe(&denied);
    assert!(text.contains("push access denied"), "{text}");
    a.cli_ok(&["login", "-u", "bob", "-p", "hunter2", &realm.host()]);
    let before = realm.tokens.load(Ordering::SeqCst);
    let out = a.cli_ok(&["push", &name]);
    assert!(out.contains(": Pushed"), "{out}");
    let digest = pushed_digest(&out, "1");
    assert!(
        realm.tokens.load(Ordering::SeqCst) > before,
        "the push took a token"
    );
    // In the registry behind the realm, under the pushed digest.
    let raw = reg.raw_manifest(&reg.host(), "tok:1");
    assert_eq!(sha256(&raw), digest);
    b.cli_ok(&["login", "-u", "bob", "-p", "hunter2", &realm.host()]);
    let out = b.cli_ok(&["pull", &name]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert_eq!(run(&b, &name, &[]), "through the realm\n");
}

#[test]
fn all_tags_are_pushed_and_a_schema2_image_stays_schema2() {
    let Some((a, b)) = daemons() else { return };
    let reg = Registry::start();
    let (layout, _) = two_layer_image(&a.root().with_file_name("oci"), "v1");
    reg.push(&layout, "v1", "app", &["--format", "v2s2"]);
    let source = format!("{}/app:v1", reg.host());
    a.cli_ok(&["pull", &source]);
    let repo = format!("{}/all", reg.host());
    for tag in ["1", "2"] {
        a.cli_ok(&["image", "tag", &source, &format!("{repo}:{tag}")]);
    }
    let tar = common::runc::busybox_tar_with(&[("etc/three.txt", "three\n")]);
    let file = a.root().with_file_name("three.tar");
    std::fs::write(&file, tar).expect("tarball");
    let three = format!("{repo}:3");
    a.cli_ok(&["image", "import", file.to_str().expect("utf-8"), &three]);
    let missing = a.docker_fail(&["push", "-a", &format!("{}/none", reg.host())]);
    assert!(
        missing.contains("An image does not exist locally with the tag"),
        "{missing}"
    );

    // The docker CLI's `push -a` sends no tag: every tag of the repository goes.
    let out = a.docker_ok(&["push", "-a", &repo]);
    assert_eq!(
        out.matches("The push refers to repository").count(),
        1,
        "{out}"
    );
    let schema2 = "application/vnd.docker.distribution.manifest.v2+json";
    let oci = "application/vnd.oci.image.manifest.v1+json";
    for (tag, family) in [("1", schema2), ("2", schema2), ("3", oci)] {
        let digest = pushed_digest(&out, tag);
        let raw = reg.raw_manifest(&reg.host(), &format!("all:{tag}"));
        assert_eq!(
            sha256(&raw),
            digest,
            "tag {tag}: the registry has what moor pushed"
        );
        assert_eq!(media_type(&raw), family, "tag {tag}: the source's family");
        // `docker pull` into another root gets the digest moor recorded.
        let name = format!("{repo}:{tag}");
        let pulled = b.docker_ok(&["pull", &name]);
        assert!(pulled.contains(&format!("Digest: {digest}")), "{pulled}");
        let recorded = a.http("GET", &format!("/images/{name}/json"), None).json();
        let want = format!("{repo}@{digest}");
        assert!(
            recorded["RepoDigests"].to_string().contains(&want),
            "{recorded}"
        );
    }
    assert_eq!(run(&b, &format!("{repo}:1"), &[]), "from layer 2\n");
    assert_eq!(run(&b, &three, &["cat", "/etc/three.txt"]), "three\n");
    // moor's own `push -a`: the registry has every layer now.
    let again = a.cli_ok(&["push", "-a", &repo]);
    assert!(
        again.contains("3: digest:") && !again.contains(": Pushed"),
        "{again}"
    );
}
