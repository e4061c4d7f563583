//! For the tests of something slow (a runc call, the disk) that must hold up only its own
//! requests: a request with a deadline, and a CLI call left running in the background.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{raw_request, Daemon, HttpResponse, MOOR};

impl Daemon {
    /// A request that must be answered within `deadline` (the socket's read timeout).
    pub fn within_deadline(&self, method: &str, path: &str, deadline: Duration) -> HttpResponse {
        let request =
            format!("{method} {path} HTTP/1.0\r\nHost: moor\r\nContent-Length: 0\r\n\r\n");
        let began = Instant::now();
        let answer = raw_request(&self.socket(), &request, deadline)
            .unwrap_or_else(|e| panic!("{method} {path} not answered within {deadline:?}: {e}"));
        assert!(
            began.elapsed() < deadline,
            "{method} {path} took {:?}",
            began.elapsed()
        );
        answer
    }

    /// `moor ARGS` in the background (a request that waits on something slow); the caller
    /// waits for it.
    pub fn cli_in_background(&self, args: &[&str]) -> Child {
        Command::new(MOOR)
            .arg("--host")
            .arg(format!("unix://{}", self.socket().display()))
            .args(args)
            .env_remove("MOOR_HOST")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn moor")
    }
}
