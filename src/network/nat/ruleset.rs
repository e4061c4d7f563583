//! The nftables commands of moor's table, built as typed JSON (the `nftables` crate): pure,
//! unit-tested, sent by `super` as one `nft -j -f -` transaction each.
//!
//! A published port is two map elements keyed alike (its address and its port: nft 1.0.6's
//! JSON parser cannot declare a map whose values are a concatenation), so a container's ports
//! are added and removed as elements, atomically, without rule handles. The rules themselves
//! never change after [`skeleton`].

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::Ipv4Addr;

use moor_state::ports::PortMapping;
use nftables::expr::{Elem, Expression, Fib, FibFlag, FibResult, Map, Meta, MetaKey, CT};
use nftables::expr::{NamedExpression, Payload, PayloadField, Prefix};
use nftables::schema::{Chain, Element, FlushObject, NfCmd, NfListObject, NfObject, Rule};
use nftables::schema::{Set, SetFlag, SetType, SetTypeValue, Table};
use nftables::stmt::{Match, Operator, Statement, NAT};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use super::BridgeNat;

mod isolation;

pub use isolation::{INTERNAL, ISOLATED};

/// moor's table (`ip moor`): nothing of moor lives in any other table.
pub const TABLE: &str = "moor";
/// Container address per `host ip . proto . host port` (ports published on one address).
pub const IP_ADDR: &str = "published_ip_addr";
/// Container port per `host ip . proto . host port`.
pub const IP_PORT: &str = "published_ip_port";
/// Container address per `proto . host port` (ports published on every local address).
pub const ANY_ADDR: &str = "published_any_addr";
/// Container port per `proto . host port`.
pub const ANY_PORT: &str = "published_any_port";
/// The bridges moor masquerades for (set of interface names).
pub const BRIDGES: &str = "bridges";
/// The bridges' subnets (interval set of prefixes).
pub const SUBNETS: &str = "subnets";

const FAMILY: NfFamily = NfFamily::IP;

fn s(text: &str) -> Expression<'static> {
    Expression::String(Cow::Owned(text.to_string()))
}

fn add(obj: NfListObject<'static>) -> NfObject<'static> {
    NfObject::CmdObject(NfCmd::Add(obj))
}

fn table() -> Table<'static> {
    Table {
        family: FAMILY,
        name: TABLE.into(),
        handle: None,
    }
}

fn base_chain(name: &'static str, hook: NfHook, prio: i32) -> Chain<'static> {
    Chain {
        family: FAMILY,
        table: TABLE.into(),
        name: name.into(),
        _type: Some(NfChainType::NAT),
        hook: Some(hook),
        prio: Some(prio),
        policy: Some(NfChainPolicy::Accept),
        ..Chain::default()
    }
}

/// The four published-port maps: (name, key is per address, value type).
const MAPS: [(&str, bool, SetType); 4] = [
    (IP_ADDR, true, SetType::Ipv4Addr),
    (IP_PORT, true, SetType::InetService),
    (ANY_ADDR, false, SetType::Ipv4Addr),
    (ANY_PORT, false, SetType::InetService),
];

fn map_key_type(per_address: bool) -> SetTypeValue<'static> {
    let mut key = Vec::new();
    if per_address {
        key.push(SetType::Ipv4Addr);
    }
    key.extend([SetType::InetProto, SetType::InetService]);
    SetTypeValue::Concatenated(key.into())
}

fn map(name: &'static str, per_address: bool, value: SetType) -> nftables::schema::Map<'static> {
    nftables::schema::Map {
        family: FAMILY,
        table: TABLE.into(),
        name: name.into(),
        set_type: map_key_type(per_address),
        map: SetTypeValue::Single(value),
        ..nftables::schema::Map::default()
    }
}

fn set(name: &'static str, kind: SetType, interval: bool) -> Set<'static> {
    Set {
        family: FAMILY,
        table: TABLE.into(),
        name: name.into(),
        set_type: SetTypeValue::Single(kind),
        flags: interval.then(|| HashSet::from([SetFlag::Interval])),
        ..Set::default()
    }
}

fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.into(),
            field: field.into(),
        },
    )))
}

fn ct(key: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT {
        key: key.into(),
        family: None,
        dir: None,
    }))
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

/// The packet's lookup key: `[ip daddr .] meta l4proto . th dport`.
fn packet_key(per_address: bool) -> Expression<'static> {
    let mut parts = Vec::new();
    if per_address {
        parts.push(payload("ip", "daddr"));
    }
    parts.extend([meta(MetaKey::L4proto), payload("th", "dport")]);
    Expression::Named(NamedExpression::Concat(parts))
}

fn lookup(per_address: bool, map: &str) -> Expression<'static> {
    Expression::Named(NamedExpression::Map(Box::new(Map {
        key: packet_key(per_address),
        data: s(&format!("@{map}")),
    })))
}

fn matches(
    left: Expression<'static>,
    op: Operator,
    right: Expression<'static>,
) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

/// `fib {saddr|daddr} type local`.
fn fib_local(flag: FibFlag) -> Statement<'static> {
    let fib = Fib {
        result: FibResult::Type,
        flags: HashSet::from([flag]),
    };
    matches(
        Expression::Named(NamedExpression::Fib(fib)),
        Operator::EQ,
        s("local"),
    )
}

fn dnat(per_address: bool) -> Statement<'static> {
    let (addr, port) = if per_address {
        (IP_ADDR, IP_PORT)
    } else {
        (ANY_ADDR, ANY_PORT)
    };
    Statement::DNAT(Some(NAT {
        addr: Some(lookup(per_address, addr)),
        family: Some(nftables::stmt::NATFamily::IP),
        port: Some(lookup(per_address, port)),
        flags: None,
    }))
}

fn rule(chain: &'static str, expr: Vec<Statement<'static>>) -> NfObject<'static> {
    add(NfListObject::Rule(Rule {
        family: FAMILY,
        table: TABLE.into(),
        chain: chain.into(),
        expr: expr.into(),
        ..Rule::default()
    }))
}

/// The rules of the three NAT chains, in order.
fn rules() -> Vec<NfObject<'static>> {
    let oifname = || meta(MetaKey::Oifname);
    vec![
        // Published on one host address: the key holds the address.
        rule("prerouting", vec![dnat(true)]),
        // Published on every address: only traffic to this host, never traffic routed through.
        rule("prerouting", vec![fib_local(FibFlag::Daddr), dnat(false)]),
        // The host's own clients, loopback included (route_localnet on the bridge).
        rule("output", vec![fib_local(FibFlag::Daddr), dnat(true)]),
        rule("output", vec![fib_local(FibFlag::Daddr), dnat(false)]),
        // Containers going out: masquerade behind the host.
        rule(
            "postrouting",
            vec![
                matches(
                    payload("ip", "saddr"),
                    Operator::EQ,
                    s(&format!("@{SUBNETS}")),
                ),
                matches(oifname(), Operator::NEQ, s(&format!("@{BRIDGES}"))),
                Statement::Masquerade(None),
            ],
        ),
        // Hairpin: a container reaching a published port (its own or a neighbour's) through
        // a host address comes back onto its bridge; the answer must come back through
        // the host to be un-translated, not straight from the neighbour.
        rule(
            "postrouting",
            vec![
                matches(
                    payload("ip", "saddr"),
                    Operator::EQ,
                    s(&format!("@{SUBNETS}")),
                ),
                matches(oifname(), Operator::EQ, s(&format!("@{BRIDGES}"))),
                matches(ct("status"), Operator::IN, s("dnat")),
                Statement::Masquerade(None),
            ],
        ),
        // The host's own clients of a published port (127.0.0.1 among them): the container
        // answers to the bridge's address, never to a loopback one it cannot route.
        rule(
            "postrouting",
            vec![
                matches(oifname(), Operator::EQ, s(&format!("@{BRIDGES}"))),
                fib_local(FibFlag::Saddr),
                Statement::Masquerade(None),
            ],
        ),
    ]
}

/// Creates whatever is missing of the table, its maps, sets and chains (the NAT ones and
/// [`isolation`]'s), and rewrites the chains' rules (flush and add in the same transaction:
/// no packet sees a chain half-made). Map and set elements already there are kept.
pub fn skeleton() -> Vec<NfObject<'static>> {
    let mut cmds = vec![add(NfListObject::Table(table()))];
    for (name, per_address, value) in MAPS {
        cmds.push(add(NfListObject::Map(Box::new(map(
            name,
            per_address,
            value,
        )))));
    }
    cmds.push(add(NfListObject::Set(Box::new(set(
        BRIDGES,
        SetType::Ifname,
        false,
    )))));
    cmds.push(add(NfListObject::Set(Box::new(set(
        SUBNETS,
        SetType::Ipv4Addr,
        true,
    )))));
    let chains = [
        base_chain("prerouting", NfHook::Prerouting, -100),
        base_chain("output", NfHook::Output, -100),
        base_chain("postrouting", NfHook::Postrouting, 100),
    ];
    for chain in chains {
        cmds.push(add(NfListObject::Chain(chain.clone())));
        cmds.push(NfObject::CmdObject(NfCmd::Flush(FlushObject::Chain(chain))));
    }
    cmds.extend(rules());
    cmds.extend(isolation::skeleton());
    cmds
}

fn element(name: &'static str, elem: Vec<Expression<'static>>) -> NfListObject<'static> {
    NfListObject::Element(Element {
        family: FAMILY,
        table: TABLE.into(),
        name: name.into(),
        elem: elem.into(),
    })
}

/// A bridge's masquerade elements: its name and its subnet.
fn nat_elements(bridge: &BridgeNat) -> Vec<NfObject<'static>> {
    let prefix = Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(s(&bridge.subnet.to_string())),
        len: u32::from(bridge.prefix_len),
    }));
    vec![
        add(element(BRIDGES, vec![s(&bridge.name)])),
        add(element(SUBNETS, vec![prefix])),
    ]
}

/// A bridge's elements: its name and subnet for the masquerade (an internal one has none),
/// then its isolation from the other bridges.
pub fn bridge_elements(bridge: &BridgeNat) -> Vec<NfObject<'static>> {
    let mut cmds = if bridge.internal {
        Vec::new()
    } else {
        nat_elements(bridge)
    };
    cmds.extend(isolation::bridge_elements(bridge));
    cmds
}

/// Removes every element of a bridge's, masquerade and isolation, internal or not; missing
/// ones are not an error (each is added, a no-op when present, then deleted, in one
/// transaction).
pub fn remove_bridge_elements(bridge: &BridgeNat) -> Vec<NfObject<'static>> {
    let mut cmds = nat_elements(bridge);
    cmds.extend(isolation::all_bridge_elements(bridge));
    let deletes: Vec<_> = cmds
        .iter()
        .filter_map(|cmd| match cmd {
            NfObject::CmdObject(NfCmd::Add(obj)) => {
                Some(NfObject::CmdObject(NfCmd::Delete(obj.clone())))
            }
            _ => None,
        })
        .collect();
    cmds.extend(deletes);
    cmds
}

/// The lookup key of a mapping as stored: `[host ip .] proto . host port`.
fn stored_key(m: &PortMapping) -> Expression<'static> {
    let mut parts = Vec::new();
    if let Some(ip) = m.host_ip {
        parts.push(s(&ip.to_string()));
    }
    parts.extend([
        s(m.proto.as_str()),
        Expression::Number(u32::from(m.host_port)),
    ]);
    Expression::Named(NamedExpression::Concat(parts))
}

fn maps_of(m: &PortMapping) -> (&'static str, &'static str) {
    if m.host_ip.is_some() {
        (IP_ADDR, IP_PORT)
    } else {
        (ANY_ADDR, ANY_PORT)
    }
}

/// `add element` commands for a container's mappings; the address element carries the
/// container id as its comment, so `list` can say whose a port is.
pub fn add_elements(id: &str, ip: Ipv4Addr, ports: &[PortMapping]) -> Vec<NfObject<'static>> {
    let mut cmds = Vec::new();
    for m in ports {
        let (addr_map, port_map) = maps_of(m);
        let owned = Expression::Named(NamedExpression::Elem(Elem {
            val: Box::new(stored_key(m)),
            timeout: None,
            expires: None,
            comment: Some(id.to_string().into()),
            counter: None,
        }));
        let addr = Expression::List(vec![owned, s(&ip.to_string())]);
        let port = Expression::List(vec![
            stored_key(m),
            Expression::Number(u32::from(m.container_port)),
        ]);
        cmds.push(add(element(addr_map, vec![addr])));
        cmds.push(add(element(port_map, vec![port])));
    }
    cmds
}

/// Removes a container's mappings; missing ones are not an error: each element is added
/// (with the same value: a no-op when present) before it is deleted, in one transaction. A
/// key held by another container (another value) fails the whole transaction and changes
/// nothing.
pub fn remove_elements(id: &str, ip: Ipv4Addr, ports: &[PortMapping]) -> Vec<NfObject<'static>> {
    let mut cmds = add_elements(id, ip, ports);
    for m in ports {
        let (addr_map, port_map) = maps_of(m);
        for name in [addr_map, port_map] {
            cmds.push(NfObject::CmdObject(NfCmd::Delete(element(
                name,
                vec![stored_key(m)],
            ))));
        }
    }
    cmds
}

/// Empties every map and set (after [`skeleton`] made sure they exist).
pub fn flush_elements() -> Vec<NfObject<'static>> {
    let mut cmds = Vec::new();
    for (name, per_address, value) in MAPS {
        let flush = FlushObject::Map(Box::new(map(name, per_address, value)));
        cmds.push(NfObject::CmdObject(NfCmd::Flush(flush)));
    }
    for (name, kind, interval) in [
        (BRIDGES, SetType::Ifname, false),
        (SUBNETS, SetType::Ipv4Addr, true),
    ] {
        let flush = FlushObject::Set(Box::new(set(name, kind, interval)));
        cmds.push(NfObject::CmdObject(NfCmd::Flush(flush)));
    }
    cmds.extend(isolation::flush_elements());
    cmds
}

/// Removes the table whether or not it exists (added first, then deleted).
pub fn remove_table() -> Vec<NfObject<'static>> {
    vec![
        add(NfListObject::Table(table())),
        NfObject::CmdObject(NfCmd::Delete(NfListObject::Table(table()))),
    ]
}

#[cfg(test)]
mod tests;
