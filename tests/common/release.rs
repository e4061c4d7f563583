//! The binaries of a build: the current one, or the previous release built from the
//! repository's own history (its commit in `tests/fixtures/previous-release`).
//!
//! The previous release is checked out with `git worktree add --detach` under the target
//! directory (`<target>/previous-release/src`), built with `cargo build --bins --locked`, and
//! the worktree is removed again. The build shares the current build's intermediate artifacts
//! (`build.build-dir` is the target directory this test was built in), so the dependencies
//! the two builds have in common are compiled once; its final binaries go to
//! `<target>/previous-release/debug/`, so they never replace the current `moor` and
//! `moor-shim`. moor's own crates get a profile override (`codegen-units`) in that build only,
//! so their artifacts never overwrite the current build's either (same package names and
//! versions would otherwise hash alike).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use super::{describe, MOOR, MOOR_SHIM};

/// The fixture naming the previous release's commit.
pub const PREVIOUS_RELEASE_FILE: &str = "tests/fixtures/previous-release";

/// A pair of `moor` and `moor-shim` binaries of one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// `moor`: the daemon and the CLI.
    pub moor: PathBuf,
    /// `moor-shim`, passed to the daemon as `MOOR_SHIM`.
    pub shim: PathBuf,
}

impl Binaries {
    /// The binaries under test ([`MOOR`], [`MOOR_SHIM`]).
    pub fn current() -> Binaries {
        Binaries {
            moor: MOOR.into(),
            shim: MOOR_SHIM.into(),
        }
    }
}

/// The previous release's commit, from [`PREVIOUS_RELEASE_FILE`] (its one line that is not a
/// `#` comment: 40 hex digits).
pub fn previous_release_commit() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(PREVIOUS_RELEASE_FILE);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    match lines[..] {
        [commit] if commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()) => {
            commit.to_string()
        }
        _ => panic!(
            "{} must hold one commit id (40 hex digits), found {lines:?}",
            path.display()
        ),
    }
}

/// The previous release's binaries, built once per test process (every caller waits for
/// the one build); panics with cargo's output when the build fails.
pub fn previous_release() -> &'static Binaries {
    static BUILT: OnceLock<Binaries> = OnceLock::new();
    BUILT.get_or_init(build_previous_release)
}

/// The target directory this test was built in (the parent of `CARGO_TARGET_TMPDIR`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent")
        .to_path_buf()
}

fn build_previous_release() -> Binaries {
    let commit = previous_release_commit();
    let target = target_dir();
    let out = target.join("previous-release");
    let src = out.join("src");
    remove_worktree(&src);
    std::fs::create_dir_all(&out).expect("create the previous release's target dir");
    git(
        &["worktree", "add", "--detach"],
        &[src.as_os_str(), std::ffi::OsStr::new(&commit)],
    );
    let started = Instant::now();
    let build = Command::new(option_env!("CARGO").unwrap_or("cargo"))
        .current_dir(&src)
        .args(["build", "--bins", "--locked", "--target-dir"])
        .arg(&out)
        .arg("--config")
        .arg(format!(
            "build.build-dir={:?}",
            target.display().to_string()
        ))
        .args(["--config", "profile.dev.package.moor.codegen-units=255"])
        .args([
            "--config",
            "profile.dev.package.moor-state.codegen-units=255",
        ])
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("CARGO_BUILD_BUILD_DIR")
        .output()
        .expect("run cargo build for the previous release");
    remove_worktree(&src);
    assert!(
        build.status.success(),
        "building the previous release ({commit}) failed\n{}",
        describe(&build)
    );
    let stderr = String::from_utf8_lossy(&build.stderr);
    let compiled: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Compiling "))
        .collect();
    eprintln!(
        "previous release {commit} built in {:?}; compiled: {compiled:?}",
        started.elapsed()
    );
    let bin = out.join("debug");
    let binaries = Binaries {
        moor: bin.join("moor"),
        shim: bin.join("moor-shim"),
    };
    for (old, new) in [(&binaries.moor, MOOR), (&binaries.shim, MOOR_SHIM)] {
        let old_bytes =
            std::fs::read(old).unwrap_or_else(|e| panic!("read {}: {e}", old.display()));
        let new_bytes = std::fs::read(new).unwrap_or_else(|e| panic!("read {new}: {e}"));
        assert_ne!(
            old_bytes,
            new_bytes,
            "{} is the current build's binary",
            old.display()
        );
    }
    binaries
}

/// Removes the worktree at `src` (left by an earlier, interrupted run too) and prunes git's
/// record of it.
fn remove_worktree(src: &Path) {
    if src.exists() {
        let _ = Command::new("git")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["worktree", "remove", "--force"])
            .arg(src)
            .output();
        if src.exists() {
            std::fs::remove_dir_all(src)
                .unwrap_or_else(|e| panic!("remove {}: {e}", src.display()));
        }
    }
    git(&["worktree", "prune"], &[]);
}

/// Runs `git ARGS EXTRA` in this repository; panics with its output unless it succeeds.
fn git(args: &[&str], extra: &[&std::ffi::OsStr]) {
    let output = Command::new("git")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .args(extra)
        .output()
        .expect("run git (the upgrade test needs git and the repository's .git)");
    assert!(
        output.status.success(),
        "`git {}` failed (the upgrade test builds the previous release from the repository's \
         history, so it needs the .git directory)\n{}",
        args.join(" "),
        describe(&output)
    );
}
