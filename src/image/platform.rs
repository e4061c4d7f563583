//! The platform a pull picks in a manifest list or OCI index: `os/arch[/variant]`, the
//! host's by default, Docker's `--platform` otherwise.

use oci_client::manifest::ImageIndexEntry;

use super::registry::PullError;

/// A platform: `os/arch[/variant]` as in an OCI index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`...
    pub arch: String,
    /// `v8`... or none.
    pub variant: Option<String>,
}

impl Platform {
    /// The host's, in OCI's names.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux".into(),
            arch: arch.into(),
            variant: None,
        }
    }

    /// Parses `os[/arch[/variant]]` (Docker's `--platform`); empty is the host's.
    pub fn parse(text: &str) -> Result<Platform, PullError> {
        if text.is_empty() {
            return Ok(Platform::host());
        }
        let parts: Vec<&str> = text.split('/').collect();
        let ok = parts.len() <= 3
            && parts.iter().all(|p| {
                !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
        if !ok {
            return Err(PullError::BadPlatform(text.into()));
        }
        let host = Platform::host();
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            arch: parts.get(1).map_or(host.arch, |a| a.to_ascii_lowercase()),
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
        })
    }

    pub(super) fn matches(&self, entry: &ImageIndexEntry) -> bool {
        entry.platform.as_ref().is_some_and(|p| {
            p.os.to_string() == self.os
                && p.architecture.to_string() == self.arch
                && (self.variant.is_none() || p.variant == self.variant)
        })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_like_docker() {
        assert_eq!(Platform::parse("").unwrap(), Platform::host());
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!((p.os.as_str(), p.arch.as_str()), ("linux", "arm64"));
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(Platform::parse("linux//x").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
    }
}
