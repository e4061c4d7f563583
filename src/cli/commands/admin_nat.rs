//! `moor admin nat [--remove]`: what moor's nftables table (`ip moor`) holds in this network
//! namespace (bridges, subnets, isolated and internal bridges, published ports with their
//! containers), or its removal (the whole table: its isolation chain and sets included).
//! It reads the kernel, not the store, so it works with the daemon down.

use anyhow::Context;

use crate::network::nat::{self, NatListing};

use super::admin::ReportFormat;

/// Lists the table, or removes it (`remove`); prints what it did.
pub fn execute(remove: bool, format: ReportFormat) -> anyhow::Result<i32> {
    if remove {
        nat::remove_table().context("remove moor's nat table")?;
        println!("table ip moor removed (a daemon start sets it up again)");
        return Ok(0);
    }
    let listing = nat::list().context("list moor's nat table")?;
    match format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&listing)?),
        ReportFormat::Table => match listing {
            None => println!("no table ip moor"),
            Some(listing) => print!("{}", table(&listing)),
        },
    }
    Ok(0)
}

/// The listing as aligned text.
fn table(listing: &NatListing) -> String {
    let mut out = format!(
        "bridges: {}\nsubnets: {}\nisolated: {}\ninternal: {}\n",
        listing.bridges.join(" "),
        listing.subnets.join(" "),
        listing.isolated.join(" "),
        listing.internal.join(" ")
    );
    out.push_str(&format!(
        "{:<6} {:<22} {:<22} {}\n",
        "PROTO", "HOST", "CONTAINER", "OWNER"
    ));
    for p in &listing.published {
        let host = format!(
            "{}:{}",
            p.host_ip.map_or("0.0.0.0".to_string(), |ip| ip.to_string()),
            p.host_port
        );
        let container = match (p.container_ip, p.container_port) {
            (Some(ip), Some(port)) => format!("{ip}:{port}"),
            (ip, port) => format!("incomplete ({ip:?}, {port:?})"),
        };
        let owner = p.owner.as_deref().unwrap_or("-");
        out.push_str(&format!(
            "{:<6} {host:<22} {container:<22} {owner}\n",
            p.proto.as_str()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::nat::PublishedElement;
    use moor_state::ports::Proto;

    #[test]
    fn the_table_names_each_port_and_its_owner() {
        let listing = NatListing {
            bridges: vec!["moor0".into()],
            subnets: vec!["172.30.0.0/16".into()],
            isolated: vec!["moor0".into(), "moor-ab".into()],
            internal: vec!["moor-ab".into()],
            published: vec![PublishedElement {
                owner: Some("abc".into()),
                host_ip: None,
                proto: Proto::Tcp,
                host_port: 8080,
                container_ip: Some("172.30.0.2".parse().unwrap()),
                container_port: Some(80),
            }],
        };
        let text = table(&listing);
        assert!(
            text.starts_with(
                "bridges: moor0\nsubnets: 172.30.0.0/16\nisolated: moor0 moor-ab\ninternal: moor-ab\nPROTO"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("tcp    0.0.0.0:8080           172.30.0.2:80          abc\n"),
            "{text}"
        );
    }
}
