//! moor-shim: detaches, starts the container process, drains its output into the log,
//! reaps it and writes its exit status. std, libc, nix and serde only: no async runtime.

pub mod protocol;
