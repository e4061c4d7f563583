//! Registry credentials as clients send them: the `X-Registry-Auth` header of a pull (base64url
//! JSON) and the body of `POST /auth`, both Docker's `AuthConfig`, turned into oci-client's
//! [`RegistryAuth`].

use actix_web::HttpRequest;
use base64::Engine;
use oci_client::secrets::RegistryAuth;

use crate::api::error::ApiError;
use crate::api::image_types::AuthConfig;

/// The credentials of an `X-Registry-Auth` header (base64url JSON, as `docker login` stores
/// them): a registry token is a bearer token, a username and password basic auth (which
/// oci-client also sends to a bearer realm).
pub fn header(req: &HttpRequest) -> Result<RegistryAuth, ApiError> {
    let Some(header) = req.headers().get("X-Registry-Auth") else {
        return Ok(RegistryAuth::Anonymous);
    };
    let bad = || ApiError::Query {
        name: "X-Registry-Auth",
        value: "not base64url-encoded JSON".into(),
    };
    let text = header.to_str().map_err(|_| bad())?.trim();
    if text.is_empty() {
        return Ok(RegistryAuth::Anonymous);
    }
    let json = decode_base64(text).ok_or_else(bad)?;
    let cfg: AuthConfig = serde_json::from_slice(&json).map_err(|_| bad())?;
    registry_auth(&cfg, "X-Registry-Auth")
}

/// Standard or url-safe base64, padded or not.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let engines = [
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ];
    engines.iter().find_map(|e| e.decode(text).ok())
}

/// The credentials `cfg` gives (`auth`, config.json's `base64(user:password)`, when
/// `username` is empty); an identity token is refused, naming `from`.
pub fn registry_auth(cfg: &AuthConfig, from: &'static str) -> Result<RegistryAuth, ApiError> {
    if !cfg.identitytoken.is_empty() {
        return Err(ApiError::Query {
            name: from,
            value: "identitytoken (an OAuth refresh token) is not supported by moor".into(),
        });
    }
    if !cfg.registrytoken.is_empty() {
        return Ok(RegistryAuth::Bearer(cfg.registrytoken.clone()));
    }
    if !cfg.username.is_empty() {
        return Ok(RegistryAuth::Basic(
            cfg.username.clone(),
            cfg.password.clone(),
        ));
    }
    if cfg.auth.is_empty() {
        return Ok(RegistryAuth::Anonymous);
    }
    let pair = decode_base64(&cfg.auth)
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|p| {
            p.split_once(':')
                .map(|(u, p)| (u.to_string(), p.to_string()))
        });
    match pair {
        Some((user, password)) => Ok(RegistryAuth::Basic(user, password)),
        None => Err(ApiError::Query {
            name: from,
            value: "auth is not base64 of user:password".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(user: &str, auth: &str) -> AuthConfig {
        AuthConfig {
            username: user.into(),
            password: "pw".into(),
            auth: auth.into(),
            ..AuthConfig::default()
        }
    }

    #[test]
    fn credentials_from_each_field() {
        let basic = |a: RegistryAuth| match a {
            RegistryAuth::Basic(u, p) => Some((u, p)),
            _ => None,
        };
        let got = basic(registry_auth(&cfg("u", ""), "auth").unwrap());
        assert_eq!(got, Some(("u".into(), "pw".into())));
        // config.json's form: base64("user:pass").
        let got = basic(registry_auth(&cfg("", "YWxpY2U6czNjcjN0"), "auth").unwrap());
        assert_eq!(got, Some(("alice".into(), "s3cr3t".into())));
        assert!(registry_auth(&cfg("", "bm9jb2xvbg=="), "auth").is_err());
        let token = AuthConfig {
            identitytoken: "t".into(),
            ..AuthConfig::default()
        };
        let err = registry_auth(&token, "auth").unwrap_err().to_string();
        assert!(err.contains("identitytoken"), "{err}");
        let anon = registry_auth(&AuthConfig::default(), "auth").unwrap();
        assert!(matches!(anon, RegistryAuth::Anonymous));
    }
}
