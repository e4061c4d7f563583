//! `POST /auth` (`docker login`): checks the credentials against the registry (see
//! [`crate::image::login`]) and answers `{"Status":"Login Succeeded","IdentityToken":""}`;
//! refused credentials are a 401 with Docker's message. The daemon keeps nothing: the
//! client stores the credentials and sends them with each pull.

use actix_web::{web, HttpResponse};

use crate::api::error::ApiError;
use crate::api::image_types::{AuthConfig, AuthResponse};
use crate::api::registry_auth::registry_auth;
use crate::api::server::ApiState;
use crate::config::registry::InsecureRegistries;
use crate::image::login::{self, Credentials};
use oci_client::secrets::RegistryAuth;

/// Registers the route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth", web::post().to(auth));
}

async fn auth(
    state: web::Data<ApiState>,
    body: web::Json<AuthConfig>,
) -> Result<HttpResponse, ApiError> {
    let cfg = body.into_inner();
    let creds = match registry_auth(&cfg, "auth")? {
        RegistryAuth::Basic(username, password) => Credentials { username, password },
        RegistryAuth::Bearer(_) => {
            return Err(ApiError::Unsupported {
                option: "a login with registrytoken",
            })
        }
        RegistryAuth::Anonymous => {
            return Err(ApiError::Query {
                name: "username",
                value: String::new(),
            })
        }
    };
    let config = state.shared.config.get();
    let insecure = InsecureRegistries::parse(&config.insecure_registries).map_err(|_| {
        ApiError::Unsupported {
            option: "a malformed insecure-registries",
        }
    })?;
    login::login(&cfg.serveraddress, &creds, &insecure).await?;
    tracing::info!(server = %cfg.serveraddress, user = %creds.username, "registry login checked");
    Ok(HttpResponse::Ok().json(AuthResponse {
        status: "Login Succeeded".into(),
        identity_token: String::new(),
    }))
}
