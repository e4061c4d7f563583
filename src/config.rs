//! daemon.json: Docker's names and format where they exist.
