//! The Docker Engine API subset moor serves on its unix socket.

pub mod types;
