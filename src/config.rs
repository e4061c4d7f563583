//! daemon.json: Docker's names and format where they exist (`live-restore`,
//! `default-runtime`, `runtimes`, `log-opts`, `shutdown-timeout`...).
//! A missing file means the defaults; a malformed one is an error naming line and column.

pub mod log_opts;
pub mod options;
pub mod registry;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

/// Keys Docker's daemon.json knows that moor does not implement: refused by name (never
/// accepted and ignored), so a Docker daemon.json brought over says what moor would not do.
const DOCKER_ONLY_KEYS: &[&str] = &[
    "dns",
    "exec-opts",
    "experimental",
    "features",
    "hosts",
    "ip-forward",
    "iptables",
    "ipv6",
    "log-driver",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "mtu",
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
    /// moor's own: the most bytes one image import may unpack to (a size such as `16g`,
    /// binary units as `--memory`); None: [`DEFAULT_IMAGE_UNPACK_LIMIT`]. Reloadable.
    #[serde(default, deserialize_with = "image_limit")]
    pub image_unpack_limit: Option<u64>,
    /// Registries reached over plain http (Docker's `insecure-registries`: `host[:port]` or
    /// a CIDR); loopback ones always are. Reloadable: read at each pull.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Docker's `registry-mirrors`: `http[s]://host[:port]` endpoints a pull of a Docker Hub
    /// image tries in order before Docker Hub itself. Reloadable: read at each pull.
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
    /// Docker's `bridge`: the Linux bridge of the default network (`moor0` when unset);
    /// `"none"` disables the default network (containers then default to `none`).
    #[serde(default)]
    pub bridge: Option<String>,
    /// Docker's `bip`: the bridge's address with the subnet's prefix (`172.30.0.1/16`);
    /// unset, a default pool that overlaps no route of the host is chosen at first start.
    #[serde(default)]
    pub bip: Option<String>,
    /// Every other key: Docker-only keys are warned about, others refused.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// The default cap on an import's unpacked size: 16 GiB. Above the largest images in common
/// use (CUDA and ML images unpack to 10-15 GB), far below what a decompression bomb reaches,
/// and a bound on the disk one request can fill. daemon.json `image-unpack-limit` changes it.
pub const DEFAULT_IMAGE_UNPACK_LIMIT: u64 = 16 << 30;

impl DaemonConfig {
    /// The cap on an import's unpacked size in force.
    pub fn image_unpack_limit(&self) -> u64 {
        self.image_unpack_limit
            .unwrap_or(DEFAULT_IMAGE_UNPACK_LIMIT)
    }
}

impl DaemonConfig {
    /// The default bridge network's settings; None when `bridge` is `"none"`. An error
    /// names the key and what it must be.
    pub fn bridge_settings(&self) -> Result<Option<crate::network::BridgeSettings>, String> {
        let name = self
            .bridge
            .as_deref()
            .unwrap_or(crate::network::DEFAULT_BRIDGE);
        let valid = !name.is_empty()
            && name.len() <= 15
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid {
            return Err(format!(
                "bridge: {name:?} is not an interface name (1-15 letters, digits, '-', '_', '.') \
                 or \"none\""
            ));
        }
        let bip = match self.bip.as_deref() {
            None => None,
            Some(text) => Some(crate::network::parse_bip(text).ok_or_else(|| {
                format!("bip: {text:?} is not an address with its subnet's prefix, such as \"172.30.0.1/16\"")
            })?),
        };
        if name == "none" {
            return match bip {
                Some(_) => Err("bip: set, but bridge is \"none\": remove one of them".into()),
                None => Ok(None),
            };
        }
        Ok(Some(crate::network::BridgeSettings {
            name: name.to_string(),
            bip,
        }))
    }
}

/// `image-unpack-limit`: a positive size string (`16g`, `512m`, `1000000`) or number of bytes.
fn image_limit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    let value = serde_json::Value::deserialize(d)?;
    let bytes = match &value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => crate::humanize::parse_size(s),
        _ => None,
    };
    match bytes {
        Some(n) if n > 0 => Ok(Some(n)),
        _ => Err(D::Error::custom(format!(
            "image-unpack-limit: invalid size {value}: a positive number of bytes or a size \
             such as \"16g\""
        ))),
    }
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
    #[error("{path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parse failure.
        #[source]
        source: serde_json::Error,
    },
    /// `log-opts` that Docker's json-file driver (or moor) refuses.
    #[error("{path}: log-opts: {reason}")]
    LogOpts {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the option.
        reason: crate::config::log_opts::LogOptError,
    },
    /// A registry option moor refuses (`insecure-registries` or `registry-mirrors` malformed).
    #[error("{path}: {reason}")]
    Registry {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the option.
        reason: String,
    },
    /// `bridge` or `bip` malformed.
    #[error("{path}: {reason}")]
    Bridge {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        reason: String,
    },
    /// A key set both by a `moor daemon` flag and in the file (Docker refuses that too).
    #[error(
        "{path}: the following directives are specified both as a flag and in the \
         configuration file: {key}"
    )]
    FlagAndFile {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
    },
    /// `--validate` of a file that is not there.
    #[error("{path} does not exist")]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// A key neither moor nor Docker knows.
    #[error("{path}: {key:?} is a Docker option moor does not implement yet: remove it")]
    NotImplemented {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
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

/// What loading found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// The configuration.
    pub config: DaemonConfig,
    /// The keys the file sets (none when there is no file).
    pub keys: Vec<String>,
}

impl Loaded {
    /// `--live-restore` given: on, unless the file sets the key too (refused, as Docker).
    pub fn with_live_restore_flag(mut self, path: &Path, flag: bool) -> Result<Self, ConfigError> {
        if !flag {
            return Ok(self);
        }
        if self.keys.iter().any(|k| k == "live-restore") {
            return Err(ConfigError::FlagAndFile {
                path: path.into(),
                key: "live-restore",
            });
        }
        self.config.live_restore = true;
        Ok(self)
    }
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
    crate::config::log_opts::LogOpts::parse(&config.log_opts).map_err(|reason| {
        ConfigError::LogOpts {
            path: path.into(),
            reason,
        }
    })?;
    let registry = |reason| ConfigError::Registry {
        path: path.into(),
        reason,
    };
    crate::config::registry::InsecureRegistries::parse(&config.insecure_registries)
        .map_err(registry)?;
    crate::config::registry::Mirror::parse_all(&config.registry_mirrors).map_err(registry)?;
    config
        .bridge_settings()
        .map_err(|reason| ConfigError::Bridge {
            path: path.into(),
            reason,
        })?;
    if let Some(key) = config.other.keys().next() {
        return Err(if DOCKER_ONLY_KEYS.contains(&key.as_str()) {
            ConfigError::NotImplemented {
                path: path.into(),
                key: key.clone(),
            }
        } else {
            ConfigError::UnknownKey {
                path: path.into(),
                key: key.clone(),
                hint: did_you_mean(key),
            }
        });
    }
    // Parsed already, so this cannot fail; only the keys are kept.
    let keys = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    Ok(Loaded { config, keys })
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
    "image-unpack-limit",
    "insecure-registries",
    "registry-mirrors",
    "bridge",
    "bip",
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
            r#"{"live-restore": true, "log-opts": {"max-size": "1m"}}"#,
        )
        .unwrap();
        assert!(l.config.live_restore);
        assert_eq!(l.config.log_opts["max-size"], "1m");
        let e = parse(Path::new("d.json"), r#"{"storage-driver": "overlay2"}"#).unwrap_err();
        assert_eq!(
            crate::host::chain(&e),
            "d.json: \"storage-driver\" is a Docker option moor does not implement yet: remove it"
        );
    }

    #[test]
    fn misspelt_key_is_refused_with_a_hint() {
        let e = parse(Path::new("d.json"), r#"{"live-restor": true}"#).unwrap_err();
        assert_eq!(
            crate::host::chain(&e),
            "d.json: unknown key \"live-restor\", did you mean \"live-restore\"?"
        );
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let e = parse(Path::new("d.json"), "{\n  \"live-restore\": true,,\n}").unwrap_err();
        assert!(crate::host::chain(&e).contains("line 2 column"), "{e}");
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

    #[test]
    fn log_opts_are_checked_as_docker_does() {
        let e = parse(
            Path::new("d.json"),
            r#"{"log-opts": {"max-size": "garbage"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            crate::host::chain(&e),
            "d.json: log-opts: max-size: invalid size: 'garbage'"
        );
        let e = parse(Path::new("d.json"), r#"{"log-opts": {"max-fil": "3"}}"#).unwrap_err();
        assert!(
            crate::host::chain(&e).contains("unknown log opt 'max-fil' for json-file log driver"),
            "{e}"
        );
        assert!(parse(
            Path::new("d.json"),
            r#"{"log-opts": {"max-size": "10m", "max-file": "3"}}"#
        )
        .is_ok());
    }

    #[test]
    fn image_unpack_limit_takes_sizes_and_refuses_garbage() {
        let limit =
            |json: &str| parse(Path::new("d.json"), json).map(|l| l.config.image_unpack_limit());
        assert_eq!(limit("{}").unwrap(), DEFAULT_IMAGE_UNPACK_LIMIT);
        assert_eq!(limit(r#"{"image-unpack-limit": "2g"}"#).unwrap(), 2 << 30);
        assert_eq!(limit(r#"{"image-unpack-limit": 4096}"#).unwrap(), 4096);
        for bad in [r#""lots""#, "0", "-1", "true"] {
            let e = limit(&format!(r#"{{"image-unpack-limit": {bad}}}"#)).unwrap_err();
            assert!(crate::host::chain(&e).contains("image-unpack-limit"), "{e}");
        }
    }

    #[test]
    fn bridge_and_bip_are_honoured_or_refused_by_name() {
        let p = |json: &str| parse(Path::new("d.json"), json).map(|l| l.config.bridge_settings());
        let default = p("{}").unwrap().unwrap().unwrap();
        assert_eq!((default.name.as_str(), default.bip), ("moor0", None));
        assert_eq!(p(r#"{"bridge": "none"}"#).unwrap().unwrap(), None);
        let bip = p(r#"{"bip": "10.88.0.1/16"}"#).unwrap().unwrap().unwrap();
        assert_eq!(bip.bip, Some(("10.88.0.1".parse().unwrap(), 16)));
        for bad in [
            r#"{"bip": "10.88.0.0/16"}"#,
            r#"{"bip": "nonsense"}"#,
            r#"{"bridge": "none", "bip": "10.88.0.1/16"}"#,
            r#"{"bridge": "a/b"}"#,
            r#"{"bridge": "averyveryverylongname"}"#,
        ] {
            let e = p(bad).unwrap_err().to_string();
            assert!(e.contains("bip") || e.contains("bridge"), "{bad}: {e}");
        }
    }

    #[test]
    fn registry_options_are_parsed_or_refused() {
        let p = |json: &str| parse(Path::new("d.json"), json);
        let ok = p(r#"{"insecure-registries": ["reg:5000", "10.0.0.0/8"]}"#).expect("parse");
        assert_eq!(ok.config.insecure_registries.len(), 2);
        let e = p(r#"{"insecure-registries": ["http://reg"]}"#).unwrap_err();
        assert!(
            crate::host::chain(&e).contains("insecure-registries"),
            "{e}"
        );
        let ok = p(r#"{"registry-mirrors": ["https://mirror.example", "http://10.0.0.1:5000/"]}"#);
        assert_eq!(ok.expect("parse").config.registry_mirrors.len(), 2);
        let e = p(r#"{"registry-mirrors": ["mirror.example"]}"#).unwrap_err();
        assert!(crate::host::chain(&e).contains("registry-mirrors"), "{e}");
        assert!(p(r#"{"registry-mirrors": []}"#).is_ok());
    }
}
