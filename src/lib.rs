//! moor: a container supervisor whose containers never notice the daemon going away.
//!
//! The daemon (`daemon`, `api`, `config`, `runtime`), the CLI (`cli`) and the shim
//! (`shim`, `identity`) live in this crate; the state machine and its store in `moor-state`.
//! The shim's modules use std, libc, nix and serde only.

pub mod admin;
pub mod api;
pub mod archive;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod host;
pub mod humanize;
#[allow(unsafe_code)]
pub mod identity;
pub mod image;
pub mod logging;
pub mod logs;
pub mod network;
pub mod runtime;
pub mod shim;
