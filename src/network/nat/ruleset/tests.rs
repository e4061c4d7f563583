use serde_json::{json, Value};

use super::*;
use moor_state::ports::Proto;

fn to_json(cmds: Vec<NfObject<'static>>) -> Vec<Value> {
    cmds.iter()
        .map(|c| serde_json::to_value(c).unwrap())
        .collect()
}

fn mapping(host_ip: Option<[u8; 4]>, host_port: u16, container_port: u16) -> PortMapping {
    PortMapping {
        container_port,
        proto: Proto::Tcp,
        host_ip: host_ip.map(Ipv4Addr::from),
        host_port,
    }
}

#[test]
fn skeleton_adds_table_maps_sets_then_rewrites_each_chain() {
    let cmds = to_json(skeleton());
    assert_eq!(
        cmds[0],
        json!({"add": {"table": {"family": "ip", "name": "moor"}}})
    );
    let any_addr = json!({"add": {"map": {"family": "ip", "table": "moor", "name": ANY_ADDR,
        "type": ["inet_proto", "inet_service"], "map": "ipv4_addr"}}});
    assert!(cmds.contains(&any_addr), "{cmds:#?}");
    let subnets = cmds
        .iter()
        .find(|c| c["add"]["set"]["name"] == SUBNETS)
        .unwrap();
    assert_eq!(subnets["add"]["set"]["flags"], json!(["interval"]));
    for chain in ["prerouting", "output", "postrouting"] {
        let add_at = cmds
            .iter()
            .position(|c| c["add"]["chain"]["name"] == chain)
            .unwrap();
        let flush_at = cmds
            .iter()
            .position(|c| c["flush"]["chain"]["name"] == chain)
            .unwrap();
        let first_rule = cmds
            .iter()
            .position(|c| c["add"]["rule"]["chain"] == chain)
            .unwrap();
        assert!(add_at < flush_at && flush_at < first_rule, "{chain}");
    }
    let output = cmds
        .iter()
        .find(|c| c["add"]["chain"]["name"] == "output")
        .unwrap();
    assert_eq!(output["add"]["chain"]["hook"], "output");
    assert_eq!(output["add"]["chain"]["prio"], -100);
    assert_eq!(output["add"]["chain"]["type"], "nat");
}

#[test]
fn dnat_looks_address_and_port_up_by_the_same_key() {
    let cmds = to_json(skeleton());
    let rules: Vec<&Value> = cmds
        .iter()
        .filter(|c| c["add"]["rule"]["chain"] == "prerouting")
        .collect();
    assert_eq!(rules.len(), 2);
    let per_ip = &rules[0]["add"]["rule"]["expr"][0]["dnat"];
    let key = json!({"concat": [
        {"payload": {"protocol": "ip", "field": "daddr"}},
        {"meta": {"key": "l4proto"}},
        {"payload": {"protocol": "th", "field": "dport"}}]});
    assert_eq!(
        per_ip["addr"],
        json!({"map": {"key": key, "data": "@published_ip_addr"}})
    );
    assert_eq!(
        per_ip["port"],
        json!({"map": {"key": key, "data": "@published_ip_port"}})
    );
    assert_eq!(per_ip["family"], "ip");
    // Every address: only for traffic to this host.
    let any = &rules[1]["add"]["rule"]["expr"];
    assert_eq!(
        any[0],
        json!({"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}})
    );
    assert_eq!(any[1]["dnat"]["addr"]["map"]["data"], "@published_any_addr");
}

#[test]
fn masquerade_covers_outbound_and_local_clients() {
    let cmds = to_json(skeleton());
    let rules: Vec<&Value> = cmds
        .iter()
        .filter(|c| c["add"]["rule"]["chain"] == "postrouting")
        .collect();
    let out = &rules[0]["add"]["rule"]["expr"];
    assert_eq!(out[0]["match"]["right"], "@subnets");
    assert_eq!(
        out[1],
        json!({"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "@bridges"}})
    );
    assert_eq!(out[2], json!({"masquerade": null}));
    let hairpin = &rules[1]["add"]["rule"]["expr"];
    assert_eq!(hairpin[1]["match"]["right"], "@bridges");
    assert_eq!(
        hairpin[2],
        json!({"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}})
    );
    let local = &rules[2]["add"]["rule"]["expr"];
    assert_eq!(local[0]["match"]["op"], "==");
    assert_eq!(local[1]["match"]["left"]["fib"]["flags"], json!(["saddr"]));
}

#[test]
fn bridge_elements_are_name_and_prefix() {
    let bridge = BridgeNat {
        name: "moor0".into(),
        subnet: Ipv4Addr::new(172, 30, 0, 0),
        prefix_len: 16,
        internal: false,
    };
    let cmds = to_json(bridge_elements(&bridge));
    assert_eq!(cmds[0]["add"]["element"]["elem"], json!(["moor0"]));
    assert_eq!(
        cmds[1]["add"]["element"]["elem"],
        json!([{"prefix": {"addr": "172.30.0.0", "len": 16}}])
    );
}

#[test]
fn an_internal_bridge_is_isolated_not_masqueraded_and_removal_takes_every_element() {
    let bridge = BridgeNat {
        name: "moor-int".into(),
        subnet: Ipv4Addr::new(10, 91, 0, 0),
        prefix_len: 24,
        internal: true,
    };
    let cmds = to_json(bridge_elements(&bridge));
    let names: Vec<&Value> = cmds.iter().map(|c| &c["add"]["element"]["name"]).collect();
    assert_eq!(names, [ISOLATED, isolation::SAME, INTERNAL]);
    // Removal: masquerade and isolation elements alike, added then deleted.
    let cmds = to_json(remove_bridge_elements(&bridge));
    assert_eq!(cmds.len(), 10, "{cmds:#?}");
    let deleted: Vec<&Value> = cmds[5..]
        .iter()
        .map(|c| &c["delete"]["element"]["name"])
        .collect();
    assert_eq!(
        deleted,
        [BRIDGES, SUBNETS, ISOLATED, isolation::SAME, INTERNAL]
    );
}

#[test]
fn elements_go_to_the_map_pair_of_their_host_address() {
    let ip = Ipv4Addr::new(172, 30, 0, 2);
    let ports = [
        mapping(None, 8080, 80),
        mapping(Some([127, 0, 0, 1]), 9090, 90),
    ];
    let cmds = to_json(add_elements("abc", ip, &ports));
    assert_eq!(cmds.len(), 4);
    let e = &cmds[0]["add"]["element"];
    assert_eq!(e["name"], ANY_ADDR);
    assert_eq!(
        e["elem"][0][0]["elem"]["val"],
        json!({"concat": ["tcp", 8080]})
    );
    assert_eq!(e["elem"][0][0]["elem"]["comment"], "abc");
    assert_eq!(e["elem"][0][1], "172.30.0.2");
    assert_eq!(cmds[1]["add"]["element"]["name"], ANY_PORT);
    assert_eq!(
        cmds[1]["add"]["element"]["elem"],
        json!([[{"concat": ["tcp", 8080]}, 80]])
    );
    assert_eq!(cmds[2]["add"]["element"]["name"], IP_ADDR);
    assert_eq!(
        cmds[3]["add"]["element"]["elem"],
        json!([[{"concat": ["127.0.0.1", "tcp", 9090]}, 90]])
    );
}

#[test]
fn removal_adds_then_deletes_each_key_so_a_missing_one_is_no_error() {
    let ip = Ipv4Addr::new(172, 30, 0, 2);
    let cmds = to_json(remove_elements("abc", ip, &[mapping(None, 8080, 80)]));
    assert_eq!(cmds.len(), 4);
    assert!(cmds[0].get("add").is_some() && cmds[1].get("add").is_some());
    assert_eq!(cmds[2]["delete"]["element"]["name"], ANY_ADDR);
    assert_eq!(
        cmds[2]["delete"]["element"]["elem"],
        json!([{"concat": ["tcp", 8080]}])
    );
    assert_eq!(cmds[3]["delete"]["element"]["name"], ANY_PORT);
}

#[test]
fn table_removal_tolerates_absence() {
    let cmds = to_json(remove_table());
    assert_eq!(
        cmds[0],
        json!({"add": {"table": {"family": "ip", "name": "moor"}}})
    );
    assert_eq!(
        cmds[1],
        json!({"delete": {"table": {"family": "ip", "name": "moor"}}})
    );
}
