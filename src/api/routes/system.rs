//! `/_ping`, `/version`, `/info`.

use actix_web::{web, HttpResponse};

use crate::api::server::ApiState;
use crate::api::types::Version;
use crate::daemon::messages::Summarize;

/// Highest Docker API version served.
pub const API_VERSION: &str = "1.44";
/// Lowest Docker API version served.
pub const MIN_API_VERSION: &str = "1.24";

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/_ping", web::get().to(ping))
        .route("/_ping", web::head().to(ping))
        .route("/version", web::get().to(version))
        .route("/info", web::get().to(info));
}

async fn ping() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Api-Version", API_VERSION))
        .insert_header(("OSType", "linux"))
        .insert_header(("Docker-Experimental", "false"))
        .insert_header(("Cache-Control", "no-cache, no-store, must-revalidate"))
        .insert_header(("Pragma", "no-cache"))
        .content_type("text/plain; charset=utf-8")
        .body("OK")
}

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// "2" on the unified hierarchy, else "1".
fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

/// PRETTY_NAME of /etc/os-release, as Docker shows it.
fn operating_system() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "linux".into())
}

/// MemTotal of /proc/meminfo in bytes.
fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

async fn version() -> HttpResponse {
    let base = Version {
        version: env!("CARGO_PKG_VERSION").into(),
        api_version: API_VERSION.into(),
        min_api_version: MIN_API_VERSION.into(),
        os: "linux".into(),
        arch: arch().into(),
        kernel_version: kernel_version(),
    };
    let mut body = serde_json::to_value(&base).expect("a version serializes");
    // The fields the docker CLI prints and docker-py reads besides moor's own.
    if let Some(obj) = body.as_object_mut() {
        obj.insert("Platform".into(), serde_json::json!({"Name": "moor"}));
        obj.insert(
            "Components".into(),
            serde_json::json!([{"Name": "Engine", "Version": base.version, "Details": {
                "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
                "Os": "linux", "Arch": base.arch, "KernelVersion": base.kernel_version,
                "Experimental": "false",
            }}]),
        );
        for key in ["GitCommit", "GoVersion", "BuildTime"] {
            obj.insert(key.into(), serde_json::Value::String(String::new()));
        }
        obj.insert("Experimental".into(), serde_json::Value::Bool(false));
    }
    HttpResponse::Ok().json(body)
}

/// The runtimes a container can name, with their binaries, and the default one's name.
fn runtimes(shared: &crate::daemon::Shared) -> (serde_json::Value, &'static str) {
    let mut all = serde_json::json!({});
    for (name, binary) in shared.runtimes.described() {
        all[name] = serde_json::json!({ "path": binary });
    }
    let default = crate::runtime::interface::profile(shared.runtimes.default_kind).name;
    (all, default)
}

async fn info(state: web::Data<ApiState>) -> HttpResponse {
    let s = state.supervisor.send(Summarize).await.unwrap_or_default();
    let shared = &state.shared;
    let images = shared.store.images().ok().and_then(|i| i.list().ok());
    let (runtimes, default_runtime) = runtimes(shared);
    HttpResponse::Ok().json(serde_json::json!({
        "Containers": s.running + s.paused + s.stopped + s.orphaned,
        "ContainersRunning": s.running + s.orphaned,
        "ContainersPaused": s.paused,
        "ContainersStopped": s.stopped,
        "Images": images.map_or(0, |i| i.len()),
        "Driver": "none",
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version(),
        "KernelVersion": kernel_version(),
        "OperatingSystem": operating_system(),
        "MemTotal": mem_total(),
        "ID": "",
        "Debug": false,
        "Experimental": false,
        "ExperimentalBuild": false,
        "SecurityOptions": [],
        "Warnings": [],
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "DockerRootDir": shared.layout.root,
        "Name": nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "LiveRestoreEnabled": shared.config.get().live_restore,
        "DefaultRuntime": default_runtime,
        "Runtimes": runtimes,
        "RegistryConfig": registry_config(&shared.config.get()),
    }))
}

/// `RegistryConfig` as Docker's `/info` shows it: the mirrors (URLs normalised, as Docker's),
/// the insecure CIDRs (loopback's always) and one index entry per insecure host and for
/// Docker Hub.
fn registry_config(config: &crate::config::DaemonConfig) -> serde_json::Value {
    use crate::config::registry::{InsecureRegistries, Mirror};
    let mirrors: Vec<String> = Mirror::parse_all(&config.registry_mirrors)
        .unwrap_or_default()
        .iter()
        .map(Mirror::url)
        .collect();
    let insecure = InsecureRegistries::parse(&config.insecure_registries).unwrap_or_default();
    let mut indexes = serde_json::Map::new();
    for host in insecure.hosts() {
        let entry =
            serde_json::json!({"Name": host, "Mirrors": [], "Secure": false, "Official": false});
        indexes.insert(host.clone(), entry);
    }
    let hub = serde_json::json!({"Name": "docker.io", "Mirrors": mirrors, "Secure": true, "Official": true});
    indexes.insert("docker.io".into(), hub);
    serde_json::json!({
        "InsecureRegistryCIDRs": insecure.cidrs(),
        "IndexConfigs": indexes,
        "Mirrors": mirrors,
    })
}
