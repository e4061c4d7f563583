//! A short-lived helper process (`systemctl`, a new moor binary's check) run to its end
//! within a deadline: its output, or `None` once the deadline passed (it is then killed).

use std::io;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Runs `cmd` with no stdin and its stdout and stderr collected; `Ok(None)` when it did not
/// end within `deadline` (it was sent SIGKILL). Blocking.
pub fn output_within(cmd: &mut Command, deadline: Duration) -> io::Result<Option<Output>> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline) {
        Ok(out) => out.map(Some),
        Err(_) => {
            // Not reaped yet by the waiting thread, so the pid is still the child's.
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_or_none_past_the_deadline() {
        let out = output_within(Command::new("echo").arg("hi"), Duration::from_secs(5));
        assert_eq!(out.unwrap().unwrap().stdout, b"hi\n");
        let slow = output_within(Command::new("sleep").arg("5"), Duration::from_millis(100));
        assert!(slow.unwrap().is_none());
        assert!(
            output_within(&mut Command::new("/nonexistent/x"), Duration::from_secs(1)).is_err()
        );
    }
}
