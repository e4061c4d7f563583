//! `moor commit`, `moor image save|load`, `moor history`, `moor system df`: Docker's
//! commit, save, load, history and system df endpoints, printed as the docker CLI does.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::cli::client::{encode, Client};
use crate::cli::format::{ellipsis, human_duration, human_size, table};

/// `moor commit`.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g. "Jane <jane@example.com>").
    #[arg(short, long)]
    pub author: Option<String>,
    /// A Dockerfile instruction for the image's config (CMD, ENTRYPOINT, ENV...); repeatable.
    #[arg(short = 'c', long = "change", value_name = "LINE")]
    pub changes: Vec<String>,
    /// Commit message.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause the container during the commit.
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pause: bool,
    /// The container.
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The new image's name, REPOSITORY[:TAG].
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub name: Option<String>,
}

/// `moor history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Do not truncate the output.
    #[arg(long)]
    pub no_trunc: bool,
    /// The image.
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

/// `moor system ...`.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show disk usage.
    Df,
}

/// `POST /commit`; prints the new id.
pub fn commit(client: &Client, a: &CommitArgs) -> anyhow::Result<i32> {
    let mut path = format!("/commit?container={}", encode(&a.container));
    if let Some(name) = &a.name {
        path.push_str(&format!("&repo={}", encode(name)));
    }
    for (key, value) in [("author", &a.author), ("comment", &a.message)] {
        if let Some(v) = value {
            path.push_str(&format!("&{key}={}", encode(v)));
        }
    }
    if !a.pause {
        path.push_str("&pause=0");
    }
    for c in &a.changes {
        path.push_str(&format!("&changes={}", encode(c)));
    }
    let answer: Value = client.post_answer(&path)?;
    println!("{}", answer["Id"].as_str().unwrap_or_default());
    Ok(0)
}

/// `GET /images/get?names=...` into `output`, or stdout when it is not a terminal.
pub fn save(client: &Client, names: &[String], output: Option<&str>) -> anyhow::Result<i32> {
    let mut out: Box<dyn Write> = match output {
        Some(file) => {
            Box::new(std::fs::File::create(file).with_context(|| format!("create {file}"))?)
        }
        None if std::io::stdout().is_terminal() => {
            anyhow::bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let query: Vec<String> = names
        .iter()
        .map(|n| format!("names={}", encode(n)))
        .collect();
    let mut stream = client.get_stream(&format!("/images/get?{}", query.join("&")))?;
    while let Some(chunk) = stream.next_chunk()? {
        out.write_all(&chunk).context("write the archive")?;
    }
    out.flush().context("write the archive")?;
    Ok(0)
}

/// `POST /images/load` from `input` or stdin; prints the `Loaded image` lines.
pub fn load(client: &Client, input: Option<&str>, quiet: bool) -> anyhow::Result<i32> {
    if input.is_none() && std::io::stdin().is_terminal() {
        anyhow::bail!("requested load from stdin, but stdin is empty");
    }
    let (reader, bar) = super::image::open_upload(input.unwrap_or("-"))?;
    let path = format!("/images/load?quiet={}", u8::from(quiet));
    let answer = client.post_reader(&path, "application/x-tar", reader, bar)?;
    for line in String::from_utf8_lossy(&answer).lines() {
        let msg: Value = serde_json::from_str(line).with_context(|| format!("decode {line:?}"))?;
        if let Some(e) = msg["errorDetail"]["message"].as_str() {
            anyhow::bail!("{e}");
        }
        print!("{}", msg["stream"].as_str().unwrap_or_default());
    }
    Ok(0)
}

/// `GET /images/{name}/history` as a table.
pub fn history(client: &Client, a: &HistoryArgs) -> anyhow::Result<i32> {
    let items: Vec<Value> = client.get(&format!("/images/{}/history", encode(&a.image)))?;
    let now = chrono::Utc::now().timestamp();
    let mut rows = vec![vec![
        "IMAGE".to_string(),
        "CREATED".into(),
        "CREATED BY".into(),
        "SIZE".into(),
        "COMMENT".into(),
    ]];
    for i in items {
        let mut id = i["Id"].as_str().unwrap_or_default().to_string();
        let mut by = i["CreatedBy"].as_str().unwrap_or_default().to_string();
        if !a.no_trunc {
            by = ellipsis(&by, 45);
            if let Some(hex) = id.strip_prefix("sha256:") {
                id = hex[..hex.len().min(12)].to_string();
            }
        }
        let age = now.saturating_sub(i["Created"].as_i64().unwrap_or(0));
        rows.push(vec![
            id,
            format!(
                "{} ago",
                human_duration(std::time::Duration::from_secs(age.max(0) as u64))
            ),
            by,
            human_size(i["Size"].as_u64().unwrap_or(0)),
            i["Comment"].as_str().unwrap_or_default().to_string(),
        ]);
    }
    print!("{}", table(&rows));
    Ok(0)
}

/// `GET /system/df`, summed as `docker system df` prints it.
pub fn system(client: &Client, cmd: &SystemCommand) -> anyhow::Result<i32> {
    let SystemCommand::Df = cmd;
    let df: Value = client.get("/system/df")?;
    let list = |k: &str| df[k].as_array().cloned().unwrap_or_default();
    let (images, containers, volumes) = (list("Images"), list("Containers"), list("Volumes"));
    let num = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    let active_images = images.iter().filter(|i| num(i, "Containers") > 0).count();
    let reclaim_images: u64 = images
        .iter()
        .filter(|i| num(i, "Containers") == 0)
        .map(|i| num(i, "Size").saturating_sub(num(i, "SharedSize")))
        .sum();
    let running = containers
        .iter()
        .filter(|c| c["State"] == "running")
        .count();
    let rw: u64 = containers.iter().map(|c| num(c, "SizeRw")).sum();
    let idle_rw: u64 = containers
        .iter()
        .filter(|c| c["State"] != "running")
        .map(|c| num(c, "SizeRw"))
        .sum();
    let usage = |v: &Value, k: &str| v["UsageData"][k].as_u64().unwrap_or(0);
    let used_volumes = volumes.iter().filter(|v| usage(v, "RefCount") > 0).count();
    let vol_size: u64 = volumes.iter().map(|v| usage(v, "Size")).sum();
    let vol_free: u64 = volumes
        .iter()
        .filter(|v| usage(v, "RefCount") == 0)
        .map(|v| usage(v, "Size"))
        .sum();
    let row = |kind: &str, total: usize, active: usize, size: u64, free: u64| {
        vec![
            kind.to_string(),
            total.to_string(),
            active.to_string(),
            human_size(size),
            human_size(free),
        ]
    };
    let rows = vec![
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
            .map(String::from)
            .to_vec(),
        row(
            "Images",
            images.len(),
            active_images,
            num(&df, "LayersSize"),
            reclaim_images,
        ),
        row("Containers", containers.len(), running, rw, idle_rw),
        row(
            "Local Volumes",
            volumes.len(),
            used_volumes,
            vol_size,
            vol_free,
        ),
        row("Build Cache", 0, 0, 0, 0),
    ];
    print!("{}", table(&rows));
    Ok(0)
}
