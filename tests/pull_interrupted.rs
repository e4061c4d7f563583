//! Pulls that do not run alone: a daemon killed with SIGKILL in the middle of a layer's
//! download, two concurrent pulls of images sharing a base layer, a download that breaks
//! (resumed with a Range request), a client that goes away (the pull is cancelled), a crash
//! between an image's layer list and its record, and a full disk. A loopback proxy in front
//! of the registry ([`common::proxy`]) counts the blob GETs, slows the answers, holds a
//! request or cuts one, so each case happens for certain.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::proxy::Proxy;
use common::registry::{
    base_layer, build_image, skip_reason as registry_skip, tar_of, two_layer_image, write_index,
    Built, Compress, Layer, Registry,
};
use common::runc::{header, skip_reason as runc_skip};
use common::{wait_for, Daemon};
use serde_json::json;

/// A registry, a proxy in front of it and a runc daemon, or None (reason printed) when asked
/// to skip.
fn setup() -> Option<(Registry, Proxy, Daemon)> {
    if let Some(reason) = runc_skip().or_else(registry_skip) {
        eprintln!("skipped: {reason}");
        return None;
    }
    let reg = Registry::start();
    let proxy = Proxy::start(reg.port);
    let d = Daemon::start_with_runtime("{}", "runc");
    Some((reg, proxy, d))
}

/// The entries of `dir` (names), sorted; empty when it does not exist.
fn entries(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// `len` bytes no compressor can shrink (xorshift), so the blob is as large as the layer.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The busybox base layer and a layer of one file `/data/big.bin` of `len` random bytes.
fn big_image(layout: &Path, tag: &str, len: usize) -> Built {
    std::fs::create_dir_all(layout).expect("layout");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header();
    h.set_size(len as u64);
    b.append_data(&mut h, "data/big.bin", &noise(len)[..])
        .expect("tar");
    let layers = [
        Layer {
            tar: base_layer(),
            compress: Compress::Gzip,
        },
        Layer {
            tar: b.into_inner().expect("tar"),
            compress: Compress::Gzip,
        },
    ];
    let config = json!({"Env": ["PATH=/bin"], "Cmd": ["sh", "-c", "wc -c < /data/big.bin"]});
    let built = build_image(layout, &layers, config, ("linux", "amd64"));
    write_index(layout, tag, &built.manifest_digest);
    built
}

/// The downloads under `images/tmp/` of the blob `digest`, with their sizes.
fn downloads(d: &Daemon, digest: &str) -> Vec<(PathBuf, u64)> {
    let prefix = format!("blob-{}", &digest[7..19]);
    let tmp = d.root().join("images/tmp");
    entries(&tmp)
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .map(|n| {
            let path = tmp.join(n);
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            (path, len)
        })
        .collect()
}

/// `POST /images/create` for `name:tag` on `socket`: the answer as it comes is appended to
/// `seen`; returns all of it (empty when the daemon went away before answering).
fn pull_over(socket: &Path, name: &str, tag: &str, seen: &Mutex<String>) -> String {
    let request = format!(
        "POST /images/create?fromImage={name}&tag={tag} HTTP/1.0\r\nHost: moor\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
    if stream.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&buf[..n]);
        seen.lock().expect("seen").push_str(&text);
    }
    let all = seen.lock().expect("seen").clone();
    all
}

#[test]
fn a_daemon_killed_mid_pull_leaves_no_partial_layer_and_pulls_again() {
    let Some((reg, proxy, mut d)) = setup() else {
        return;
    };
    const BIG: usize = 16 << 20;
    let built = big_image(&d.root().with_file_name("oci").join("big"), "v1", BIG);
    reg.push(
        &d.root().with_file_name("oci").join("big"),
        "v1",
        "big",
        &[],
    );
    let (base, top) = (&built.layer_digests[0], &built.layer_digests[1]);
    // 2 MB/s: the 16 MB layer takes about 8 s, the daemon dies after its first 2 MB.
    proxy.set_rate(2 << 20);
    let name = format!("{}/big", proxy.host());
    let socket = d.socket();
    let pulling = {
        let name = name.clone();
        std::thread::spawn(move || pull_over(&socket, &name, "v1", &Mutex::default()))
    };
    let midway = wait_for(Duration::from_secs(60), || {
        downloads(&d, top).iter().any(|(_, len)| *len >= 2 << 20)
    });
    assert!(
        midway,
        "the big layer's download did not start: {:?}",
        proxy.requests()
    );
    let layers = d.root().join("images/layers");
    assert_eq!(
        entries(&layers),
        [built.diff_ids[0][7..].to_string()],
        "the base layer was unpacked before the kill"
    );
    d.kill9();
    let answer = pulling.join().expect("pull thread");
    assert!(!answer.contains("Downloaded newer image"), "{answer}");
    assert!(
        !downloads(&d, top).is_empty(),
        "the kill left a partial download (the case under test)"
    );

    proxy.set_rate(0);
    d.restart();
    assert!(
        entries(&d.root().join("images/tmp")).is_empty(),
        "the partial download and work dirs are swept at start: {:?}",
        entries(&d.root().join("images/tmp"))
    );
    assert_eq!(
        entries(&layers),
        [built.diff_ids[0][7..].to_string()],
        "only the verified, fully unpacked base layer is kept"
    );
    let list = d.http("GET", "/images/json", None).json();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
    assert!(!d
        .root()
        .join("images")
        .join(&built.config_digest[7..])
        .exists());

    let out = d.cli_ok(&["pull", &format!("{name}:v1")]);
    assert!(
        out.contains(&format!("{}: Already exists", &base[7..19])),
        "the kept base layer is reused: {out}"
    );
    assert!(
        out.contains(&format!("{}: Pull complete", &top[7..19])),
        "{out}"
    );
    assert_eq!(proxy.blob_gets(base), 1, "the base is not downloaded again");
    assert_eq!(proxy.blob_gets(top), 2, "the big layer is downloaded again");
    let run = d.cli_ok(&["run", "--rm", &format!("{name}:v1")]);
    assert_eq!(run.trim(), BIG.to_string());
    let mut want: Vec<String> = built.diff_ids.iter().map(|x| x[7..].to_string()).collect();
    want.sort();
    assert_eq!(entries(&layers), want);
    assert!(entries(&d.root().join("images/tmp")).is_empty());
}

#[test]
fn concurrent_pulls_download_a_shared_layer_once() {
    let Some((reg, proxy, d)) = setup() else {
        return;
    };
    let oci = d.root().with_file_name("oci");
    let (layout, app) = two_layer_image(&oci, "v1");
    reg.push(&layout, "v1", "app", &[]);
    let layout2 = oci.join("layout-two");
    let layers = [
        Layer {
            tar: base_layer(),
            compress: Compress::Gzip,
        },
        Layer {
            tar: tar_of(&[("etc/", ""), ("etc/two.txt", "second image\n")]),
            compress: Compress::Gzip,
        },
    ];
    std::fs::create_dir_all(&layout2).expect("layout");
    let two = build_image(
        &layout2,
        &layers,
        json!({"Cmd": ["cat", "/etc/two.txt"]}),
        ("linux", "amd64"),
    );
    write_index(&layout2, "v2", &two.manifest_digest);
    reg.push(&layout2, "v2", "two", &[]);
    let base = app.layer_digests[0].clone();
    assert_eq!(base, two.layer_digests[0], "one base layer");

    // The base's download is held until the other pull waits for it.
    proxy.hold(&format!("/blobs/{base} "));
    let seen: Vec<Arc<Mutex<String>>> = (0..2).map(|_| Arc::default()).collect();
    let pulls: Vec<_> = [("app", "v1"), ("two", "v2")]
        .into_iter()
        .zip(seen.clone())
        .map(|((repo, tag), seen)| {
            let socket = d.socket();
            let name = format!("{}/{repo}", proxy.host());
            std::thread::spawn(move || pull_over(&socket, &name, tag, &seen))
        })
        .collect();
    let short = &base[7..19];
    let waited = format!(r#""status":"Waiting","progressDetail":{{}},"id":"{short}""#);
    // Without the in-flight table nobody waits: the base is released after the deadline
    // and both pulls fetch it (the count below fails).
    wait_for(Duration::from_secs(20), || {
        seen.iter()
            .any(|s| s.lock().expect("seen").contains(&waited))
    });
    proxy.release(&format!("/blobs/{base} "));
    let answers: Vec<String> = pulls
        .into_iter()
        .map(|p| p.join().expect("pull thread"))
        .collect();
    for answer in &answers {
        assert!(answer.contains("Downloaded newer image"), "{answer}");
    }
    assert_eq!(
        proxy.blob_gets(&base),
        1,
        "the shared base is fetched once: {:?}",
        proxy.requests()
    );
    assert!(
        answers.iter().filter(|a| a.contains(&waited)).count() == 1,
        "one pull waits for the other's download of the base: {answers:?}"
    );
    assert_eq!(proxy.blob_gets(&app.layer_digests[1]), 1);
    assert_eq!(proxy.blob_gets(&two.layer_digests[1]), 1);
    assert_eq!(entries(&d.root().join("images/layers")).len(), 3);
    let two_name = format!("{}/two:v2", proxy.host());
    assert_eq!(d.cli_ok(&["run", "--rm", &two_name]), "second image\n");
    let app_name = format!("{}/app:v1", proxy.host());
    assert_eq!(
        d.cli_ok(&["run", "--rm", &app_name, "cat", "/etc/base.txt"]),
        "from layer 1\n"
    );
}

#[test]
fn a_broken_download_resumes_with_a_range_request() {
    let Some((reg, proxy, d)) = setup() else {
        return;
    };
    const BIG: usize = 4 << 20;
    let layout = d.root().with_file_name("oci").join("big");
    let built = big_image(&layout, "v1", BIG);
    reg.push(&layout, "v1", "big", &[]);
    let top = &built.layer_digests[1];
    // The big layer's answer breaks after its first MiB.
    proxy.cut_after(&format!("/blobs/{top} "), 1 << 20);
    let name = format!("{}/big:v1", proxy.host());
    let out = d.cli_ok(&["pull", &name]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    let gets: Vec<String> = proxy
        .heads()
        .into_iter()
        .filter(|h| h.starts_with("GET ") && h.contains(&format!("/blobs/{top} ")))
        .collect();
    assert_eq!(gets.len(), 2, "one cut download, one resumed: {gets:?}");
    assert!(
        !gets[0].to_ascii_lowercase().contains("range:"),
        "{}",
        gets[0]
    );
    let range = gets[1]
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("range")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("the second GET has no Range header: {}", gets[1]));
    let offset: u64 = range
        .strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|o| o.parse().ok())
        .unwrap_or_else(|| panic!("Range {range:?}"));
    assert!(
        offset > 0 && offset < (1 << 20),
        "resumed where it broke: {range}"
    );
    let run = d.cli_ok(&["run", "--rm", &name]);
    assert_eq!(run.trim(), BIG.to_string());
    assert!(entries(&d.root().join("images/tmp")).is_empty());
}

#[test]
fn a_broken_download_starts_again_where_ranges_are_not_supported() {
    let Some((reg, proxy, d)) = setup() else {
        return;
    };
    const BIG: usize = 4 << 20;
    let layout = d.root().with_file_name("oci").join("big");
    let built = big_image(&layout, "v1", BIG);
    reg.push(&layout, "v1", "big", &[]);
    let top = &built.layer_digests[1];
    proxy.drop_ranges();
    proxy.cut_after(&format!("/blobs/{top} "), 1 << 20);
    let name = format!("{}/big:v1", proxy.host());
    // The registry answers the Range request with the whole blob: it is taken from zero,
    // not appended to the first MiB (the digest check would fail).
    let out = d.cli_ok(&["pull", &name]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(proxy.blob_gets(top), 2);
    let run = d.cli_ok(&["run", "--rm", &name]);
    assert_eq!(run.trim(), BIG.to_string());
}

#[test]
fn a_pull_whose_client_goes_away_is_cancelled_and_leaves_nothing() {
    let Some((reg, proxy, d)) = setup() else {
        return;
    };
    const BIG: usize = 16 << 20;
    let layout = d.root().with_file_name("oci").join("big");
    let built = big_image(&layout, "v1", BIG);
    reg.push(&layout, "v1", "big", &[]);
    let top = &built.layer_digests[1];
    proxy.set_rate(2 << 20);
    let name = format!("{}/big", proxy.host());
    let request = format!(
        "POST /images/create?fromImage={name}&tag=v1 HTTP/1.0\r\nHost: moor\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let mut client = UnixStream::connect(d.socket()).expect("connect");
    client.write_all(request.as_bytes()).expect("request");
    let midway = wait_for(Duration::from_secs(60), || {
        downloads(&d, top).iter().any(|(_, len)| *len >= 1 << 20)
    });
    assert!(midway, "the download did not start: {:?}", proxy.requests());
    // From now on the rest would take minutes: only a cancelled pull ends in time.
    proxy.set_rate(64 << 10);
    drop(client);
    let gone = wait_for(Duration::from_secs(30), || downloads(&d, top).is_empty());
    assert!(
        gone,
        "the pull went on after its client left: {:?}",
        downloads(&d, top)
    );
    let layers = d.root().join("images/layers");
    assert_eq!(entries(&layers), [built.diff_ids[0][7..].to_string()]);
    let list = d.http("GET", "/images/json", None).json();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");

    proxy.set_rate(0);
    let out = d.cli_ok(&["pull", &format!("{name}:v1")]);
    assert!(
        out.contains(&format!("{}: Pull complete", &top[7..19])),
        "{out}"
    );
    assert_eq!(proxy.blob_gets(top), 2, "downloaded again, from its start");
    assert!(entries(&d.root().join("images/tmp")).is_empty());
}

#[test]
fn a_crash_between_the_layer_list_and_the_record_leaves_no_unlisted_directory() {
    if let Some(reason) = registry_skip() {
        eprintln!("skipped: {reason}");
        return;
    }
    let reg = Registry::start();
    let mut d = Daemon::start_with_env("{}", &[("FAILPOINTS", "image-committed=return")]);
    let (layout, built) = two_layer_image(&d.root().with_file_name("oci"), "v1");
    reg.push(&layout, "v1", "app", &[]);
    let name = format!("{}/app:v1", reg.host());
    let _ = d.cli(&["pull", &name]);
    assert!(
        d.wait_exited(Duration::from_secs(20)).is_some(),
        "the daemon did not die at image-committed"
    );
    let dir = d.root().join("images").join(&built.config_digest[7..]);
    assert!(
        dir.join("layers.json").is_file(),
        "the crash left the image's directory (the case under test)"
    );
    d.set_env(&[]);
    d.restart();
    assert!(
        !dir.exists(),
        "the unlisted image directory is collected at start"
    );
    let list = d.http("GET", "/images/json", None).json();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
    let out = d.cli_ok(&["pull", &name]);
    for digest in &built.layer_digests {
        assert!(
            out.contains(&format!("{}: Already exists", &digest[7..19])),
            "the verified layers are reused: {out}"
        );
    }
    assert!(dir.join("layers.json").is_file());
    let list = d.http("GET", "/images/json", None).json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
}

/// A tmpfs mounted by the test; lazily unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(out.status.success(), "mount: {}", common::describe(&out));
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_fails_the_pull_cleanly_and_the_daemon_serves_on() {
    let Some((reg, _proxy, d)) = setup() else {
        return;
    };
    const BIG: usize = 16 << 20;
    let layout = d.root().with_file_name("oci").join("big");
    let built = big_image(&layout, "v1", BIG);
    reg.push(&layout, "v1", "big", &[]);
    let images = d.root().join("images");
    let disk = Tmpfs::mount(&images, "8m");
    let name = format!("{}/big:v1", reg.host());
    let out = d.cli_fail(&["pull", &name]);
    let text = common::describe(&out);
    assert!(text.contains("no space left on device"), "{text}");
    assert!(
        text.contains(&built.layer_digests[1]),
        "names the layer: {text}"
    );
    assert!(
        entries(&images.join("tmp")).is_empty(),
        "nothing partial kept"
    );
    assert!(!images.join("layers").join(&built.diff_ids[1][7..]).exists());
    assert!(!images.join(&built.config_digest[7..]).exists());
    let list = d.http("GET", "/images/json", None).json();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
    // The daemon serves on: with room again, the same pull succeeds.
    drop(disk);
    let out = d.cli_ok(&["pull", &name]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(d.cli_ok(&["run", "--rm", &name]).trim(), BIG.to_string());
}
