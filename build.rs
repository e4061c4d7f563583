//! Links `moor-shim` statically (static-pie) when the C toolchain has the static libraries,
//! so that an idle shim maps no ld.so or libc.so and relocates nothing at start: a smaller
//! resident set per container (see BENCHMARKS.md, "shim memory"). Everything else links as
//! usual.
//!
//! rustc links std's system libraries as `-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc` in
//! dynamic mode unless the whole build uses `-C target-feature=+crt-static`, which cargo
//! cannot apply to one binary (proc-macros must stay dynamic). So the shim's link gets a
//! search directory, ahead of the system's, where each of those names is a linker script
//! pointing at the static archive (`libgcc_s` at `libgcc_eh.a`, as crt-static does), plus
//! `-static-pie`. When an archive is missing (no libc6-dev static libraries), nothing is
//! changed and the shim links dynamically.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `-lNAME` as rustc passes it, and the archive that replaces it.
const LIBS: &[(&str, &str)] = &[
    ("gcc_s", "libgcc_eh.a"),
    ("util", "libutil.a"),
    ("rt", "librt.a"),
    ("pthread", "libpthread.a"),
    ("m", "libm.a"),
    ("dl", "libdl.a"),
    ("c", "libc.a"),
];

/// The C compiler's full path for a library file, if it has one.
fn archive(cc: &str, name: &str) -> Option<PathBuf> {
    let out = Command::new(cc)
        .arg(format!("-print-file-name={name}"))
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (path.is_absolute() && path.is_file()).then_some(path)
}

/// Writes one linker script per library into `dir`; false if an archive is missing.
fn write_scripts(cc: &str, dir: &Path) -> bool {
    // -static-pie starts from rcrt1.o.
    let (Some(eh), Some(_)) = (archive(cc, "libgcc_eh.a"), archive(cc, "rcrt1.o")) else {
        return false;
    };
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    for (lib, file) in LIBS {
        let Some(a) = archive(cc, file) else {
            return false;
        };
        // libc needs the unwinder's symbols too, as rustc's crt-static group has them.
        let script = match *lib {
            "c" => format!("GROUP({} {})\n", a.display(), eh.display()),
            _ => format!("INPUT({})\n", a.display()),
        };
        if std::fs::write(dir.join(format!("lib{lib}.so")), script).is_err() {
            return false;
        }
    }
    true
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=MOOR_SHIM_DYNAMIC");
    let target = std::env::var("TARGET").unwrap_or_default();
    let wanted = std::env::var_os("MOOR_SHIM_DYNAMIC").is_none()
        && target.ends_with("-linux-gnu")
        && std::env::var("CARGO_CFG_TARGET_FEATURE").is_ok_and(|f| !f.contains("crt-static"));
    if !wanted {
        return;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let Some(out) = std::env::var_os("OUT_DIR") else {
        return;
    };
    let dir = PathBuf::from(out).join("static-shim");
    if write_scripts(&cc, &dir) {
        println!("cargo:rustc-link-arg-bin=moor-shim=-L{}", dir.display());
        println!("cargo:rustc-link-arg-bin=moor-shim=-static-pie");
    } else {
        println!("cargo:warning=static C libraries not found: moor-shim links dynamically");
    }
}
