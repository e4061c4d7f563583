//! `moor ps`: `GET /containers/json?all=1&filters=...`, printed as docker's table.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;

use crate::api::types::ContainerSummary;
use crate::cli::args::PsArgs;
use crate::cli::client::{encode, Client};
use crate::cli::format::{ellipsis, go_quote, human_duration, table};

/// Lists containers.
pub fn execute(client: &Client, args: &PsArgs) -> anyhow::Result<i32> {
    let path = list_path(args)?;
    let containers: Vec<ContainerSummary> = client.get(&path)?;
    let now = SystemTime::now();
    if args.quiet {
        for container in &containers {
            println!("{}", short_id(&container.id, args.no_trunc));
        }
        return Ok(0);
    }
    print!("{}", render(&containers, args.no_trunc, now));
    Ok(0)
}

/// The list path with `all` and `filters` (`{"key":["value",...]}`) in its query.
pub fn list_path(args: &PsArgs) -> anyhow::Result<String> {
    let mut filters: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for filter in &args.filter {
        let Some((key, value)) = filter.split_once('=') else {
            bail!("bad format of filter (expected name=value): {filter:?}");
        };
        filters.entry(key).or_default().push(value);
    }
    let mut query = Vec::new();
    if args.all {
        query.push("all=1".to_string());
    }
    if !filters.is_empty() {
        let json = serde_json::to_string(&filters)?;
        query.push(format!("filters={}", encode(&json)));
    }
    Ok(match query.is_empty() {
        true => "/containers/json".to_string(),
        false => format!("/containers/json?{}", query.join("&")),
    })
}

/// docker's PORTS cell: `0.0.0.0:8080->80/tcp, 443/tcp`.
fn ports_cell(ports: &[crate::api::types::PortSummary]) -> String {
    let cells: Vec<String> = ports
        .iter()
        .map(|p| match (&p.ip, p.public_port) {
            (Some(ip), Some(public)) => {
                format!("{ip}:{public}->{}/{}", p.private_port, p.kind)
            }
            _ => format!("{}/{}", p.private_port, p.kind),
        })
        .collect();
    cells.join(", ")
}

/// docker's table: CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, PORTS, NAMES. A container
/// that runs under daemon settings changed since its start (README "Changing daemon
/// options") has a `*` after its status, explained by a footnote under the table.
pub fn render(containers: &[ContainerSummary], no_trunc: bool, now: SystemTime) -> String {
    let header = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    let mut rows = vec![header.iter().map(|cell| cell.to_string()).collect()];
    for container in containers {
        let command = match no_trunc {
            true => container.command.clone(),
            false => ellipsis(&container.command, 20),
        };
        let names: Vec<&str> = container
            .names
            .iter()
            .map(|name| name.strip_prefix('/').unwrap_or(name))
            .collect();
        let status = match container.drift.is_empty() {
            true => container.status.clone(),
            false => format!("{} *", container.status),
        };
        rows.push(vec![
            short_id(&container.id, no_trunc).to_string(),
            container.image.clone(),
            go_quote(&command),
            format!("{} ago", human_duration(age(container.created, now))),
            status,
            ports_cell(&container.ports),
            names.join(","),
        ]);
    }
    let mut out = table(&rows);
    let mut drifted: Vec<&str> = containers
        .iter()
        .flat_map(|c| c.drift.iter().map(String::as_str))
        .collect();
    drifted.sort_unstable();
    drifted.dedup();
    if !drifted.is_empty() {
        out.push_str(&format!(
            "* runs under daemon settings changed since it started ({}): see Drift in `moor inspect`\n",
            drifted.join(", ")
        ));
    }
    out
}

/// The id, cut to 12 characters unless `--no-trunc`.
fn short_id(id: &str, no_trunc: bool) -> &str {
    match no_trunc {
        true => id,
        false => id.get(..12).unwrap_or(id),
    }
}

/// How long ago unix second `created` was.
fn age(created: i64, now: SystemTime) -> Duration {
    let created = UNIX_EPOCH + Duration::from_secs(u64::try_from(created).unwrap_or(0));
    now.duration_since(created).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ps_args(all: bool, filter: &[&str]) -> PsArgs {
        PsArgs {
            all,
            quiet: false,
            no_trunc: false,
            filter: filter.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn query_with_filters() {
        assert_eq!(list_path(&ps_args(false, &[])).unwrap(), "/containers/json");
        let path = list_path(&ps_args(true, &["name=web", "label=a=b", "name=db"])).unwrap();
        let expected = encode(r#"{"label":["a=b"],"name":["web","db"]}"#);
        assert_eq!(path, format!("/containers/json?all=1&filters={expected}"));
        assert!(list_path(&ps_args(false, &["oops"])).is_err());
    }

    #[test]
    fn table_like_docker() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_005);
        let container = ContainerSummary {
            id: "0123456789abcdef0123".to_string(),
            names: vec!["/web".to_string()],
            image: "host".to_string(),
            command: "sleep 1000".to_string(),
            created: 1_000_000,
            status: "Up 5 seconds".to_string(),
            ..ContainerSummary::default()
        };
        let text = render(&[container], false, now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "CONTAINER ID   IMAGE     COMMAND        CREATED         STATUS         PORTS     NAMES"
        );
        assert_eq!(
            lines[1],
            "0123456789ab   host      \"sleep 1000\"   5 seconds ago   Up 5 seconds             web"
        );
        assert_eq!(lines.len(), 2, "no footnote without drift");
    }

    #[test]
    fn a_drifted_container_is_starred_with_a_footnote() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_005);
        let plain = ContainerSummary {
            id: "0123456789abcdef0123".to_string(),
            names: vec!["/new".to_string()],
            status: "Up 5 seconds".to_string(),
            created: 1_000_000,
            ..ContainerSummary::default()
        };
        let drifted = ContainerSummary {
            names: vec!["/old".to_string()],
            drift: vec!["log-opts".into(), "exec-root".into()],
            ..plain.clone()
        };
        let text = render(&[drifted, plain], false, now);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains("Up 5 seconds *"), "{text}");
        assert!(lines[1].ends_with("old"), "{text}");
        assert!(!lines[2].contains('*'), "{text}");
        assert_eq!(
            lines[3],
            "* runs under daemon settings changed since it started (exec-root, log-opts): see Drift in `moor inspect`"
        );
    }
}
