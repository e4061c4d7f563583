//! `moor image import|ls|rm|tag|inspect|prune`: Docker's image endpoints.

use std::io::{IsTerminal, Read};

use anyhow::Context;

use crate::api::image_types::{DeleteItem, ImageSummary, ImportStatus, PruneReport};
use crate::cli::args::ImageCommand;
use crate::cli::client::{encode, Client};
use crate::cli::error_line;
use crate::cli::format::{human_duration, human_size, table};

/// Above this many bytes an import on a terminal shows a progress bar.
const PROGRESS_FROM: u64 = 4 << 20;

/// Runs one image command.
pub fn execute(client: &Client, cmd: &ImageCommand) -> anyhow::Result<i32> {
    match cmd {
        ImageCommand::Import {
            file,
            name,
            changes,
        } => import(client, file, name.as_deref(), changes),
        ImageCommand::Ls => ls(client),
        ImageCommand::Rm { names } => Ok(rm(client, names)),
        ImageCommand::Tag { source, target } => {
            let path = format!("/images/{}/tag?repo={}", encode(source), encode(target));
            client.post_empty(&path)?;
            Ok(0)
        }
        ImageCommand::Inspect { names } => inspect(client, names),
        ImageCommand::Prune { all } => prune(client, *all),
        ImageCommand::Save { output, names } => {
            super::image_io::save(client, names, output.as_deref())
        }
        ImageCommand::Load { input, quiet } => {
            super::image_io::load(client, input.as_deref(), *quiet)
        }
    }
}

/// `POST /images/prune`, printed as `docker image prune` does.
fn prune(client: &Client, all: bool) -> anyhow::Result<i32> {
    let path = match all {
        true => format!(
            "/images/prune?filters={}",
            encode(r#"{"dangling":["false"]}"#)
        ),
        false => "/images/prune".to_string(),
    };
    let report: PruneReport = client.post_answer(&path)?;
    let items = report.images_deleted.unwrap_or_default();
    if !items.is_empty() {
        println!("Deleted Images:");
        for item in items {
            if let Some(t) = item.untagged {
                println!("untagged: {t}");
            }
            if let Some(d) = item.deleted {
                println!("deleted: {d}");
            }
        }
        println!();
    }
    println!("Total reclaimed space: {} B", report.space_reclaimed);
    Ok(0)
}

/// Reads the tarball, with a progress bar on a terminal for big files.
/// What an upload reads (a file, or stdin for `-`) and the bar it moves: a file's with its
/// size, rate and time left, stdin's with the bytes and rate so far; a bar only when stderr
/// is a terminal and, for a file, above [`PROGRESS_FROM`].
pub fn open_upload(
    file: &str,
) -> anyhow::Result<(Box<dyn Read + Send>, Option<indicatif::ProgressBar>)> {
    let show = std::io::stderr().is_terminal();
    if file == "-" {
        let bar = show.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{spinner} {bytes} read, {bytes_per_sec}")
            {
                bar.set_style(style);
            }
            bar
        });
        return Ok((Box::new(std::io::stdin()), bar));
    }
    let f = std::fs::File::open(file).with_context(|| format!("open {file}"))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = (show && len > PROGRESS_FROM).then(|| {
        let bar = indicatif::ProgressBar::new(len);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec}, {eta} left",
        ) {
            bar.set_style(style);
        }
        bar
    });
    Ok((Box::new(f), bar))
}

/// The import's path: one `changes` parameter per line, as the docker CLI sends them.
fn import_path(name: Option<&str>, changes: &[String]) -> String {
    let mut path = "/images/create?fromSrc=-".to_string();
    if let Some(name) = name {
        path.push_str("&repo=");
        path.push_str(&encode(name));
    }
    for change in changes {
        path.push_str("&changes=");
        path.push_str(&encode(change));
    }
    path
}

fn import(
    client: &Client,
    file: &str,
    name: Option<&str>,
    changes: &[String],
) -> anyhow::Result<i32> {
    let (reader, bar) = open_upload(file)?;
    let path = import_path(name, changes);
    let answer = client.post_reader(&path, "application/x-tar", reader, bar)?;
    let text = String::from_utf8_lossy(&answer);
    let last = text.lines().last().unwrap_or_default();
    let status: ImportStatus =
        serde_json::from_str(last).with_context(|| format!("decode the answer {last:?}"))?;
    println!("{}", status.status);
    Ok(0)
}

/// `repo:tag` split at the last `:` after the last `/`.
fn split_tag(name: &str) -> (&str, &str) {
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (name, "<none>"),
    }
}

fn ls(client: &Client) -> anyhow::Result<i32> {
    let images: Vec<ImageSummary> = client.get("/images/json")?;
    let now = chrono::Utc::now().timestamp();
    let mut rows = vec![vec![
        "REPOSITORY".to_string(),
        "TAG".into(),
        "IMAGE ID".into(),
        "CREATED".into(),
        "SIZE".into(),
    ]];
    for img in &images {
        let id = img.id.trim_start_matches("sha256:");
        let created = std::time::Duration::from_secs((now - img.created).max(0) as u64);
        let names: Vec<&str> = if img.repo_tags.is_empty() {
            vec!["<none>:<none>"]
        } else {
            img.repo_tags.iter().map(String::as_str).collect()
        };
        for name in names {
            let (repo, tag) = split_tag(name);
            rows.push(vec![
                repo.to_string(),
                tag.to_string(),
                id[..12.min(id.len())].to_string(),
                format!("{} ago", human_duration(created)),
                human_size(img.size),
            ]);
        }
    }
    print!("{}", table(&rows));
    Ok(0)
}

fn rm(client: &Client, names: &[String]) -> i32 {
    let mut failed = false;
    for name in names {
        let path = format!("/images/{}", encode(name));
        let result = client
            .call_delete_json::<Vec<DeleteItem>>(&path)
            .map_err(anyhow::Error::from);
        match result {
            Ok(items) => {
                for item in items {
                    if let Some(t) = item.untagged {
                        println!("Untagged: {t}");
                    }
                    if let Some(d) = item.deleted {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{}", error_line(&e));
                failed = true;
            }
        }
    }
    i32::from(failed)
}

fn inspect(client: &Client, names: &[String]) -> anyhow::Result<i32> {
    Ok(super::inspect_raw(client, names, |name| {
        format!("/images/{}/json", encode(name))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_tags_like_docker() {
        assert_eq!(human_size(1_234_567), "1.23MB");
        assert_eq!(human_size(512), "512B");
        assert_eq!(split_tag("bb:1"), ("bb", "1"));
        assert_eq!(split_tag("reg:5000/bb"), ("reg:5000/bb", "<none>"));
    }

    #[test]
    fn changes_are_repeated_parameters() {
        let changes = ["ENV A=1 B=2".to_string(), r#"CMD ["sh"]"#.to_string()];
        assert_eq!(
            import_path(Some("bb:1"), &changes),
            "/images/create?fromSrc=-&repo=bb%3A1&changes=ENV%20A%3D1%20B%3D2\
             &changes=CMD%20%5B%22sh%22%5D"
        );
    }
}
