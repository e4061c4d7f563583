//! The layers of the code, checked: a forbidden path between modules fails this test with the
//! file and line. The rules are the arrows of README's "Layout" diagram:
//!
//! - `state/` (the pure machine and its store) uses only its own dependencies;
//! - the shim (`src/shim/`, `src/bin/moor-shim.rs`) uses std, libc, nix and serde_json, and
//!   of this crate only `shim`, `identity`, `host` (the file formats they share) and the
//!   pure runc argv builder `runtime::runc::args`;
//! - `host` (paths, root lock, observing processes and run files, atomic writes) and `identity`
//!   sit at the bottom: nothing above them is named there;
//! - `archive` (a container's files as tars, `docker diff`) works on the root it is handed:
//!   it names no daemon, API, CLI, admin, runtime or network;
//! - `runtime` never reaches up into the daemon, the API, the CLI or `admin`;
//! - `admin` works with the daemon down: it never names the daemon's actors or the API;
//! - the API talks to actors, never to a runtime (it reads only the runtime kinds' static
//!   profile, `runtime::interface::profile`, and the readings an actor passes on,
//!   `runtime::stats`); route files never import each other
//!   (shared helpers live in `src/api/routes/mod.rs`);
//! - only `src/runtime/` turns a runtime kind into behaviour: no code line elsewhere names
//!   `RuntimeKind::` (test code aside); the rest asks `runtime::interface::profile` or a
//!   `Runtime` (and `state/`, which defines the kinds, is a crate of its own);
//! - the CLI speaks HTTP with the API's wire types (`api::types`, `api::exec_types`,
//!   `api::image_types`, `api::volume_types`), and names the daemon only to start it (`src/cli/commands/daemon.rs`).

use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("ls {}: {e}", d.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The top-level module of this crate that `path` (relative to `src/`) belongs to.
fn module_of(rel: &Path) -> String {
    if rel == Path::new("bin/moor-shim.rs") {
        return "shim".into();
    }
    let first = rel
        .components()
        .next()
        .expect("a path")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// A line without its `//` comment (doc comments included).
fn code_of(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// The paths a line names after `prefix` (e.g. `crate::`), as `module::rest` strings. A
/// grouped `crate::{a, b::c}` is expanded one level.
fn named_after(line: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find(prefix) {
        // `prefix` must start a path, not end another identifier (`my_crate::`).
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            out.extend(
                group[..end]
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
            );
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            out.push(rest[..end].trim_end_matches(':').to_string());
        }
    }
    out
}

/// One forbidden use: the file, its line number, the line and the rule it breaks.
struct Violation {
    file: PathBuf,
    line: usize,
    text: String,
    rule: &'static str,
}

/// The rule that `module` naming `target` (this crate's `target::...`, from `file`) breaks.
fn crate_rule(module: &str, rel: &Path, target: &str) -> Option<&'static str> {
    let top = target.split("::").next().unwrap_or_default();
    let file = rel.to_string_lossy();
    match module {
        "shim"
            if !matches!(top, "shim" | "identity" | "host")
                && !target.starts_with("runtime::runc::args") =>
        {
            Some("the shim uses only shim, identity, host and the runc argv builder of this crate")
        }
        "host" | "identity" if !matches!(top, "host" | "identity" | "shim") => {
            Some("host and identity are the bottom layer")
        }
        "network" if !matches!(top, "network" | "host" | "identity") => {
            Some("network sits below the daemon and the runtime: it names only host and identity")
        }
        "api" if top == "network" && !is_network_helper(target) => {
            Some("the API reads only network::netns::path (a container's SandboxKey) and the pure port parsing of network::ports")
        }
        "config" if top == "network" && !is_network_setting(target) => {
            Some("config names only the network's settings (BridgeSettings, parse_bip, DEFAULT_BRIDGE)")
        }
        "image" | "logs" if top == "network" => Some("image and logs never name the network"),
        "runtime" if matches!(top, "daemon" | "api" | "cli" | "admin") => {
            Some("runtime never reaches up into daemon, api, cli or admin")
        }
        "admin" if matches!(top, "daemon" | "api" | "cli") => {
            Some("admin works with the daemon down: no daemon, api or cli")
        }
        "archive" if matches!(top, "daemon" | "api" | "cli" | "admin" | "runtime" | "network") => {
            Some("archive works on the root it is handed: no daemon, api, cli, admin, runtime or network")
        }
        "image" | "logs" | "config" if matches!(top, "daemon" | "api" | "cli" | "admin") => {
            Some("image, logs and config sit below the daemon")
        }
        "api" if top == "cli"
            || (top == "runtime" && !is_runtime_profile(target) && !is_reading(target)) =>
        {
            Some("the API talks to actors, never to a runtime or the CLI")
        }
        "daemon" if top == "api" && !matches!(&*file, "daemon/mod.rs" | "daemon/tests.rs") => {
            Some("only daemon/mod.rs (which starts the API) and its tests name the API")
        }
        "daemon" if matches!(top, "cli" | "admin") => Some("the daemon never names cli or admin"),
        "cli" if top == "daemon" && file != "cli/commands/daemon.rs" => {
            Some("the CLI names the daemon only to start it")
        }
        "cli" if top == "api" && !is_wire_type(target) => {
            Some("the CLI uses only the API's wire types (api::types, api::exec_types, api::image_types, api::volume_types)")
        }
        "cli" if top == "runtime" => Some("the CLI never names a runtime"),
        _ => None,
    }
}

/// What a runtime read of a container (`runtime::stats`: plain data and its error), which the
/// container actor hands to the API as it is, for `docker stats`.
fn is_reading(target: &str) -> bool {
    target == "runtime::stats" || target.starts_with("runtime::stats::")
}

/// What a runtime kind accepts and is called (a pure table in `runtime::interface`), which the
/// API's create checks and inspect read; everything else of a runtime is the actors' business.
fn is_runtime_profile(target: &str) -> bool {
    ["profile", "kind_named", "HOST_IMAGE_KIND", "Profile"]
        .iter()
        .any(|name| target == format!("runtime::interface::{name}"))
}

/// The network helpers the API reads: where a container's namespace file is, and the pure
/// parsing and checks of published ports (`network::ports`: no nft, no netlink).
fn is_network_helper(target: &str) -> bool {
    target == "network::netns::path"
        || target == "network::netns"
        || target == "network::ports"
        || target.starts_with("network::ports::")
}

/// What config turns daemon.json's `bridge` and `bip` into.
fn is_network_setting(target: &str) -> bool {
    ["BridgeSettings", "parse_bip", "DEFAULT_BRIDGE"]
        .iter()
        .any(|name| target == format!("network::{name}"))
}

/// The API's wire types, shared by the routes and the CLI.
fn is_wire_type(target: &str) -> bool {
    [
        "api::types",
        "api::exec_types",
        "api::image_types",
        "api::volume_types",
        "api::network_types",
    ]
    .iter()
    .any(|m| target == *m || target.starts_with(&format!("{m}::")))
}

/// Route files never import each other.
fn route_rule(rel: &Path, target: &str) -> Option<&'static str> {
    let file = rel.to_string_lossy();
    let own = file.strip_prefix("api/routes/")?.strip_suffix(".rs")?;
    if own == "mod" {
        return None;
    }
    let other = target.strip_prefix("api::routes::")?;
    let name = other.split("::").next().unwrap_or_default();
    let is_route_file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("src/api/routes/{name}.rs"))
        .exists();
    (is_route_file && name != own).then_some("route files never import each other")
}

fn check_crate() -> (Vec<Violation>, usize) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut bad = Vec::new();
    let mut seen = 0;
    for file in sources(&src) {
        let rel = file.strip_prefix(&src).expect("under src").to_path_buf();
        let module = module_of(&rel);
        let text = fs::read_to_string(&file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            let code = code_of(line);
            for target in named_after(code, "crate::") {
                seen += 1;
                let rule = crate_rule(&module, &rel, &target).or_else(|| route_rule(&rel, &target));
                if let Some(rule) = rule {
                    bad.push(Violation {
                        file: file.clone(),
                        line: n + 1,
                        text: line.trim().into(),
                        rule,
                    });
                }
            }
            if module == "shim" {
                for krate in [
                    "moor_state",
                    "actix",
                    "tokio",
                    "sled",
                    "tracing",
                    "moor::daemon",
                ] {
                    if !named_after(code, &format!("{krate}::")).is_empty()
                        || code.contains(&format!("use {krate}"))
                    {
                        bad.push(Violation {
                            file: file.clone(),
                            line: n + 1,
                            text: line.trim().into(),
                            rule: "the shim uses only std, libc, nix and serde_json",
                        });
                    }
                }
            }
        }
    }
    (bad, seen)
}

/// The rule a code line of `rel` (relative to `src/`) breaks by naming a runtime kind.
fn kind_rule(rel: &Path, code: &str) -> Option<&'static str> {
    let outside = module_of(rel) != "runtime";
    (outside && code.contains("RuntimeKind::")).then_some(
        "only src/runtime/ matches on or picks a RuntimeKind: use runtime::interface::profile \
         or a Runtime call",
    )
}

/// Whether the lines of `rel` from `line` on are test code: a test-only file, or after the
/// file's `#[cfg(test)]` (test modules go at the bottom of a file).
fn is_test_code(rel: &Path, text: &str, line: usize) -> bool {
    if rel.file_name().is_some_and(|f| f == "tests.rs") {
        return true;
    }
    let first_test = text
        .lines()
        .position(|l| code_of(l).trim() == "#[cfg(test)]")
        .unwrap_or(usize::MAX);
    line >= first_test
}

/// Every non-test line outside `src/runtime/` that names a `RuntimeKind::` variant.
fn kind_matches() -> Vec<Violation> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut bad = Vec::new();
    for file in sources(&src) {
        let rel = file.strip_prefix(&src).expect("under src").to_path_buf();
        let text = fs::read_to_string(&file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            if is_test_code(&rel, &text, n) {
                break;
            }
            if let Some(rule) = kind_rule(&rel, code_of(line)) {
                bad.push(Violation {
                    file: file.clone(),
                    line: n + 1,
                    text: line.trim().into(),
                    rule,
                });
            }
        }
    }
    bad
}

fn report(bad: &[Violation]) -> String {
    bad.iter()
        .map(|v| format!("{}:{}: {} ({})", v.file.display(), v.line, v.text, v.rule))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn no_module_names_a_layer_it_must_not() {
    let (bad, seen) = check_crate();
    assert!(
        seen > 200,
        "only {seen} crate paths found: is the scan broken?"
    );
    assert!(bad.is_empty(), "forbidden uses:\n{}", report(&bad));
}

#[test]
fn only_the_runtime_layer_matches_on_a_runtime_kind() {
    let bad = kind_matches();
    assert!(bad.is_empty(), "runtime kinds named:\n{}", report(&bad));
}

#[test]
fn state_uses_only_its_own_dependencies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("state");
    let manifest = fs::read_to_string(root.join("Cargo.toml")).expect("state/Cargo.toml");
    let deps: Vec<&str> = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("a [dependencies] table")
        .split("\n[")
        .next()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(['=', '.']).next())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let allowed = ["chrono", "serde", "serde_json", "sled", "thiserror"];
    for dep in &deps {
        assert!(
            allowed.contains(dep),
            "state/ depends on {dep}: it must stay pure"
        );
    }
    let mut bad = Vec::new();
    for file in sources(&root.join("src")) {
        let text = fs::read_to_string(&file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            let code = code_of(line).trim();
            if let Some(path) = code.strip_prefix("use ").or(code.strip_prefix("pub use ")) {
                let krate = path.split([':', ';', ' ', '{']).next().unwrap_or_default();
                let own = ["std", "crate", "self", "super", "core"];
                // A module of state's own, or an enum in scope (`use State as S`).
                let local = root.join(format!("src/{krate}.rs")).exists()
                    || root.join("src").join(krate).is_dir()
                    || krate.starts_with(char::is_uppercase);
                if !own.contains(&krate) && !allowed.contains(&krate) && !local {
                    bad.push(format!("{}:{}: {code}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "state/ uses outside crates:\n{}",
        bad.join("\n")
    );
}

/// The checker itself: each rule catches what it should (so the test above can fail).
#[test]
fn the_checker_catches_forbidden_uses() {
    let cases = [
        ("shim", "shim/spawn.rs", "daemon::layout::Layout", true),
        ("shim", "shim/spawn.rs", "host::atomic::write", false),
        ("admin", "admin/mod.rs", "daemon::layout::Layout", true),
        ("admin", "admin/mod.rs", "host::layout::Layout", false),
        ("api", "api/routes/exec.rs", "runtime::DEFAULT_PATH", true),
        ("runtime", "runtime/runc.rs", "daemon::layout::Layout", true),
        (
            "cli",
            "cli/commands/image.rs",
            "api::routes::images::ImageSummary",
            true,
        ),
        (
            "cli",
            "cli/commands/image.rs",
            "api::image_types::ImageSummary",
            false,
        ),
        ("cli", "cli/commands/admin.rs", "daemon::layout", true),
        ("api", "api/convert.rs", "runtime::read_run_files", true),
        (
            "api",
            "api/convert.rs",
            "runtime::interface::profile",
            false,
        ),
        (
            "api",
            "api/routes/exec.rs",
            "runtime::interface::Runtimes",
            true,
        ),
        ("cli", "cli/commands/daemon.rs", "daemon::run", false),
        ("network", "network/mod.rs", "runtime::bundle::build", true),
        ("network", "network/mod.rs", "config::DaemonConfig", true),
        ("network", "network/netns.rs", "host::layout::Layout", false),
        ("api", "api/convert.rs", "network::netns::path", false),
        ("api", "api/spec.rs", "network::ports::from_api", false),
        ("api", "api/spec.rs", "network::nat::publish", true),
        ("api", "api/convert.rs", "network::attach", true),
        ("config", "config.rs", "network::parse_bip", false),
        ("config", "config.rs", "network::attach", true),
        (
            "runtime",
            "runtime/runc/runtime.rs",
            "network::attach",
            false,
        ),
        (
            "daemon",
            "daemon/container/orphan.rs",
            "admin::orphan::x",
            true,
        ),
    ];
    for (module, file, target, forbidden) in cases {
        let got = crate_rule(module, Path::new(file), target).is_some();
        assert_eq!(got, forbidden, "{module} ({file}) naming {target}");
    }
    assert!(route_rule(
        Path::new("api/routes/compat.rs"),
        "api::routes::logs::parse_when"
    )
    .is_some());
    assert!(route_rule(Path::new("api/routes/mod.rs"), "api::routes::logs::x").is_none());
    let runc = "RuntimeKind::Runc => \"none\",";
    assert!(kind_rule(Path::new("api/convert.rs"), runc).is_some());
    assert!(kind_rule(Path::new("daemon/exec.rs"), "runtime: RuntimeKind,").is_none());
    assert!(kind_rule(Path::new("runtime/interface.rs"), runc).is_none());
    let text = "fn a() {}\n#[cfg(test)]\nmod tests {}\n";
    assert!(!is_test_code(Path::new("api/spec.rs"), text, 0));
    assert!(is_test_code(Path::new("api/spec.rs"), text, 2));
    assert!(is_test_code(Path::new("daemon/tests.rs"), "", 0));
    assert_eq!(
        named_after("use crate::{daemon::x, api::types::Y};", "crate::"),
        vec!["daemon::x", "api::types::Y"]
    );
    assert_eq!(
        named_after("let a = my_crate::x;", "crate::"),
        Vec::<String>::new()
    );
}
