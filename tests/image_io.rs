//! Issue 16 items 4 and 5: `docker commit`, `docker save` / `docker load`, `docker history`
//! and `docker system df` with the real docker CLI against moor on runc, and the moor CLI's
//! `commit`, `image save|load`, `history`, `system df`.

mod common;

use std::io::Read;
use std::path::Path;

use common::runc::skip_reason;
use common::*;
use sha2::{Digest, Sha256};

fn daemon() -> Option<Daemon> {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return None;
    }
    Some(Daemon::start_with_runtime(LIVE_RESTORE_ON, "runc"))
}

fn sha(data: &[u8]) -> String {
    let hex: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hex
}

/// The entries of a tar as (path, content).
fn entries(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(tar);
    let mut out = Vec::new();
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        let path = e.path().expect("path").display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read");
        out.push((path, data));
    }
    out
}

/// A container on busybox that wrote /new and deleted /etc/gone, committed as `name`.
fn commit_one(d: &Daemon, name: &str) -> String {
    let base = common::runc::busybox_tar_with(&[("etc/gone", "bye\n"), ("etc/kept", "k\n")]);
    let tar = d.root().with_file_name("base.tar");
    std::fs::write(&tar, base).expect("write tar");
    d.docker_ok(&["import", tar.to_str().expect("utf-8"), "base:1"]);
    d.docker_ok(&[
        "run",
        "--name",
        "src",
        "base:1",
        "/bin/sh",
        "-c",
        "echo hello > /new && rm /etc/gone",
    ]);
    let out = d.docker_ok(&["commit", "-c", "CMD [\"/bin/cat\", \"/new\"]", "src", name]);
    out.trim().to_string()
}

#[test]
fn docker_commit_keeps_a_written_file_and_not_a_deleted_one() {
    let Some(d) = daemon() else { return };
    let id = commit_one(&d, "committed:1");
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_eq!(d.docker_ok(&["run", "--rm", "committed:1"]), "hello\n");
    assert_eq!(
        events(&d, "commit"),
        vec![("container".to_string(), "src".to_string())]
    );
    let ls = d.docker_ok(&["run", "--rm", "committed:1", "/bin/ls", "/etc"]);
    assert!(ls.contains("kept") && !ls.contains("gone"), "{ls}");
    // The base image is untouched.
    let base = d.docker_ok(&["run", "--rm", "base:1", "/bin/cat", "/etc/gone"]);
    assert_eq!(base, "bye\n");
    // A commit of a running container pauses it and thaws it again.
    d.docker_ok(&["run", "-d", "--name", "live", "base:1", "/bin/sleep", "60"]);
    d.docker_ok(&["commit", "live", "live:1"]);
    let state = d.docker_ok(&["inspect", "-f", "{{.State.Status}}", "live"]);
    assert_eq!(state.trim(), "running");
    // Both commits got the same base layer from the flattened image: packed to the same bytes.
    let layers = |name: &str| -> Vec<String> {
        let id = d.docker_ok(&["image", "inspect", "-f", "{{.Id}}", name]);
        let dir = d.root().join("images").join(&id.trim()[7..]);
        let list = std::fs::read(dir.join("layers.json")).expect("layers.json");
        serde_json::from_slice(&list).expect("json")
    };
    let (first, second) = (layers("committed:1"), layers("live:1"));
    assert_eq!((first.len(), second.len()), (2, 2));
    assert_eq!(first[0], second[0], "one base layer");
    // Both in one archive: the shared base layer once; both load into another root.
    let both = d.root().with_file_name("both.tar");
    let path = both.to_str().expect("utf-8");
    d.docker_ok(&["save", "-o", path, "committed:1", "live:1"]);
    let files = entries(&std::fs::read(&both).expect("archive"));
    let base = format!("blobs/sha256/{}", &first[0][7..]);
    assert_eq!(files.iter().filter(|(p, _)| *p == base).count(), 1);
    let other = Daemon::start_with_runtime(LIVE_RESTORE_ON, "runc");
    let loaded = other.docker_ok(&["load", "-i", path]);
    assert_eq!(loaded, "Loaded image: committed:1\nLoaded image: live:1\n");
    assert_eq!(other.docker_ok(&["run", "--rm", "committed:1"]), "hello\n");
    let layer_count = std::fs::read_dir(other.root().join("images/layers")).expect("layers");
    assert_eq!(layer_count.count(), 3, "base, and one layer per commit");
    // An option moor does not implement is refused by name.
    let r = d.http("POST", "/commit?container=src&repo=x&bogus=1", None);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.message().contains("bogus"), "{}", r.message());
    d.docker_ok(&["rm", "-f", "live"]);
}

#[test]
fn docker_save_then_load_into_a_second_root_keeps_the_id() {
    let Some(d) = daemon() else { return };
    let id = commit_one(&d, "moved:1");
    let out = d.root().with_file_name("saved.tar");
    d.docker_ok(&["save", "-o", out.to_str().expect("utf-8"), "moved:1"]);
    let tar = std::fs::read(&out).expect("saved");
    let files = entries(&tar);
    let manifest = files
        .iter()
        .find(|(p, _)| p == "manifest.json")
        .expect("manifest.json");
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.1).expect("json");
    assert_eq!(manifest[0]["RepoTags"][0], "moved:1");
    let config = manifest[0]["Config"].as_str().expect("Config");
    let config = &files.iter().find(|(p, _)| p == config).expect("config").1;
    assert_eq!(
        format!("sha256:{}", sha(config)),
        id,
        "the config is the id"
    );
    assert!(files.iter().any(|(p, _)| p == "index.json"));
    assert!(files.iter().any(|(p, _)| p == "repositories"));
    // Every layer is as its diff id says.
    let cfg: serde_json::Value = serde_json::from_slice(config).expect("config json");
    let layers = manifest[0]["Layers"].as_array().expect("Layers");
    assert_eq!(layers.len(), 2, "base + the commit's layer");
    for (l, diff) in layers
        .iter()
        .zip(cfg["rootfs"]["diff_ids"].as_array().expect("diffs"))
    {
        let data = &files
            .iter()
            .find(|(p, _)| p == l.as_str().unwrap())
            .expect("layer")
            .1;
        assert_eq!(format!("sha256:{}", sha(data)), diff.as_str().unwrap());
    }
    let second = Daemon::start_with_runtime(LIVE_RESTORE_ON, "runc");
    let loaded = second.docker_ok(&["load", "-i", out.to_str().expect("utf-8")]);
    assert_eq!(loaded.trim(), "Loaded image: moved:1");
    let got = second.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "moved:1"]);
    assert_eq!(got.trim(), id);
    assert_eq!(second.docker_ok(&["run", "--rm", "moved:1"]), "hello\n");
    // Loaded again: the same image, its layers not unpacked twice.
    let layers_dir = second.root().join("images/layers");
    let before = std::fs::read_dir(&layers_dir).expect("layers").count();
    second.docker_ok(&["load", "-i", out.to_str().expect("utf-8")]);
    assert_eq!(
        std::fs::read_dir(&layers_dir).expect("layers").count(),
        before
    );
    // The OCI layout alone (index.json, blobs; no manifest.json), as docker 25+ also reads.
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files.iter().filter(|(p, _)| p != "manifest.json") {
        let mut h = common::runc::header();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, &data[..]).expect("append");
    }
    let oci = b.into_inner().expect("tar");
    second.docker_ok(&["rmi", "moved:1"]);
    let out = second.docker(&["load"], Some(&oci));
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Loaded image: moved:1"
    );
    let got = second.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "moved:1"]);
    assert_eq!(got.trim(), id);
    // The moor CLI: save to stdout, load from stdin, in a third root.
    let bytes = second.cli_input(&["image", "save", "moved:1"], None);
    assert!(bytes.status.success(), "{}", describe(&bytes));
    let third = Daemon::start_with_runtime(LIVE_RESTORE_ON, "runc");
    let l = third.cli_input(&["image", "load"], Some(&bytes.stdout));
    assert!(l.status.success(), "{}", describe(&l));
    assert_eq!(
        String::from_utf8_lossy(&l.stdout).trim(),
        "Loaded image: moved:1"
    );
    let got = third.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "moved:1"]);
    assert_eq!(got.trim(), id);
}

#[test]
fn a_commit_without_an_overlay_is_refused_by_name() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    d.docker_ok(&["create", "--name", "plain", "host", "/bin/true"]);
    let r = d.http("POST", "/commit?container=plain&repo=x", None);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.message().contains("process runtime"), "{}", r.message());
    let r = d.http("POST", "/commit?container=nosuch", None);
    assert_eq!(r.status, 404, "{}", r.body);
    let r = d.http("GET", "/images/get?names=nosuch", None);
    assert_eq!(r.status, 404, "{}", r.body);
    let r = d.http("GET", "/images/nosuch/history", None);
    assert_eq!(r.status, 404, "{}", r.body);
    let r = d.http("GET", "/system/df?type=bogus", None);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.message().contains("type=bogus"), "{}", r.message());
}

/// A docker-archive as the docker CLI writes one (`<hex>.json` config, `<dir>/layer.tar`).
fn hand_made_archive(layer: &[u8], cmd: &str) -> (Vec<u8>, String) {
    let diff = format!("sha256:{}", sha(layer));
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-05-01T10:00:00Z",
        "config": {"Cmd": ["/bin/sh", "-c", cmd]},
        "rootfs": {"type": "layers", "diff_ids": [diff]},
        "history": [{"created": "2024-05-01T10:00:00Z", "created_by": "ADD rootfs /"}],
    });
    let config = serde_json::to_vec(&config).expect("json");
    let config_hex = sha(&config);
    let manifest = serde_json::json!([{
        "Config": format!("{config_hex}.json"), "RepoTags": ["hand:made"],
        "Layers": ["0123abcd/layer.tar"],
    }]);
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in [
        (format!("{config_hex}.json"), config.clone()),
        ("0123abcd/layer.tar".to_string(), layer.to_vec()),
        (
            "manifest.json".to_string(),
            serde_json::to_vec(&manifest).expect("json"),
        ),
    ] {
        let mut h = common::runc::header();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, &data[..]).expect("append");
    }
    (b.into_inner().expect("tar"), config_hex)
}

#[test]
fn a_hand_made_archive_loads_and_a_truncated_one_leaves_nothing() {
    let Some(d) = daemon() else { return };
    let layer = common::runc::busybox_tar();
    let (archive, config_hex) = hand_made_archive(&layer, "echo from-archive");
    // Truncated: refused naming the entry, nothing left behind.
    let cut = &archive[..archive.len() / 2];
    let out = d.docker(&["load"], Some(cut));
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("invalid image archive"), "{err}");
    assert!(
        err.contains("layer.tar") && err.contains("at byte"),
        "entry, offset: {err}"
    );
    assert!(err.contains("ends inside this entry"), "{err}");
    assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");
    let tmp = d.root().join("images/tmp");
    let left = std::fs::read_dir(&tmp).map(|r| r.count()).unwrap_or(0);
    assert_eq!(left, 0, "nothing left in {}", tmp.display());
    assert!(!d.root().join("images/layers").exists() || dir_empty(&d.root().join("images/layers")));
    // A layer that is not what the config says: refused naming it.
    let (mut bad, _) = hand_made_archive(&layer, "echo x");
    let at = find(&bad, b"bin/busybox").expect("busybox in layer") + 600;
    bad[at] ^= 0xff;
    let err = d.docker(&["load"], Some(&bad));
    assert!(!err.status.success(), "{}", describe(&err));
    let err = String::from_utf8_lossy(&err.stderr).to_string();
    assert!(
        err.contains("diff id") && err.contains("layer.tar"),
        "{err}"
    );
    assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");
    // The whole archive loads and runs.
    let out = d.docker(&["load"], Some(&archive));
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Loaded image: hand:made"
    );
    let id = d.docker_ok(&["image", "inspect", "-f", "{{.Id}}", "hand:made"]);
    assert_eq!(id.trim(), format!("sha256:{config_hex}"));
    assert_eq!(d.docker_ok(&["run", "--rm", "hand:made"]), "from-archive\n");
    assert_eq!(
        events(&d, "load"),
        vec![("image".to_string(), "hand:made".to_string())]
    );
}

/// Bytes of the regular files under `dir`, walked here (not moor's own figures).
fn file_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let meta = e.path().symlink_metadata().expect("meta");
        if meta.is_dir() {
            total += file_bytes(&e.path());
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    total
}

/// The (Type, name attribute) of every event of `action` so far (the raw API: the docker
/// CLI's `--until 0s` leaves out the current second).
fn events(d: &Daemon, action: &str) -> Vec<(String, String)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let filter = format!("%7B%22event%22%3A%5B%22{action}%22%5D%7D");
    let path = format!("/events?since=0&until={}&filters={filter}", now + 1);
    let r = d.http("GET", &path, None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("event"))
        .map(|e| {
            let name = e["Actor"]["Attributes"]["name"].as_str().unwrap_or("");
            (
                e["Type"].as_str().unwrap_or("").to_string(),
                name.to_string(),
            )
        })
        .collect()
}

fn dir_empty(p: &Path) -> bool {
    std::fs::read_dir(p)
        .map(|mut r| r.next().is_none())
        .unwrap_or(true)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn docker_history_shows_each_layer_with_its_size() {
    let Some(d) = daemon() else { return };
    commit_one(&d, "hist:1");
    let h = d.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}",
        "hist:1",
    ]);
    let lines: Vec<&str> = h.lines().collect();
    assert_eq!(lines.len(), 2, "{h}");
    assert!(lines[0].starts_with("sha256:"), "{h}");
    assert!(lines[0].contains("echo hello > /new"), "{h}");
    assert!(lines[1].starts_with("<missing>|moor import|"), "{h}");
    let raw = d.http("GET", "/images/hist:1/history", None).json();
    // The top layer holds /new (6 bytes) and the whiteout of /etc/gone.
    assert_eq!(raw[0]["Size"], 6, "{raw}");
    let busybox = std::fs::metadata("/bin/busybox").expect("busybox").len();
    let base_size = raw[1]["Size"].as_u64().expect("size");
    assert!(base_size >= busybox, "{base_size} < {busybox}");
    let moor_h = d.cli_ok(&["history", "hist:1"]);
    assert!(moor_h.contains("echo hello > /new"), "{moor_h}");
}

#[test]
fn system_df_shows_what_is_on_disk() {
    let Some(d) = daemon() else { return };
    commit_one(&d, "hist:1");
    // system df: the image's layers, the container's upper dir.
    d.docker_ok(&[
        "run",
        "--name",
        "writer",
        "hist:1",
        "/bin/sh",
        "-c",
        "head -c 12345 /dev/zero > /blob",
    ]);
    d.docker_ok(&["volume", "create", "vol1"]);
    d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "vol1:/data",
        "hist:1",
        "/bin/sh",
        "-c",
        "head -c 1000 /dev/zero > /data/f",
    ]);
    d.docker_ok(&["create", "--name", "user", "-v", "vol1:/data", "hist:1"]);
    let df = d.http("GET", "/system/df", None).json();
    let vol = df["Volumes"]
        .as_array()
        .expect("Volumes")
        .iter()
        .find(|v| v["Name"] == "vol1")
        .expect("vol1")
        .clone();
    assert_eq!(vol["UsageData"]["Size"], 1000, "{vol}");
    assert_eq!(vol["UsageData"]["RefCount"], 1, "{vol}");
    assert_eq!(df["BuildCache"], serde_json::json!([]));
    let layers = d.root().join("images/layers");
    let mut on_disk = 0u64;
    for e in std::fs::read_dir(&layers).expect("layers").flatten() {
        on_disk += file_bytes(&e.path().join("root"));
    }
    let base_rootfs = df["Images"]
        .as_array()
        .expect("Images")
        .iter()
        .find(|i| i["RepoTags"][0] == "base:1")
        .expect("base image")["Size"]
        .as_u64()
        .expect("size");
    assert_eq!(
        df["LayersSize"].as_u64(),
        Some(on_disk + base_rootfs),
        "{df}"
    );
    let writer = df["Containers"]
        .as_array()
        .expect("Containers")
        .iter()
        .find(|c| c["Names"][0] == "/writer")
        .expect("writer")
        .clone();
    assert_eq!(writer["SizeRw"], 12345, "{writer}");
    let hist = df["Images"]
        .as_array()
        .expect("Images")
        .iter()
        .find(|i| i["RepoTags"][0] == "hist:1")
        .expect("hist image")
        .clone();
    assert_eq!(hist["Containers"], 2, "writer and user: {hist}");
    assert_eq!(
        hist["Size"].as_u64(),
        Some(on_disk),
        "its two layers are all layers"
    );
    let text = d.docker_ok(&["system", "df"]);
    assert!(
        text.contains("Images") && text.contains("Containers"),
        "{text}"
    );
    let verbose = d.docker_ok(&["system", "df", "-v"]);
    assert!(
        verbose.contains("writer") && verbose.contains("vol1"),
        "{verbose}"
    );
    assert!(
        text.contains("Local Volumes") && text.contains("Build Cache"),
        "{text}"
    );
    // The moor CLI prints the same.
    let moor = d.cli_ok(&["system", "df"]);
    assert!(
        moor.contains("Images") && moor.contains("Containers"),
        "{moor}"
    );
    let moor_c = d.cli_ok(&["commit", "writer", "fromcli:1"]);
    assert!(moor_c.trim().starts_with("sha256:"), "{moor_c}");
    let size = d.docker_ok(&["run", "--rm", "fromcli:1", "/bin/sh", "-c", "wc -c < /blob"]);
    assert_eq!(size.trim(), "12345");
}

#[test]
fn a_pulled_image_saves_and_loads_with_its_registry_id() {
    use common::registry::{two_layer_image, Registry};
    if let Some(reason) = skip_reason().or_else(common::registry::skip_reason) {
        eprintln!("skipped: {reason}");
        return;
    }
    let reg = Registry::start();
    let d = Daemon::start_with_runtime(LIVE_RESTORE_ON, "runc");
    let (layout, built) = two_layer_image(&d.root().with_file_name("oci"), "v1");
    reg.push(&layout, "v1", "app", &[]);
    let name = format!("{}/app:v1", reg.host());
    d.docker_ok(&["pull", &name]);
    let out = d.root().with_file_name("pulled.tar");
    d.docker_ok(&["save", "-o", out.to_str().expect("utf-8"), &name]);
    // The layers come back byte for byte (whiteouts and opaque directories included).
    let files = entries(&std::fs::read(&out).expect("saved"));
    for diff in &built.diff_ids {
        let path = format!("blobs/sha256/{}", &diff[7..]);
        let layer = &files.iter().find(|(p, _)| *p == path).expect("layer").1;
        assert_eq!(format!("sha256:{}", sha(layer)), *diff);
    }
    let second = Daemon::start_with_runtime(LIVE_RESTORE_ON, "runc");
    second.docker_ok(&["load", "-i", out.to_str().expect("utf-8")]);
    let id = second.docker_ok(&["image", "inspect", "-f", "{{.Id}}", &name]);
    assert_eq!(
        id.trim(),
        built.config_digest,
        "the registry's config digest"
    );
    assert_eq!(second.docker_ok(&["run", "--rm", &name]), "from layer 2\n");
    let etc = second.docker_ok(&["run", "--rm", &name, "ls", "-a", "/etc"]);
    assert!(!etc.contains("gone.txt") && !etc.contains(".wh."), "{etc}");
}

#[test]
fn docker_py_commits_saves_loads_and_reads_history() {
    let Some(d) = daemon() else { return };
    let tar = d.root().with_file_name("py-base.tar");
    std::fs::write(&tar, common::runc::busybox_tar()).expect("write tar");
    let out = d.docker_py("image_io_test.py", &[tar.as_os_str()], 120);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("image io ok"));
}
