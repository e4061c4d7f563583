//! Isolation between moor's networks (Docker's `DOCKER-ISOLATION-STAGE-1/2`), in moor's own
//! table: a `filter` chain on the `forward` hook drops a packet the host would route from one
//! moor bridge to another, and anything an internal network's bridge would route to or from
//! another interface.
//!
//! nft compares a packet field with constants or sets only (never `iifname` with `oifname`),
//! so "another bridge" is a set lookup: [`SAME`] holds `B . B` for each bridge B, and a packet
//! whose `iifname . oifname` is not in it changes bridge. Bridged traffic that traverses
//! `forward` (br_netfilter loaded: in and out are the same bridge) is in it and passes.
//! Connections to a published port (`ct status dnat`) pass between bridges: the port is open
//! to every client of the host, and moby#38784 and moby#18354 report Docker refusing it as a
//! bug. Internal networks are dropped before that: they reach nothing but their own bridge.

use nftables::schema::{Chain, FlushObject, NfCmd, NfListObject, NfObject, Set};
use nftables::stmt::{Operator, Statement};
use nftables::types::{NfChainType, NfHook};

use super::{add, base_chain, ct, element, matches, meta, rule, s, set, BridgeNat};
use nftables::expr::{Expression, MetaKey, NamedExpression};
use nftables::schema::{SetType, SetTypeValue};

/// Every bridge of moor (the default one and each user network's, internal ones included).
pub const ISOLATED: &str = "isolated_bridges";
/// The bridges of internal networks.
pub const INTERNAL: &str = "internal_bridges";
/// `B . B` for each bridge in [`ISOLATED`]: a packet that stays on its bridge.
pub const SAME: &str = "same_bridge";
/// The chain on the `forward` hook.
pub const CHAIN: &str = "forward";

fn same_set() -> Set<'static> {
    Set {
        set_type: SetTypeValue::Concatenated(vec![SetType::Ifname, SetType::Ifname].into()),
        ..set(SAME, SetType::Ifname, false)
    }
}

fn sets() -> [Set<'static>; 3] {
    [
        set(ISOLATED, SetType::Ifname, false),
        set(INTERNAL, SetType::Ifname, false),
        same_set(),
    ]
}

fn chain() -> Chain<'static> {
    Chain {
        _type: Some(NfChainType::Filter),
        ..base_chain(CHAIN, NfHook::Forward, 0)
    }
}

/// `iifname . oifname != @same_bridge`: the packet changes bridge (or leaves one).
fn changes_bridge() -> Statement<'static> {
    let pair = Expression::Named(NamedExpression::Concat(vec![
        meta(MetaKey::Iifname),
        meta(MetaKey::Oifname),
    ]));
    matches(pair, Operator::NEQ, s(&format!("@{SAME}")))
}

fn in_set(key: MetaKey, name: &str) -> Statement<'static> {
    matches(meta(key), Operator::EQ, s(&format!("@{name}")))
}

/// The chain's rules, in order.
fn rules() -> Vec<NfObject<'static>> {
    let drop = || Statement::Drop(None);
    vec![
        // An internal network's bridge: nothing in or out but its own traffic.
        rule(
            CHAIN,
            vec![in_set(MetaKey::Iifname, INTERNAL), changes_bridge(), drop()],
        ),
        rule(
            CHAIN,
            vec![in_set(MetaKey::Oifname, INTERNAL), changes_bridge(), drop()],
        ),
        // A published port answers whoever reaches the host (replies included).
        rule(
            CHAIN,
            vec![
                matches(ct("status"), Operator::IN, s("dnat")),
                Statement::Accept(None),
            ],
        ),
        // From one of moor's bridges to another.
        rule(
            CHAIN,
            vec![
                in_set(MetaKey::Iifname, ISOLATED),
                in_set(MetaKey::Oifname, ISOLATED),
                changes_bridge(),
                drop(),
            ],
        ),
    ]
}

/// The sets, and the chain rewritten (flush and add in one transaction, as the others).
pub fn skeleton() -> Vec<NfObject<'static>> {
    let mut cmds: Vec<_> = sets()
        .into_iter()
        .map(|set| add(NfListObject::Set(Box::new(set))))
        .collect();
    cmds.push(add(NfListObject::Chain(chain())));
    cmds.push(NfObject::CmdObject(NfCmd::Flush(FlushObject::Chain(
        chain(),
    ))));
    cmds.extend(rules());
    cmds
}

/// A bridge's isolation elements: its name, its `name . name` pair, and its name among the
/// internal ones when it is internal.
pub fn bridge_elements(bridge: &BridgeNat) -> Vec<NfObject<'static>> {
    let pair = Expression::Named(NamedExpression::Concat(vec![
        s(&bridge.name),
        s(&bridge.name),
    ]));
    let mut cmds = vec![
        add(element(ISOLATED, vec![s(&bridge.name)])),
        add(element(SAME, vec![pair])),
    ];
    if bridge.internal {
        cmds.push(add(element(INTERNAL, vec![s(&bridge.name)])));
    }
    cmds
}

/// Every element of a bridge's, internal or not (for its removal: the record may be wrong).
pub fn all_bridge_elements(bridge: &BridgeNat) -> Vec<NfObject<'static>> {
    bridge_elements(&BridgeNat {
        internal: true,
        ..bridge.clone()
    })
}

/// Empties the three sets.
pub fn flush_elements() -> Vec<NfObject<'static>> {
    sets()
        .into_iter()
        .map(|set| NfObject::CmdObject(NfCmd::Flush(FlushObject::Set(Box::new(set)))))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn to_json(cmds: Vec<NfObject<'static>>) -> Vec<Value> {
        cmds.iter()
            .map(|c| serde_json::to_value(c).unwrap())
            .collect()
    }

    fn bridge(name: &str, internal: bool) -> BridgeNat {
        BridgeNat {
            name: name.into(),
            subnet: std::net::Ipv4Addr::new(10, 1, 0, 0),
            prefix_len: 24,
            internal,
        }
    }

    #[test]
    fn the_forward_chain_is_a_filter_that_drops_between_bridges_and_around_internal_ones() {
        let cmds = to_json(skeleton());
        let chain = cmds
            .iter()
            .find(|c| c["add"]["chain"]["name"] == CHAIN)
            .unwrap();
        assert_eq!(chain["add"]["chain"]["type"], "filter");
        assert_eq!(chain["add"]["chain"]["hook"], "forward");
        assert_eq!(chain["add"]["chain"]["policy"], "accept");
        let same = cmds
            .iter()
            .find(|c| c["add"]["set"]["name"] == SAME)
            .unwrap();
        assert_eq!(same["add"]["set"]["type"], json!(["ifname", "ifname"]));
        let rules: Vec<&Value> = cmds
            .iter()
            .filter_map(|c| c["add"]["rule"].as_object().map(|_| &c["add"]["rule"]))
            .collect();
        assert_eq!(rules.len(), 4);
        let changes = json!({"match": {"op": "!=", "left": {"concat": [
            {"meta": {"key": "iifname"}}, {"meta": {"key": "oifname"}}]}, "right": "@same_bridge"}});
        let internal_in = json!({"match": {"op": "==", "left": {"meta": {"key": "iifname"}},
            "right": "@internal_bridges"}});
        assert_eq!(
            rules[0]["expr"],
            json!([internal_in, changes, {"drop": null}])
        );
        assert_eq!(
            rules[1]["expr"][0]["match"]["left"],
            json!({"meta": {"key": "oifname"}})
        );
        assert_eq!(rules[2]["expr"][1], json!({"accept": null}));
        let across = &rules[3]["expr"];
        assert_eq!(across[0]["match"]["right"], "@isolated_bridges");
        assert_eq!(
            across[1]["match"]["left"],
            json!({"meta": {"key": "oifname"}})
        );
        assert_eq!(across[2], changes);
        assert_eq!(across[3], json!({"drop": null}));
    }

    #[test]
    fn a_bridge_is_isolated_with_its_own_pair_and_internal_only_when_it_is() {
        let cmds = to_json(bridge_elements(&bridge("moor-ab", false)));
        let names: Vec<&Value> = cmds.iter().map(|c| &c["add"]["element"]["name"]).collect();
        assert_eq!(names, [ISOLATED, SAME]);
        assert_eq!(
            cmds[1]["add"]["element"]["elem"],
            json!([{"concat": ["moor-ab", "moor-ab"]}])
        );
        let cmds = to_json(bridge_elements(&bridge("moor-cd", true)));
        assert_eq!(cmds[2]["add"]["element"]["name"], INTERNAL);
        assert_eq!(cmds[2]["add"]["element"]["elem"], json!(["moor-cd"]));
        assert_eq!(all_bridge_elements(&bridge("x", false)).len(), 3);
    }
}
