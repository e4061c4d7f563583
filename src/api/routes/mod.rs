//! Route table: one module per resource.

pub mod admin;
pub mod compat;
pub mod containers;
pub mod events;
pub mod exec;
pub mod images;
pub mod logs;
pub mod system;

use std::collections::HashMap;

use actix_web::web;

use crate::api::error::ApiError;

/// Registers every route (called for the versioned scope and for the root).
pub fn configure(cfg: &mut web::ServiceConfig) {
    system::configure(cfg);
    // Before containers: `/containers/prune` must not be taken for `/containers/{id}`.
    compat::configure(cfg);
    containers::configure(cfg);
    images::configure(cfg);
    logs::configure(cfg);
    events::configure(cfg);
    exec::configure(cfg);
    admin::configure(cfg);
}

/// Query parameters as Docker sends them.
pub type Query = web::Query<HashMap<String, String>>;

/// A boolean query parameter: 1/0/true/false/True/False; absent = `default`.
pub fn flag(q: &Query, name: &'static str, default: bool) -> Result<bool, ApiError> {
    match q.get(name).map(String::as_str) {
        None | Some("") => Ok(default),
        Some("1" | "true" | "True" | "TRUE") => Ok(true),
        Some("0" | "false" | "False" | "FALSE") => Ok(false),
        Some(other) => Err(ApiError::Query {
            name,
            value: other.into(),
        }),
    }
}

/// A numeric query parameter.
pub fn number<T: std::str::FromStr>(q: &Query, name: &'static str) -> Result<Option<T>, ApiError> {
    match q.get(name).map(String::as_str) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| ApiError::Query {
            name,
            value: v.into(),
        }),
    }
}
