//! Runtimes: how the daemon starts a shim for a container and reads what it reports.
