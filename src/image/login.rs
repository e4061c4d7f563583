//! Registry login (`POST /auth`, what `docker login` calls): the credentials are checked
//! against the registry's `/v2/` endpoint as Docker does, following the challenge it answers
//! with: `Basic` (the credentials sent to `/v2/`), or `Bearer realm=...,service=...` (a token
//! asked of the realm with the credentials, then sent to `/v2/`). Nothing is stored by the
//! daemon: the client keeps the credentials and sends them with each pull
//! (`X-Registry-Auth`).

use std::collections::BTreeMap;

use serde::Deserialize;
use thiserror::Error;

use super::registry::scheme_for;
use crate::config::registry::InsecureRegistries;

/// Why a login failed.
#[derive(Debug, Error)]
pub enum LoginError {
    /// The registry (or its token realm) refused the credentials (Docker's text).
    #[error("login attempt to {endpoint} failed with status: {status}")]
    Denied {
        /// The URL that refused them.
        endpoint: String,
        /// `401 Unauthorized`...
        status: String,
    },
    /// The registry could not be reached or did not answer.
    #[error("cannot reach the registry at {endpoint}")]
    Unreachable {
        /// The URL tried.
        endpoint: String,
        /// What the HTTP client said.
        #[source]
        source: reqwest::Error,
    },
    /// A `WWW-Authenticate` challenge moor cannot follow.
    #[error("{endpoint} asks for an unsupported authentication: {challenge:?}")]
    Challenge {
        /// The URL that answered it.
        endpoint: String,
        /// The header as received.
        challenge: String,
    },
    /// The token realm answered without a token.
    #[error("the token realm {realm} answered without a token")]
    NoToken {
        /// The realm's URL.
        realm: String,
    },
    /// A server address that is not `[scheme://]host[:port][/path]`.
    #[error("invalid server address {0:?}")]
    BadServer(String),
}

impl LoginError {
    /// Whether the credentials were refused (Docker's 401).
    pub fn is_denied(&self) -> bool {
        matches!(self, LoginError::Denied { .. })
    }

    /// Whether the request is at fault (400).
    pub fn is_bad_request(&self) -> bool {
        matches!(self, LoginError::BadServer(_))
    }
}

/// A user name and password.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The user.
    pub username: String,
    /// The password (or access token).
    pub password: String,
}

/// The registry host a `serveraddress` names: the scheme and path dropped, Docker Hub's
/// names (empty, `docker.io`, `https://index.docker.io/v1/`) mapped to its registry.
pub fn server_host(server: &str) -> Result<String, LoginError> {
    let rest = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    let host = rest
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let valid = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !valid {
        return Err(LoginError::BadServer(server.to_string()));
    }
    Ok(match host.as_str() {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            "registry-1.docker.io".to_string()
        }
        _ => host,
    })
}

/// A parsed `WWW-Authenticate` header: its scheme (lowercase) and parameters.
fn parse_challenge(header: &str) -> (String, BTreeMap<String, String>) {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut params = BTreeMap::new();
    let mut rest = rest.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
            None => after.split_once(',').unwrap_or((after, "")),
        };
        params.insert(key, value.to_string());
        rest = next.trim_start_matches(',').trim();
    }
    (scheme.to_ascii_lowercase(), params)
}

/// A token realm's answer (`token` or OAuth's `access_token`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TokenAnswer {
    token: String,
    access_token: String,
}

/// Checks `creds` against the registry `server`; Ok when it accepts them (or needs none).
pub async fn login(
    server: &str,
    creds: &Credentials,
    insecure: &InsecureRegistries,
) -> Result<(), LoginError> {
    let host = server_host(server)?;
    let endpoint = format!("{}://{host}/v2/", scheme_for(&host, insecure).await);
    let unreachable = |endpoint: &str| {
        let endpoint = endpoint.to_string();
        move |source| LoginError::Unreachable { endpoint, source }
    };
    let http = reqwest::Client::new();
    let first = http
        .get(&endpoint)
        .send()
        .await
        .map_err(unreachable(&endpoint))?;
    if first.status().is_success() {
        return Ok(());
    }
    let header = first
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (scheme, params) = parse_challenge(&header);
    let request = http.get(&endpoint);
    let request = match (scheme.as_str(), params.get("realm")) {
        ("basic", _) => request.basic_auth(&creds.username, Some(&creds.password)),
        ("bearer", Some(realm)) => {
            let token = token(&http, realm, &params, creds).await?;
            request.bearer_auth(token)
        }
        _ => {
            return Err(LoginError::Challenge {
                endpoint,
                challenge: header,
            })
        }
    };
    let answer = request.send().await.map_err(unreachable(&endpoint))?;
    match answer.status().is_success() {
        true => Ok(()),
        false => Err(LoginError::Denied {
            endpoint,
            status: answer.status().to_string(),
        }),
    }
}

/// Asks the token realm for a token with the credentials (Docker's login: no scope,
/// `account` and `service` given).
async fn token(
    http: &reqwest::Client,
    realm: &str,
    params: &BTreeMap<String, String>,
    creds: &Credentials,
) -> Result<String, LoginError> {
    let mut query = vec![("account", creds.username.as_str())];
    if let Some(service) = params.get("service") {
        query.push(("service", service));
    }
    let answer = http
        .get(realm)
        .query(&query)
        .basic_auth(&creds.username, Some(&creds.password))
        .send()
        .await
        .map_err(|source| LoginError::Unreachable {
            endpoint: realm.to_string(),
            source,
        })?;
    if !answer.status().is_success() {
        return Err(LoginError::Denied {
            endpoint: realm.to_string(),
            status: answer.status().to_string(),
        });
    }
    let body: TokenAnswer = answer.json().await.unwrap_or_default();
    let token = match body.token.is_empty() {
        true => body.access_token,
        false => body.token,
    };
    match token.is_empty() {
        true => Err(LoginError::NoToken {
            realm: realm.to_string(),
        }),
        false => Ok(token),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let (scheme, p) = parse_challenge(
            r#"Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a:pull,push""#,
        );
        assert_eq!(scheme, "bearer");
        assert_eq!(p["realm"], "http://127.0.0.1:1/token");
        assert_eq!(p["service"], "reg");
        assert_eq!(p["scope"], "repository:a:pull,push");
        let (scheme, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(
            (scheme.as_str(), p["realm"].as_str()),
            ("basic", "Registry Realm")
        );
    }

    #[test]
    fn server_addresses_name_a_host() {
        assert_eq!(server_host("127.0.0.1:5000").unwrap(), "127.0.0.1:5000");
        assert_eq!(
            server_host("http://reg.example:5000/v2/").unwrap(),
            "reg.example:5000"
        );
        assert_eq!(
            server_host("https://index.docker.io/v1/").unwrap(),
            "registry-1.docker.io"
        );
        assert_eq!(server_host("").unwrap(), "registry-1.docker.io");
        assert!(server_host("a b").is_err());
    }
}
