//! Pulling from a real registry (Debian's docker-registry on loopback, images built here as OCI
//! layouts and copied in with skopeo) into a real daemon on runc: by tag and by digest, run
//! with the image's config, whiteouts and opaque dirs, layers shared on disk, zstd layers,
//! Docker schema 2, a platform picked from an index, a corrupted blob, an unknown image, and
//! the docker CLI's pull.

mod common;

use std::path::Path;

use common::registry::{
    base_layer, build_image, sha256, skip_reason as registry_skip, tar_of, two_layer_image,
    write_index, write_multi_platform, Compress, Layer, Registry,
};
use common::runc::skip_reason as runc_skip;
use common::Daemon;
use serde_json::json;

/// A registry and a runc daemon, or None (reason printed) when asked to skip.
fn setup() -> Option<(Registry, Daemon)> {
    if let Some(reason) = runc_skip().or_else(registry_skip) {
        eprintln!("skipped: {reason}");
        return None;
    }
    let reg = Registry::start();
    let d = Daemon::start_with_runtime("{}", "runc");
    Some((reg, d))
}

/// The layer directories under the daemon's images dir.
fn layer_dirs(d: &Daemon) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(d.root().join("images/layers"))
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn tmp_is_empty(d: &Daemon) -> bool {
    std::fs::read_dir(d.root().join("images/tmp"))
        .map(|mut r| r.next().is_none())
        .unwrap_or(true)
}

#[test]
fn a_pulled_image_runs_with_its_layers_and_config() {
    let Some((reg, d)) = setup() else { return };
    let (layout, built) = two_layer_image(&d.root().with_file_name("oci"), "v1");
    reg.push(&layout, "v1", "app", &[]);
    let name = format!("{}/app:v1", reg.host());
    let out = d.cli_ok(&["pull", &name]);
    assert!(out.contains("v1: Pulling from"), "{out}");
    assert!(out.contains(": Pull complete"), "{out}");
    assert!(out.contains("Digest: sha256:"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm", name.as_str()];
        all.extend_from_slice(args);
        d.cli_ok(&all)
    };
    assert_eq!(run(&["cat", "/etc/base.txt"]), "from layer 1\n");
    assert_eq!(run(&[]), "from layer 2\n", "the config's Cmd");
    let etc = run(&["ls", "-a", "/etc"]);
    assert!(
        !etc.contains("gone.txt") && !etc.contains(".wh."),
        "whited out: {etc}"
    );
    assert_eq!(
        run(&["ls", "-a", "/opq"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        [".", "..", "new.txt"]
    );
    assert_eq!(
        run(&["sh", "-c", "echo $GREETING; pwd"]),
        "from-config\n/opq\n",
        "Env and WorkingDir from the config"
    );
    // Each layer once, under its diff id, and the image record lists them.
    let dirs = layer_dirs(&d);
    let mut want: Vec<String> = built.diff_ids.iter().map(|x| x[7..].to_string()).collect();
    want.sort();
    assert_eq!(dirs, want);
    let inspect = d.http("GET", &format!("/images/{name}/json"), None).json();
    assert_eq!(
        inspect["Id"],
        format!("sha256:{}", &built.config_digest[7..])
    );
    assert_eq!(inspect["Config"]["WorkingDir"], "/opq");
    assert_eq!(inspect["Config"]["Labels"]["org.example.test"], "pull");
    let digests = inspect["RepoDigests"].to_string();
    assert!(digests.contains(&built.manifest_digest), "{digests}");
    let again = d.cli_ok(&["pull", &name]);
    assert!(
        again.contains(&format!("Status: Image is up to date for {name}"))
            && again.contains("Already exists"),
        "{again}"
    );
    assert!(tmp_is_empty(&d));
}

#[test]
fn by_digest_shared_base_zstd_and_schema2() {
    let Some((reg, d)) = setup() else { return };
    let oci = d.root().with_file_name("oci");
    let (layout, built) = two_layer_image(&oci, "v1");
    // As Docker schema 2 (skopeo converts the manifest).
    let pushed = reg.push(&layout, "v1", "app", &["--format", "v2s2"]);
    // A second image on the same base layer, its own layer zstd-compressed (OCI only).
    let layout2 = oci.join("layout-two");
    std::fs::create_dir_all(&layout2).expect("layout");
    let layers = [
        Layer {
            tar: base_layer(),
            compress: Compress::Gzip,
        },
        Layer {
            tar: tar_of(&[("etc/", ""), ("etc/two.txt", "zstd layer\n")]),
            compress: Compress::Zstd,
        },
    ];
    let two = build_image(
        &layout2,
        &layers,
        json!({"Cmd": ["cat", "/etc/two.txt"]}),
        ("linux", "amd64"),
    );
    write_index(&layout2, "v2", &two.manifest_digest);
    reg.push(&layout2, "v2", "two", &[]);
    assert_eq!(
        two.diff_ids[0], built.diff_ids[0],
        "the base layer is shared"
    );

    let by_digest = format!("{}/app@{pushed}", reg.host());
    let out = d.cli_ok(&["pull", &by_digest]);
    assert!(out.contains(&format!("Digest: {pushed}")), "{out}");
    assert_eq!(
        d.cli_ok(&["run", "--rm", &by_digest, "cat", "/etc/base.txt"]),
        "from layer 1\n"
    );
    let out = d.cli_ok(&["pull", &format!("{}/two:v2", reg.host())]);
    assert!(
        out.contains("Already exists"),
        "the base layer is not fetched again: {out}"
    );
    assert_eq!(
        d.cli_ok(&["run", "--rm", &format!("{}/two:v2", reg.host())]),
        "zstd layer\n"
    );
    assert_eq!(
        layer_dirs(&d).len(),
        3,
        "base stored once: {:?}",
        layer_dirs(&d)
    );
}

#[test]
fn a_platform_is_picked_from_an_index() {
    let Some((reg, d)) = setup() else { return };
    let layout = d.root().with_file_name("oci").join("multi");
    std::fs::create_dir_all(&layout).expect("layout");
    let image = |marker: &str, arch: &str| {
        let layers = [Layer {
            tar: common::runc::busybox_tar_with(&[("etc/arch", marker)]),
            compress: Compress::Gzip,
        }];
        build_image(
            &layout,
            &layers,
            json!({"Cmd": ["cat", "/etc/arch"]}),
            ("linux", arch),
        )
    };
    let amd = image("amd64\n", "amd64");
    let arm = image("arm64\n", "arm64");
    write_multi_platform(
        &layout,
        "multi",
        &[
            (&arm.manifest_digest, "linux", "arm64"),
            (&amd.manifest_digest, "linux", "amd64"),
        ],
    );
    let index_digest = reg.push(&layout, "multi", "multi", &["--all"]);
    let name = format!("{}/multi:multi", reg.host());
    let out = d.cli_ok(&["pull", &name]);
    assert!(
        out.contains(&format!("Digest: {index_digest}")),
        "the index digest: {out}"
    );
    assert_eq!(d.cli_ok(&["run", "--rm", &name]), "amd64\n");
    let arm_name = format!("{}/multi:multi", reg.host());
    d.cli_ok(&["pull", "--platform", "linux/arm64", &arm_name]);
    let id = d
        .http("GET", &format!("/images/{arm_name}/json"), None)
        .json()["Id"]
        .clone();
    assert_eq!(id, format!("sha256:{}", &arm.config_digest[7..]));
    let err = d.cli_fail(&["pull", "--platform", "linux/s390x", &name]);
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(
        stderr.contains("no matching manifest for linux/s390x"),
        "{stderr}"
    );
}

#[test]
fn a_corrupted_blob_fails_and_leaves_nothing() {
    let Some((reg, d)) = setup() else { return };
    let (layout, built) = two_layer_image(&d.root().with_file_name("oci"), "v1");
    reg.push(&layout, "v1", "bad", &[]);
    let top = &built.layer_digests[1];
    let blob = reg.blob_path(top);
    let len = std::fs::metadata(&blob).expect("blob").len() as usize;
    std::fs::write(&blob, vec![0x5au8; len]).expect("corrupt the blob");
    let name = format!("{}/bad:v1", reg.host());
    let out = d.cli_fail(&["pull", &name]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(top.as_str()),
        "the error names the digest: {stderr}"
    );
    assert!(
        !d.root()
            .join("images/layers")
            .join(&built.diff_ids[1][7..])
            .exists(),
        "no layer from the bad blob"
    );
    assert!(tmp_is_empty(&d), "nothing left in tmp");
    let list = d.http("GET", "/images/json", None).json();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
    assert!(!Path::new(&d.root().join("images").join(&built.config_digest[7..])).exists());
}

#[test]
fn unknown_images_are_404_and_docker_pulls() {
    let Some((reg, d)) = setup() else { return };
    let path = format!("/images/create?fromImage={}/nope&tag=x", reg.host());
    let r = d.http("POST", &path, None);
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("not found"), "{}", r.body);
    let (layout, built) = two_layer_image(&d.root().with_file_name("oci"), "v1");
    reg.push(&layout, "v1", "app", &[]);
    let name = format!("{}/app:v1", reg.host());
    let out = d.docker(&["pull", &name], None);
    let text = common::describe(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Pull complete") && text.contains("Digest: sha256:"),
        "{text}"
    );
    // Piped, the docker CLI prints the steps and drops the lines with a byte count.
    assert!(
        text.contains("Pulling fs layer") && text.contains("Download complete"),
        "{text}"
    );
    assert!(!text.contains("Downloading"), "{text}");
    assert!(
        text.contains(&format!("Downloaded newer image for {name}")),
        "{text}"
    );
    let images = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert!(
        images.contains(&format!("{name} {}", &built.config_digest[7..19])),
        "{images}"
    );
    let out = d.docker_ok(&["run", "--rm", &name, "cat", "/etc/base.txt"]);
    assert_eq!(out, "from layer 1\n");
    assert_eq!(sha256(b"abc").len(), 71);
}

#[test]
fn run_and_create_pull_a_missing_image() {
    let Some((reg, d)) = setup() else { return };
    let (layout, _) = two_layer_image(&d.root().with_file_name("oci"), "v1");
    reg.push(&layout, "v1", "app", &[]);
    let name = format!("{}/app:v1", reg.host());
    let out = d.cli_fail(&["create", "--pull", "never", &name]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("No such image: {name}")),
        "{stderr}"
    );
    // The default (missing): pulled first, its progress on stderr, the output the container's.
    let out = d.cli(&["run", "--rm", &name, "cat", "/etc/base.txt"]);
    let text = common::describe(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from layer 1\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("Unable to find image '{name}' locally"))
            && stderr.contains("Downloaded newer image"),
        "{stderr}"
    );
    let out = d.cli(&["create", "--pull", "always", &name]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}", common::describe(&out));
    assert!(stderr.contains("Image is up to date"), "{stderr}");
    // The docker CLI pulls on the 404 of its create by itself.
    let (layout, _) = two_layer_image(&d.root().with_file_name("oci2"), "v2");
    reg.push(&layout, "v2", "other", &[]);
    let other = format!("{}/other:v2", reg.host());
    let out = d.docker(&["run", "--rm", &other, "cat", "/etc/top.txt"], None);
    let text = common::describe(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from layer 2\n");
    assert!(text.contains("Unable to find image"), "{text}");
    let err = d.docker_fail(&["create", "--pull", "never", &format!("{}/x:y", reg.host())]);
    assert!(err.contains("No such image"), "{err}");
}

/// Pushes the two images of one base layer (`app:v1`, `two:v2`), pulls both; returns their
/// names and the diff ids of app's layers.
fn two_images(reg: &Registry, d: &Daemon) -> (String, String, Vec<String>) {
    let oci = d.root().with_file_name("oci");
    let (layout, built) = two_layer_image(&oci, "v1");
    reg.push(&layout, "v1", "app", &[]);
    let layout2 = oci.join("layout-two");
    std::fs::create_dir_all(&layout2).expect("layout");
    let layers = [
        Layer {
            tar: base_layer(),
            compress: Compress::Gzip,
        },
        Layer {
            tar: tar_of(&[("etc/", ""), ("etc/two.txt", "zstd layer\n")]),
            compress: Compress::Zstd,
        },
    ];
    let two = build_image(
        &layout2,
        &layers,
        json!({"Cmd": ["cat", "/etc/two.txt"]}),
        ("linux", "amd64"),
    );
    write_index(&layout2, "v2", &two.manifest_digest);
    reg.push(&layout2, "v2", "two", &[]);
    let (app, two) = (
        format!("{}/app:v1", reg.host()),
        format!("{}/two:v2", reg.host()),
    );
    d.cli_ok(&["pull", &app]);
    d.cli_ok(&["pull", &two]);
    assert_eq!(layer_dirs(d).len(), 3);
    (app, two, built.diff_ids)
}

#[test]
fn rmi_removes_the_layers_no_image_uses() {
    let Some((reg, d)) = setup() else { return };
    let (app, two, diff_ids) = two_images(&reg, &d);
    let out = d.cli_ok(&["image", "rm", &app]);
    assert!(out.contains(&format!("Deleted: {}", diff_ids[1])), "{out}");
    assert!(!out.contains(&diff_ids[0]), "the shared base stays: {out}");
    let dirs = layer_dirs(&d);
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    assert!(dirs.contains(&diff_ids[0][7..].to_string()), "{dirs:?}");
    assert_eq!(d.cli_ok(&["run", "--rm", &two]), "zstd layer\n");
    // A container's image stays, and so do its layers.
    d.cli_ok(&["create", "--name", "user", &two]);
    let out = d.cli_fail(&["image", "rm", &two]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("being used by container"));
    assert_eq!(layer_dirs(&d).len(), 2);
    d.cli_ok(&["rm", "user"]);
    d.cli_ok(&["image", "rm", &two]);
    assert!(layer_dirs(&d).is_empty(), "{:?}", layer_dirs(&d));
    assert!(tmp_is_empty(&d));
    // Pulled again from nothing: the layers come back.
    d.cli_ok(&["pull", &app]);
    assert_eq!(d.cli_ok(&["run", "--rm", &app]), "from layer 2\n");
}

#[test]
fn prune_removes_dangling_then_unused_images() {
    let Some((reg, d)) = setup() else { return };
    let (app, two, diff_ids) = two_images(&reg, &d);
    // app:v1 moves to another image: the first one is dangling.
    let oci = d.root().with_file_name("oci-new");
    let layout = oci.join("layout");
    std::fs::create_dir_all(&layout).expect("layout");
    let layers = [Layer {
        tar: base_layer(),
        compress: Compress::Gzip,
    }];
    let newer = build_image(
        &layout,
        &layers,
        json!({"Cmd": ["true"]}),
        ("linux", "amd64"),
    );
    write_index(&layout, "v1", &newer.manifest_digest);
    reg.push(&layout, "v1", "app", &[]);
    d.cli_ok(&["pull", &app]);
    let r = d.http("POST", "/v1.44/images/prune", None);
    assert_eq!(r.status, 200, "{}", r.body);
    let report = r.json();
    let deleted = report["ImagesDeleted"].to_string();
    assert!(
        deleted.contains(&diff_ids[1]),
        "the old top layer: {deleted}"
    );
    assert!(
        !deleted.contains(&diff_ids[0]),
        "the base is used: {deleted}"
    );
    assert!(
        report["SpaceReclaimed"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    assert_eq!(layer_dirs(&d).len(), 2);
    let r = d.http(
        "POST",
        "/v1.44/images/prune?filters=%7B%22until%22%3A%5B%221h%22%5D%7D",
        None,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("until"), "{}", r.body);
    // -a: every image no container uses; two:v2 has a container.
    d.cli_ok(&["create", "--name", "user", &two]);
    let out = d.docker_ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains(&format!("untagged: {app}")), "{out}");
    assert!(out.contains("Total reclaimed space"), "{out}");
    let list = d.http("GET", "/images/json", None).json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(layer_dirs(&d).len(), 2, "two:v2's layers stay");
    d.cli_ok(&["rm", "user"]);
    let out = d.cli_ok(&["image", "prune", "--all"]);
    assert!(out.contains(&format!("untagged: {two}")), "{out}");
    assert!(layer_dirs(&d).is_empty() && tmp_is_empty(&d));
}

/// Runs `program ARGS` on a pseudo-terminal of 120 columns (util-linux `script`), as from a
/// person's shell, with this daemon as `DOCKER_HOST`: what the terminal was sent.
fn on_terminal(d: &Daemon, program: &str, args: &[&str]) -> String {
    let mut line = format!("stty cols 120 rows 40; exec {program}");
    for arg in args {
        line.push_str(&format!(" '{arg}'"));
    }
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-q", "-e", "-c", &line, "/dev/null"])
        .env("DOCKER_HOST", d.docker_host())
        .env("DOCKER_CONFIG", d.root().with_file_name("docker-config"))
        .env("DOCKER_CLI_HINTS", "false")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION")
        .env_remove("MOOR_HOST");
    let out = common::run_client(cmd, "script", args, None);
    assert!(out.status.success(), "{}", common::describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn pull_progress_on_a_terminal_per_layer() {
    let Some((reg, d)) = setup() else { return };
    let (layout, built) = two_layer_image(&d.root().with_file_name("oci"), "v1");
    reg.push(&layout, "v1", "app", &[]);
    let name = format!("{}/app:v1", reg.host());
    // The docker CLI draws its usual lines from moor's JSON progress stream.
    let shown = on_terminal(&d, "docker", &["pull", &name]);
    let base = &built.layer_digests[0][7..19];
    for want in [
        "v1: Pulling from app".to_string(),
        format!("{base}: Pulling fs layer"),
        format!("{base}: Downloading"),
        format!("{base}: Download complete"),
        format!("{base}: Extracting"),
        format!("{base}: Pull complete"),
        format!("Digest: {}", built.manifest_digest),
        format!("Status: Downloaded newer image for {name}"),
    ] {
        assert!(shown.contains(&want), "{want:?} in {shown}");
    }
    d.cli_ok(&["image", "rm", &name]);
    // moor pull: a bar per layer with its size and rate.
    let moor = env!("CARGO_BIN_EXE_moor");
    let host = d.docker_host();
    let shown = on_terminal(&d, moor, &["--host", &host, "pull", &name]);
    for want in [
        format!("{base}: Downloading"),
        "MiB/s".to_string(),
        format!("{base}: Pull complete"),
    ] {
        assert!(shown.contains(&want), "{want:?} in {shown:?}");
    }
    assert!(
        !shown.contains("0 B/0 B"),
        "no bar before a size: {shown:?}"
    );
    let last_bar = shown.rfind("Pull complete").expect("a bar");
    let digest = shown.rfind("Digest: sha256:").expect("the digest");
    let status = shown
        .rfind("Status: Downloaded newer image")
        .expect("the status");
    assert!(
        last_bar < digest && digest < status,
        "the digest and status below the bars: {shown:?}"
    );
}
