//! `moor push [-a] NAME[:TAG]`: `POST /images/NAME/push?tag=TAG` (without `tag` for
//! `--all-tags`: every tag of the repository) with the stored credentials of the name's
//! registry (see [`super::login`]), the progress drawn as `moor pull` draws it.

use clap::Args;

use crate::cli::client::{encode, Client};

/// `moor push` options.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The image: NAME[:TAG] (tag `latest` when omitted), named for its registry.
    #[arg(value_name = "NAME[:TAG]")]
    pub name: String,
    /// Push every tag of the repository NAME (Docker's `--all-tags`).
    #[arg(short = 'a', long)]
    pub all_tags: bool,
}

/// Runs `moor push`.
pub fn execute(client: &Client, args: &PushArgs) -> anyhow::Result<i32> {
    let last = args.name.rsplit('/').next().unwrap_or_default();
    let (repo, tag) = match last.rsplit_once(':') {
        Some((_, tag)) => (&args.name[..args.name.len() - tag.len() - 1], Some(tag)),
        None => (args.name.as_str(), None),
    };
    let path = match (tag, args.all_tags) {
        (Some(_), true) => anyhow::bail!("tag can't be used with --all-tags/-a"),
        (None, true) => format!("/images/{}/push", encode(repo)),
        (tag, false) => format!(
            "/images/{}/push?tag={}",
            encode(repo),
            encode(tag.unwrap_or("latest"))
        ),
    };
    let auth = super::login::registry_auth_for(&args.name)?;
    super::pull::follow(client, &path, auth, false, &format!("push {}", args.name))?;
    Ok(0)
}
