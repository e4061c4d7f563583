//! One module per `moor` command (youki's layout), plus what several share.

pub mod admin;
pub mod create;
pub mod daemon;
pub mod exec;
pub mod image;
pub mod inspect;
pub mod kill;
pub mod logs;
pub mod pause;
pub mod ps;
pub mod pull;
pub mod rename;
pub mod restart;
pub mod rm;
pub mod run;
pub mod start;
pub mod stop;
pub mod version;
pub mod volume;
pub mod wait;

use super::client::encode;
use super::error_line;

/// Runs `op` for every name, printing the name on success and the error otherwise (docker's
/// habit for start, stop, kill, restart and rm); the exit code is 1 if any failed.
pub(crate) fn each_name<F>(names: &[String], mut op: F) -> i32
where
    F: FnMut(&str) -> anyhow::Result<()>,
{
    let mut failed = false;
    for name in names {
        match op(name) {
            Ok(()) => println!("{name}"),
            Err(error) => {
                eprintln!("{}", error_line(&error));
                failed = true;
            }
        }
    }
    i32::from(failed)
}

/// `/containers/NAME` with the name encoded, plus `rest`.
pub(crate) fn container_path(name: &str, rest: &str) -> String {
    format!("/containers/{}{rest}", encode(name))
}
