//! Reading moor's table back from `nft -j list table ip moor`: which bridges, subnets,
//! isolated and internal bridges and published ports it holds (for `moor admin`, and for
//! the tests).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use moor_state::ports::Proto;
use nftables::expr::{Expression, NamedExpression};
use nftables::schema::{NfListObject, NfObject, Nftables};
use serde::Serialize;

use super::ruleset::{ANY_ADDR, ANY_PORT, BRIDGES, IP_ADDR, IP_PORT, SUBNETS, TABLE};
use super::ruleset::{INTERNAL, ISOLATED};

/// The contents of moor's table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NatListing {
    /// Bridges masqueraded for.
    pub bridges: Vec<String>,
    /// Their subnets, `ADDR/LEN`.
    pub subnets: Vec<String>,
    /// Bridges isolated from one another (internal ones included).
    pub isolated: Vec<String>,
    /// Bridges of internal networks.
    pub internal: Vec<String>,
    /// Published ports, by host side.
    pub published: Vec<PublishedElement>,
}

/// One published port as the table holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedElement {
    /// The container id kept as the element's comment, if any.
    pub owner: Option<String>,
    /// The host address (`None`: every local address).
    pub host_ip: Option<Ipv4Addr>,
    /// The protocol.
    pub proto: Proto,
    /// The host port.
    pub host_port: u16,
    /// Where it goes: the container's address (`None` if the address map lacks it).
    pub container_ip: Option<Ipv4Addr>,
    /// And port (`None` if the port map lacks it).
    pub container_port: Option<u16>,
}

type Key = (Option<Ipv4Addr>, Proto, u16);

/// Whether `list tables ip` shows moor's table.
pub fn has_table(doc: &Nftables) -> bool {
    doc.objects
        .iter()
        .any(|o| matches!(o, NfObject::ListObject(NfListObject::Table(t)) if t.name == TABLE))
}

fn text<'a>(e: &'a Expression) -> Option<&'a str> {
    match e {
        Expression::String(s) => Some(s),
        _ => None,
    }
}

fn number(e: &Expression) -> Option<u16> {
    match e {
        Expression::Number(n) => u16::try_from(*n).ok(),
        Expression::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn proto(e: &Expression) -> Option<Proto> {
    match text(e)? {
        "tcp" => Some(Proto::Tcp),
        "udp" => Some(Proto::Udp),
        _ => None,
    }
}

/// A stored key (`[ip .] proto . port`, maybe inside an `elem` with a comment).
fn key(e: &Expression) -> Option<(Key, Option<String>)> {
    let (val, comment) = match e {
        Expression::Named(NamedExpression::Elem(elem)) => {
            (&*elem.val, elem.comment.as_ref().map(|c| c.to_string()))
        }
        other => (other, None),
    };
    let Expression::Named(NamedExpression::Concat(parts)) = val else {
        return None;
    };
    let k = match parts.as_slice() {
        [ip, p, port] => (Some(text(ip)?.parse().ok()?), proto(p)?, number(port)?),
        [p, port] => (None, proto(p)?, number(port)?),
        _ => return None,
    };
    Some((k, comment))
}

fn pairs<'a>(
    elems: &'a [Expression<'a>],
) -> impl Iterator<Item = (&'a Expression<'a>, &'a Expression<'a>)> {
    elems.iter().filter_map(|e| match e {
        Expression::List(pair) if pair.len() == 2 => Some((&pair[0], &pair[1])),
        _ => None,
    })
}

fn entry(all: &mut BTreeMap<Key, PublishedElement>, k: Key) -> &mut PublishedElement {
    all.entry(k).or_insert(PublishedElement {
        owner: None,
        host_ip: k.0,
        proto: k.1,
        host_port: k.2,
        container_ip: None,
        container_port: None,
    })
}

fn set_text(e: &Expression) -> Option<String> {
    match e {
        Expression::String(s) => Some(s.to_string()),
        Expression::Named(NamedExpression::Prefix(p)) => {
            Some(format!("{}/{}", text(&p.addr)?, p.len))
        }
        _ => None,
    }
}

/// Collects the maps' and sets' elements; an element moor cannot read is an error (the
/// table is moor's alone, so it means someone else wrote into it).
pub fn parse(doc: &Nftables) -> Result<NatListing, String> {
    let mut out = NatListing::default();
    let mut published = BTreeMap::new();
    for obj in doc.objects.iter() {
        match obj {
            NfObject::ListObject(NfListObject::Map(m)) => {
                let elems = m.elem.as_deref().unwrap_or_default();
                let is_addr = m.name == IP_ADDR || m.name == ANY_ADDR;
                if !is_addr && m.name != IP_PORT && m.name != ANY_PORT {
                    continue;
                }
                for (k, v) in pairs(elems) {
                    let bad = || format!("unexpected element in map {}: {k:?} : {v:?}", m.name);
                    let (k, comment) = key(k).ok_or_else(bad)?;
                    let e = entry(&mut published, k);
                    if is_addr {
                        e.container_ip =
                            Some(text(v).and_then(|t| t.parse().ok()).ok_or_else(bad)?);
                        e.owner = comment.or(e.owner.take());
                    } else {
                        e.container_port = Some(number(v).ok_or_else(bad)?);
                    }
                }
            }
            NfObject::ListObject(NfListObject::Set(set)) => {
                let into = match set.name.as_ref() {
                    BRIDGES => &mut out.bridges,
                    SUBNETS => &mut out.subnets,
                    ISOLATED => &mut out.isolated,
                    INTERNAL => &mut out.internal,
                    _ => continue,
                };
                for e in set.elem.as_deref().unwrap_or_default() {
                    into.push(
                        set_text(e).ok_or_else(|| {
                            format!("unexpected element in set {}: {e:?}", set.name)
                        })?,
                    );
                }
            }
            _ => {}
        }
    }
    out.published = published.into_values().collect();
    Ok(out)
}
