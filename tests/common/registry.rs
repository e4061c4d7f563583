//! A real registry for the pull tests: Debian's `docker-registry` (distribution 2.8) on a free
//! loopback port with a temporary storage directory, killed by pid on drop; and OCI image
//! layouts built here in Rust (tar layers, gzip or zstd, config and manifest JSON, sha256
//! digests), copied into it with `skopeo`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use super::runc::header;

/// The registry binary Debian's package installs.
pub const REGISTRY_BIN: &str = "docker-registry";

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    let hex: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

fn on_path(bin: &str) -> bool {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .any(|d| Path::new(d).join(bin).is_file())
}

/// docker-registry and skopeo are needed: None when both are here; a missing one fails the
/// test unless `MOOR_TEST_SKIP` names `registry` (the reason to print is returned then).
pub fn skip_reason() -> Option<String> {
    for bin in [REGISTRY_BIN, "skopeo"] {
        if !on_path(bin) {
            return super::prereq::missing(
                "registry",
                format!("{bin} is missing: run .ci/setup (apt-get install docker-registry skopeo)"),
            );
        }
    }
    None
}

/// A running registry; killed (by its pid) and its storage removed on drop.
pub struct Registry {
    /// Storage, config and log.
    dir: TempDir,
    /// The registry process.
    child: Child,
    /// Its loopback port.
    pub port: u16,
}

impl Registry {
    /// Starts a registry without auth on a free loopback port; returns once `/v2/` answers.
    pub fn start() -> Registry {
        Registry::start_with(None)
    }

    /// Starts a registry with htpasswd basic auth for `user` and `password` (bcrypt lines
    /// from `htpasswd -nbB`).
    pub fn start_htpasswd(user: &str, password: &str) -> Registry {
        Registry::start_with(Some((user, password)))
    }

    fn start_with(basic: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("moor-reg-")
            .tempdir()
            .expect("registry tempdir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).expect("storage dir");
        let config = dir.path().join("config.yml");
        let yaml = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        let yaml = match basic {
            None => yaml,
            Some((user, password)) => {
                let args = ["-nbB", user, password];
                let out = Command::new("htpasswd")
                    .args(args)
                    .output()
                    .expect("run htpasswd");
                let line = super::succeeded("htpasswd", &args, out);
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, line.trim()).expect("htpasswd file");
                format!(
                    "{yaml}auth:\n  htpasswd:\n    realm: moor-test\n    path: {}\n",
                    file.display()
                )
            }
        };
        std::fs::write(&config, yaml).expect("registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let mut cmd = Command::new(REGISTRY_BIN);
        cmd.arg("serve").arg(&config);
        // The registry reads any REGISTRY_* variable as a config override.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let reg = Registry { dir, child, port };
        let up = super::wait_for(Duration::from_secs(15), || {
            reg.get("/v2/").is_some_and(|r| {
                r.starts_with("HTTP/1.1 200") || (basic.is_some() && r.starts_with("HTTP/1.1 401"))
            })
        });
        assert!(up, "registry did not answer: {}", reg.log());
        reg
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// A plain GET of `path`: the whole answer, or None when it cannot connect.
    pub fn get(&self, path: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.host()
        );
        s.write_all(req.as_bytes()).ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).ok()?;
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    /// Where the registry keeps the blob `digest` (`sha256:<hex>`).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Copies the OCI layout `layout` (tag `tag`) to `NAME:TAG` here with skopeo, with
    /// `extra` options (`--all`, `--format v2s2`); returns the pushed manifest's digest.
    pub fn push(&self, layout: &Path, tag: &str, name: &str, extra: &[&str]) -> String {
        let digest_file = self.dir.path().join(format!("digest-{}", rand_suffix()));
        let src = format!("oci:{}:{tag}", layout.display());
        let dest = format!("docker://{}/{name}:{tag}", self.host());
        let mut args = vec!["copy", "--dest-tls-verify=false", "--digestfile"];
        let digest_arg = digest_file.to_string_lossy().into_owned();
        args.push(&digest_arg);
        args.extend_from_slice(extra);
        args.extend([src.as_str(), dest.as_str()]);
        let out = Command::new("skopeo")
            .args(&args)
            .output()
            .expect("run skopeo");
        super::succeeded("skopeo", &args, out);
        std::fs::read_to_string(&digest_file)
            .expect("skopeo digest file")
            .trim()
            .to_string()
    }
}

impl Registry {
    /// The manifest `NAME:TAG` as the registry stores it (its raw bytes, via `skopeo inspect
    /// --raw`), with the registry reached at `host` (itself or a front).
    pub fn raw_manifest(&self, host: &str, reference: &str) -> Vec<u8> {
        let image = format!("docker://{host}/{reference}");
        let args = ["inspect", "--raw", "--tls-verify=false", image.as_str()];
        let out = Command::new("skopeo")
            .args(args)
            .output()
            .expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo {args:?}: {}",
            super::describe(&out)
        );
        out.stdout
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Our own child, by pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compress {
    /// gzip (flate2).
    Gzip,
    /// zstd.
    Zstd,
}

/// One layer: an uncompressed tar and how to store it.
pub struct Layer {
    /// The tar.
    pub tar: Vec<u8>,
    /// Its compression in the registry.
    pub compress: Compress,
}

/// A built image: its layout's manifest and the digests a test checks.
pub struct Built {
    /// Digest of the manifest (as in the layout).
    pub manifest_digest: String,
    /// Compressed digests of the layers, bottom first.
    pub layer_digests: Vec<String>,
    /// Uncompressed digests (diff ids), bottom first.
    pub diff_ids: Vec<String>,
    /// The config blob's digest.
    pub config_digest: String,
}

fn write_blob(layout: &Path, data: &[u8]) -> String {
    let digest = sha256(data);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).expect("blobs dir");
    std::fs::write(dir.join(&digest[7..]), data).expect("write blob");
    digest
}

fn compress(layer: &Layer) -> Vec<u8> {
    match layer.compress {
        Compress::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&layer.tar).expect("gzip");
            gz.finish().expect("gzip finish")
        }
        Compress::Zstd => zstd::encode_all(&layer.tar[..], 3).expect("zstd"),
    }
}

/// Writes the blobs of one image (layers, config, manifest) into `layout`; `config` is the
/// image config's `config` object, `platform` (os, architecture).
pub fn build_image(
    layout: &Path,
    layers: &[Layer],
    config: Value,
    platform: (&str, &str),
) -> Built {
    let mut descs = Vec::new();
    let mut layer_digests = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in layers {
        let blob = compress(layer);
        let digest = write_blob(layout, &blob);
        let media = match layer.compress {
            Compress::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compress::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        };
        descs.push(json!({"mediaType": media, "digest": digest, "size": blob.len()}));
        layer_digests.push(digest);
        diff_ids.push(sha256(&layer.tar));
    }
    let config_json = json!({
        "created": "2024-01-01T00:00:00Z",
        "os": platform.0,
        "architecture": platform.1,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config_bytes = serde_json::to_vec(&config_json).expect("config json");
    let config_digest = write_blob(layout, &config_bytes);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_bytes.len(),
        },
        "layers": descs,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest json");
    let manifest_digest = write_blob(layout, &manifest_bytes);
    Built {
        manifest_digest,
        layer_digests,
        diff_ids,
        config_digest,
    }
}

fn size_of_blob(layout: &Path, digest: &str) -> u64 {
    std::fs::metadata(layout.join("blobs/sha256").join(&digest[7..]))
        .expect("blob")
        .len()
}

/// Writes `oci-layout` and `index.json` naming one manifest as `tag`.
pub fn write_index(layout: &Path, tag: &str, manifest_digest: &str) {
    let size = size_of_blob(layout, manifest_digest);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).expect("index.json");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
}

/// Writes an image index blob of `images` (manifest digest, os, arch) and names it `tag` in
/// `index.json`; returns the index's digest.
pub fn write_multi_platform(layout: &Path, tag: &str, images: &[(&str, &str, &str)]) -> String {
    let manifests: Vec<Value> = images
        .iter()
        .map(|(digest, os, arch)| {
            json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest,
                "size": size_of_blob(layout, digest),
                "platform": {"os": os, "architecture": arch},
            })
        })
        .collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    let bytes = serde_json::to_vec(&index).expect("index json");
    let digest = write_blob(layout, &bytes);
    let top = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest,
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(layout.join("index.json"), top.to_string()).expect("index.json");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    digest
}

/// A tar of `files` (path, content); a path ending in `/` is a directory.
pub fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut h = header();
        if let Some(dir) = path.strip_suffix('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, dir, std::io::empty())
                .expect("tar dir");
        } else {
            h.set_size(content.len() as u64);
            b.append_data(&mut h, path, content.as_bytes())
                .expect("tar file");
        }
    }
    b.into_inner().expect("finish tar")
}

/// The busybox base layer (busybox, applets) plus `/etc/base.txt`, `/etc/gone.txt` and
/// `/opq/old.txt`.
pub fn base_layer() -> Vec<u8> {
    super::runc::busybox_tar_with(&[
        ("etc/base.txt", "from layer 1\n"),
        ("etc/gone.txt", "whited out by layer 2\n"),
        ("opq/old.txt", "hidden by the opaque dir\n"),
    ])
}

/// Layer 2 over [`base_layer`]: a whiteout of `/etc/gone.txt`, `/opq` made opaque with
/// `/opq/new.txt`, and `/etc/top.txt`.
pub fn top_layer() -> Vec<u8> {
    tar_of(&[
        ("etc/", ""),
        ("etc/.wh.gone.txt", ""),
        ("etc/top.txt", "from layer 2\n"),
        ("opq/", ""),
        ("opq/.wh..wh..opq", ""),
        ("opq/new.txt", "only layer 2\n"),
    ])
}

/// The config of the two-layer test image: Env, Cmd, WorkingDir.
pub fn test_config() -> Value {
    json!({
        "Env": ["PATH=/bin", "GREETING=from-config"],
        "Cmd": ["cat", "/etc/top.txt"],
        "WorkingDir": "/opq",
        "Labels": {"org.example.test": "pull"},
    })
}

/// Builds the two-layer busybox image in a new layout under `parent`; returns the layout
/// dir and what was built.
pub fn two_layer_image(parent: &Path, tag: &str) -> (PathBuf, Built) {
    let layout = parent.join(format!("layout-{tag}"));
    std::fs::create_dir_all(&layout).expect("layout dir");
    let layers = [
        Layer {
            tar: base_layer(),
            compress: Compress::Gzip,
        },
        Layer {
            tar: top_layer(),
            compress: Compress::Gzip,
        },
    ];
    let built = build_image(&layout, &layers, test_config(), ("linux", "amd64"));
    write_index(&layout, tag, &built.manifest_digest);
    (layout, built)
}
