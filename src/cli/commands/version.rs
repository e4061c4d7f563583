//! `moor version`: the client's version, then the daemon's from `GET /version`.

use crate::api::types::Version;
use crate::cli::client::{Client, API_VERSION};

/// Prints both versions; fails after the client part when the daemon cannot be reached.
pub fn execute(client: &Client) -> anyhow::Result<i32> {
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" API version:       {API_VERSION}");
    println!(" OS/Arch:           {}/{}", std::env::consts::OS, go_arch());
    let server: Version = client.get("/version")?;
    println!();
    println!("Server:");
    println!(" Engine:");
    println!("  Version:          {}", server.version);
    println!(
        "  API version:      {} (minimum version {})",
        server.api_version, server.min_api_version
    );
    println!("  OS/Arch:          {}/{}", server.os, server.arch);
    println!("  Kernel Version:   {}", server.kernel_version);
    Ok(0)
}

/// The architecture under Go's name, as docker prints it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}
