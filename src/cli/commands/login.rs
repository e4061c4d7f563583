//! `moor login` / `moor logout` and the credentials `moor pull` sends. Like the docker CLI,
//! moor keeps registry credentials in `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`) under `auths`, as `base64(user:password)`: a `docker login` is
//! seen by `moor pull` and the other way round. The daemon checks a login against the
//! registry (`POST /auth`) and stores nothing. Credential helpers (`credsStore`,
//! `credHelpers`) are not supported: a config naming one for the registry is refused.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{bail, Context};
use base64::Engine;
use clap::Args;
use serde_json::{Map, Value};

use crate::api::image_types::{AuthConfig, AuthResponse};
use crate::cli::client::Client;

/// Docker Hub's key in config.json.
const HUB: &str = "https://index.docker.io/v1/";

/// `moor login` options.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry (`host[:port]`); Docker Hub when omitted.
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
    /// The user name.
    #[arg(short, long)]
    pub username: String,
    /// The password (prefer --password-stdin: a flag shows in the process list).
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `moor logout` options.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry; Docker Hub when omitted.
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

/// The config file: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
fn config_path() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("config.json"));
    }
    let home = std::env::var_os("HOME").context("neither DOCKER_CONFIG nor HOME is set")?;
    Ok(PathBuf::from(home).join(".docker/config.json"))
}

fn read_config(path: &PathBuf) -> anyhow::Result<Map<String, Value>> {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice(&bytes)
            .with_context(|| format!("parse {}", path.display()))?
        {
            Value::Object(map) => Ok(map),
            _ => bail!("{} is not a JSON object", path.display()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

fn write_config(path: &PathBuf, config: &Map<String, Value>) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(config).context("encode config.json")?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("write {}", tmp.display()))?;
    // Credentials: readable by the user only, as the docker CLI leaves it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))
}

/// The config.json key of a server: `host[:port]`, Docker Hub's own key for it.
fn key_of(server: Option<&str>) -> String {
    let server = server.unwrap_or_default();
    let host = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server)
        .split('/')
        .next()
        .unwrap_or_default();
    match host {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => HUB.to_string(),
        _ => host.to_string(),
    }
}

/// The registry an image name pulls from, as a config.json key (Docker's rule: a first
/// component with a `.` or `:`, or `localhost`, is a registry host).
pub fn key_of_image(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => {
            key_of(Some(first))
        }
        _ => HUB.to_string(),
    }
}

/// A credential helper named for `key`: moor cannot run it.
fn check_no_helper(config: &Map<String, Value>, key: &str) -> anyhow::Result<()> {
    let helper = config
        .get("credHelpers")
        .and_then(|h| h.get(key))
        .or_else(|| config.get("credsStore"))
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty());
    match helper {
        Some(h) => bail!(
            "config.json names the credential helper {h:?} for {key}: moor supports only \
             credentials stored in config.json auths"
        ),
        None => Ok(()),
    }
}

/// The `X-Registry-Auth` value for pulling `image`: the stored credentials of its registry,
/// None when there are none.
pub fn registry_auth_for(image: &str) -> anyhow::Result<Option<String>> {
    let key = key_of_image(image);
    let config = read_config(&config_path()?)?;
    let entry = config
        .get("auths")
        .and_then(|a| a.as_object())
        .and_then(|a| {
            a.iter()
                .find(|(k, _)| key_of(Some(k)) == key)
                .map(|(_, v)| v)
        });
    let Some(auth) = entry.and_then(|e| e.get("auth")).and_then(Value::as_str) else {
        check_no_helper(&config, &key)?;
        return Ok(None);
    };
    let cfg = AuthConfig {
        auth: auth.to_string(),
        serveraddress: key,
        ..AuthConfig::default()
    };
    let json = serde_json::to_vec(&cfg).context("encode the credentials")?;
    Ok(Some(base64::engine::general_purpose::URL_SAFE.encode(json)))
}

fn password(args: &LoginArgs) -> anyhow::Result<String> {
    if let Some(p) = &args.password {
        return Ok(p.clone());
    }
    if !args.password_stdin {
        bail!("give the password with --password-stdin (or --password)");
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password: ");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("read the password")?;
    let pass = line.trim_end_matches(['\n', '\r']).to_string();
    if pass.is_empty() {
        bail!("the password is empty");
    }
    Ok(pass)
}

/// Runs `moor login`: the daemon checks the credentials, then they are stored.
pub fn execute_login(client: &Client, args: &LoginArgs) -> anyhow::Result<i32> {
    let key = key_of(args.server.as_deref());
    let path = config_path()?;
    let mut config = read_config(&path)?;
    check_no_helper(&config, &key)?;
    let password = password(args)?;
    let request = AuthConfig {
        username: args.username.clone(),
        password: password.clone(),
        serveraddress: key.clone(),
        ..AuthConfig::default()
    };
    let answer: AuthResponse = client.post("/auth", &request)?;
    let pair = format!("{}:{password}", args.username);
    let auth = base64::engine::general_purpose::STANDARD.encode(pair);
    let auths = config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(auths) = auths.as_object_mut() else {
        bail!("{}: auths is not an object", path.display());
    };
    auths.insert(key, serde_json::json!({ "auth": auth }));
    write_config(&path, &config)?;
    println!("{}", answer.status);
    Ok(0)
}

/// Runs `moor logout`: the stored credentials of the server are removed.
pub fn execute_logout(args: &LogoutArgs) -> anyhow::Result<i32> {
    let key = key_of(args.server.as_deref());
    let path = config_path()?;
    let mut config = read_config(&path)?;
    let removed = config
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .map(|a| {
            let before = a.len();
            a.retain(|k, _| key_of(Some(k)) != key);
            before != a.len()
        })
        .unwrap_or(false);
    if !removed {
        println!("Not logged in to {key}");
        return Ok(0);
    }
    write_config(&path, &config)?;
    println!("Removing login credentials for {key}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_name_their_registry() {
        assert_eq!(key_of_image("busybox"), HUB);
        assert_eq!(key_of_image("library/busybox:1"), HUB);
        assert_eq!(key_of_image("docker.io/library/busybox"), HUB);
        assert_eq!(key_of_image("127.0.0.1:5000/app:v1"), "127.0.0.1:5000");
        assert_eq!(key_of_image("localhost/app"), "localhost");
        assert_eq!(
            key_of(Some("http://reg.example:5000/v2/")),
            "reg.example:5000"
        );
    }
}
