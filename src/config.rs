//! daemon.json: Docker's names and format where they exist (`live-restore`,
//! `default-runtime`, `runtimes`, `log-opts`, `shutdown-timeout`...).
//! A missing file means the defaults; a malformed one is an error naming line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

/// Keys Docker's daemon.json knows that moor accepts without acting on them (warned, not refused).
const DOCKER_ONLY_KEYS: &[&str] = &[
    "bip",
    "bridge",
    "dns",
    "exec-opts",
    "experimental",
    "features",
    "hosts",
    "insecure-registries",
    "ip-forward",
    "iptables",
    "ipv6",
    "log-driver",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "mtu",
    "registry-mirrors",
    "storage-driver",
    "storage-opts",
    "userland-proxy",
];

/// One entry of `runtimes`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeEntry {
    /// Path of the OCI runtime binary.
    pub path: PathBuf,
    /// Extra global options passed to every call of the runtime (Docker's `runtimeArgs`).
    #[serde(default, rename = "runtimeArgs")]
    pub runtime_args: Vec<String>,
}

/// The parsed daemon.json.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DaemonConfig {
    /// Keep containers running when the daemon stops (Docker's default: false).
    #[serde(default)]
    pub live_restore: bool,
    /// Runtime for containers that do not name one: `process` or `runc`.
    #[serde(default)]
    pub default_runtime: Option<String>,
    /// Named OCI runtimes (Docker's `runtimes`).
    #[serde(default)]
    pub runtimes: BTreeMap<String, RuntimeEntry>,
    /// Default log options for new containers (`max-size`, `max-file`).
    #[serde(default)]
    pub log_opts: BTreeMap<String, String>,
    /// Seconds to wait for containers at shutdown without live-restore (Docker: 15).
    #[serde(default)]
    pub shutdown_timeout: Option<u32>,
    /// State root (Docker's `data-root`); the command line wins.
    #[serde(default)]
    pub data_root: Option<PathBuf>,
    /// Run directory (Docker's `exec-root`); the command line wins.
    #[serde(default)]
    pub exec_root: Option<PathBuf>,
    /// Verbose logging.
    #[serde(default)]
    pub debug: bool,
    /// Log level name (`debug`, `info`, `warn`, `error`).
    #[serde(default)]
    pub log_level: Option<String>,
    /// Free-form daemon labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Every other key: Docker-only keys are warned about, others refused.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("the empty config parses")
    }
}

/// Why daemon.json could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// Syntax error or wrong type (serde_json's message names line and column).
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parse failure.
        #[source]
        source: serde_json::Error,
    },
    /// A key neither moor nor Docker knows.
    #[error("{path}: unknown key {key:?}{hint}")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// ", did you mean ...?" or empty.
        hint: String,
    },
}

/// What loading found besides the config: keys accepted but not acted on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// The configuration.
    pub config: DaemonConfig,
    /// Docker keys moor does not implement (warned at start).
    pub ignored_keys: Vec<String>,
}

/// Reads daemon.json; a missing file gives the defaults.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.into(),
                source,
            })
        }
    };
    parse(path, &text)
}

/// Parses daemon.json text (`path` only names it in errors).
pub fn parse(path: &Path, text: &str) -> Result<Loaded, ConfigError> {
    let config: DaemonConfig = serde_json::from_str(text).map_err(|source| ConfigError::Parse {
        path: path.into(),
        source,
    })?;
    let mut ignored_keys = Vec::new();
    for key in config.other.keys() {
        if DOCKER_ONLY_KEYS.contains(&key.as_str()) {
            ignored_keys.push(key.clone());
        } else {
            return Err(ConfigError::UnknownKey {
                path: path.into(),
                key: key.clone(),
                hint: did_you_mean(key),
            });
        }
    }
    Ok(Loaded {
        config,
        ignored_keys,
    })
}

const KNOWN_KEYS: &[&str] = &[
    "live-restore",
    "default-runtime",
    "runtimes",
    "log-opts",
    "shutdown-timeout",
    "data-root",
    "exec-root",
    "debug",
    "log-level",
    "labels",
];

fn did_you_mean(key: &str) -> String {
    KNOWN_KEYS
        .iter()
        .map(|k| (edit_distance(key, k), k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| format!(", did you mean {k:?}?"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_docker() {
        let c = DaemonConfig::default();
        assert!(!c.live_restore);
        assert!(c.runtimes.is_empty());
    }

    #[test]
    fn parses_docker_names() {
        let l = parse(
            Path::new("d.json"),
            r#"{"live-restore": true, "log-opts": {"max-size": "1m"}, "storage-driver": "overlay2"}"#,
        )
        .unwrap();
        assert!(l.config.live_restore);
        assert_eq!(l.config.log_opts["max-size"], "1m");
        assert_eq!(l.ignored_keys, vec!["storage-driver".to_string()]);
    }

    #[test]
    fn misspelt_key_is_refused_with_a_hint() {
        let e = parse(Path::new("d.json"), r#"{"live-restor": true}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.json: unknown key \"live-restor\", did you mean \"live-restore\"?"
        );
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let e = parse(Path::new("d.json"), "{\n  \"live-restore\": true,,\n}").unwrap_err();
        assert!(e.to_string().contains("line 2 column"), "{e}");
    }

    #[test]
    fn wrong_type_is_refused() {
        assert!(parse(Path::new("d.json"), r#"{"live-restore": "yes"}"#).is_err());
    }

    #[test]
    fn missing_file_gives_defaults() {
        let l = load(Path::new("/nonexistent/moor/daemon.json")).unwrap();
        assert_eq!(l.config, DaemonConfig::default());
    }
}
