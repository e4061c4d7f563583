//! The `moor` command line: argument parsing and one module per command.
//!
//! Every command but `daemon` talks to the daemon through [`client::Client`] with the Docker
//! Engine API, calling it the way the docker CLI does.

pub mod args;
pub mod client;
pub mod commands;
pub mod container_opts;
pub mod demux;
pub mod format;
pub mod session;
pub mod template;
#[allow(unsafe_code)]
pub mod terminal;

use args::{Cli, Command};
use client::{Client, ClientError};

/// Runs one parsed command line; the answer is the process's exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    if let Command::Daemon(daemon) = &cli.command {
        let host = cli.host_given.then_some(cli.host.as_str());
        return commands::daemon::execute(daemon, host);
    }
    if let Command::Admin(admin) = &cli.command {
        return commands::admin::execute(&cli.host, admin);
    }
    match &cli.command {
        Command::Completion(args) => return commands::completion::completion(args),
        Command::Man(args) => return commands::completion::man(args),
        _ => {}
    }
    let client = Client::new(&cli.host)?;
    match &cli.command {
        Command::Daemon(_) | Command::Admin(_) | Command::Completion(_) | Command::Man(_) => {
            unreachable!("handled above")
        }
        Command::Run(args) => commands::run::execute(&client, args),
        Command::Create(args) => commands::create::execute(&client, args),
        Command::Exec(args) => commands::exec::execute(&client, args),
        Command::Start(args) => commands::start::execute(&client, args),
        Command::Attach(args) => commands::attach::execute(&client, args),
        Command::Stop(args) => Ok(commands::stop::execute(&client, args)),
        Command::Kill(args) => Ok(commands::kill::execute(&client, args)),
        Command::Restart(args) => Ok(commands::restart::execute(&client, args)),
        Command::Rm(args) => Ok(commands::rm::execute(&client, args)),
        Command::Wait(args) => Ok(commands::wait::execute(&client, args)),
        Command::Stats(args) => commands::stats::execute(&client, args),
        Command::Cp(args) => commands::cp::execute(&client, args),
        Command::Export(args) => commands::cp::export(&client, args),
        Command::Diff(args) => commands::cp::diff(&client, args),
        Command::Pause(args) => Ok(commands::pause::pause(&client, args)),
        Command::Unpause(args) => Ok(commands::pause::unpause(&client, args)),
        Command::Update(args) => Ok(commands::update::update(&client, args)),
        Command::Ps(args) => commands::ps::execute(&client, args),
        Command::Inspect(args) => commands::inspect::execute(&client, args),
        Command::Logs(args) => commands::logs::execute(&client, args),
        Command::Rename(args) => commands::rename::execute(&client, args),
        Command::Port(args) => commands::port::execute(&client, args),
        Command::Pull(args) => commands::pull::execute(&client, args),
        Command::Push(args) => commands::push::execute(&client, args),
        Command::Login(args) => commands::login::execute_login(&client, args),
        Command::Logout(args) => commands::login::execute_logout(args),
        Command::Image(cmd) => commands::image::execute(&client, cmd),
        Command::Commit(args) => commands::image_io::commit(&client, args),
        Command::History(args) => commands::image_io::history(&client, args),
        Command::System(cmd) => commands::image_io::system(&client, cmd),
        Command::Volume(cmd) => commands::volume::execute(&client, cmd),
        Command::Network(cmd) => commands::network::execute(&client, cmd),
        Command::Version => commands::version::execute(&client),
    }
}

/// How an error is shown: `Error response from daemon: MESSAGE` for the daemon's own error
/// answers (as docker prints them), `moor: ` and the error chain otherwise.
pub fn error_line(error: &anyhow::Error) -> String {
    let api = error
        .chain()
        .find_map(|cause| match cause.downcast_ref::<ClientError>() {
            Some(ClientError::Api { message, .. }) => Some(message),
            _ => None,
        });
    match api {
        Some(message) => format!("Error response from daemon: {message}"),
        None => format!("moor: {error:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn api_errors_read_like_docker() {
        let error = anyhow::Error::new(ClientError::Api {
            status: 404,
            message: "No such container: x".to_string(),
        });
        assert_eq!(
            error_line(&error),
            "Error response from daemon: No such container: x"
        );
        let wrapped = Err::<(), _>(error).context("remove x").unwrap_err();
        assert_eq!(
            error_line(&wrapped),
            "Error response from daemon: No such container: x"
        );
    }

    #[test]
    fn other_errors_show_their_chain() {
        let error = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_line(&error), "moor: outer: inner");
    }
}
