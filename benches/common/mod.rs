//! What every bench binary starts with: nothing to do under `cargo test --all-targets`
//! (which runs bench binaries without `--bench`), the count N from the arguments, and a
//! temp dir under /tmp (short unix socket paths).

/// N from `cargo bench --bench NAME [-- N]`, or `None` (after a hint) when not benchmarking.
pub fn count(name: &str, default: usize) -> Option<usize> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("{name}: run with `cargo bench --bench {name} [-- N]`");
        return None;
    }
    Some(
        std::env::args()
            .skip(1)
            .find_map(|a| a.parse().ok())
            .unwrap_or(default),
    )
}

/// A fresh temp dir for one bench run.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("moor-bench-")
        .tempdir_in("/tmp")
        .expect("temp dir in /tmp")
}
