//! One module per `moor` command (youki's layout), plus what several share.

pub mod admin;
pub mod admin_nat;
pub mod attach;
pub mod completion;
pub mod cp;
pub mod create;
pub mod daemon;
pub mod exec;
pub mod image;
pub mod image_io;
pub mod inspect;
pub mod kill;
pub mod login;
pub mod logs;
pub mod network;
pub mod pause;
pub mod port;
pub mod ps;
pub mod pull;
pub mod push;
pub mod rename;
pub mod restart;
pub mod rm;
pub mod run;
pub mod start;
pub mod stats;
pub mod stop;
pub mod update;
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

/// The raw JSON of every name's object at `path(name)`, printed as one indented array
/// (docker's `image inspect` and `volume inspect`); a name that fails is reported and the
/// exit code is 1.
pub(crate) fn inspect_raw(
    client: &super::client::Client,
    names: &[String],
    path: impl Fn(&str) -> String,
) -> i32 {
    let mut failed = false;
    let mut raw = Vec::new();
    for name in names {
        match client.get_raw(&path(name)) {
            Ok(body) => raw.push(String::from_utf8_lossy(&body).trim().to_string()),
            Err(e) => {
                eprintln!("{}", error_line(&e.into()));
                failed = true;
            }
        }
    }
    let array = format!("[{}]", raw.join(","));
    println!("{}", super::format::indent_json(&array, "    "));
    i32::from(failed)
}

/// `/containers/NAME` with the name encoded, plus `rest`.
pub(crate) fn container_path(name: &str, rest: &str) -> String {
    format!("/containers/{}{rest}", encode(name))
}
