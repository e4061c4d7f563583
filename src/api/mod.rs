//! The Docker Engine API subset moor serves on its unix socket.

pub mod convert;
pub mod detach;
pub mod durable;
pub mod error;
pub mod exec_types;
pub mod fields;
pub mod guard;
pub mod head;
pub mod health;
pub mod hijack;
pub mod image_defaults;
pub mod image_types;
pub mod list_cache;
pub mod mounts;
pub mod network_types;
pub mod peek;
pub mod registry_auth;
pub mod requests;
pub mod resources;
pub mod routes;
pub mod server;
pub mod spec;
pub mod stats_types;
pub mod types;
pub mod update;
pub mod volume_types;
