//! Unit tests of `network`: subnets, allocation, pools, endpoints.

use super::*;

fn net(s: &str) -> Subnet {
    Subnet::parse(s).expect("subnet")
}

#[test]
fn subnets_parse_and_overlap() {
    assert_eq!(net("172.17.3.4/16").to_string(), "172.17.0.0/16");
    assert!(Subnet::parse("1.2.3.4/33").is_none());
    assert!(Subnet::parse("1.2.3.4").is_none());
    assert!(net("172.17.0.0/16").overlaps(&net("172.17.5.0/24")));
    assert!(net("172.17.5.0/24").overlaps(&net("172.17.0.0/16")));
    assert!(!net("172.17.0.0/16").overlaps(&net("172.18.0.0/16")));
    assert!(net("10.0.0.0/8").contains("10.2.3.4".parse().unwrap()));
}

#[test]
fn allocation_skips_network_gateway_broadcast_and_held() {
    let s = net("10.9.0.0/29");
    let gw = first_host(s);
    assert_eq!(gw, Ipv4Addr::new(10, 9, 0, 1));
    let mut held = BTreeSet::new();
    let mut got = Vec::new();
    while let Some(ip) = allocate(s, gw, &held) {
        held.insert(ip);
        got.push(ip.octets()[3]);
    }
    assert_eq!(got, vec![2, 3, 4, 5, 6]);
    held.remove(&Ipv4Addr::new(10, 9, 0, 4));
    assert_eq!(allocate(s, gw, &held), Some(Ipv4Addr::new(10, 9, 0, 4)));
    assert_eq!(allocate(net("10.0.0.0/31"), gw, &BTreeSet::new()), None);
    // Inside an IPRange only, its own first address included.
    let s = net("10.9.0.0/24");
    let range = Some(net("10.9.0.128/30"));
    let mut held = BTreeSet::new();
    let mut got = Vec::new();
    while let Some(ip) = allocate_in(s, range, first_host(s), &held) {
        held.insert(ip);
        got.push(ip.octets()[3]);
    }
    assert_eq!(got, vec![128, 129, 130, 131]);
    assert!(range_inside(net("10.9.0.128/25"), s));
    assert!(!range_inside(net("10.9.0.0/23"), s) && !range_inside(net("10.8.0.0/25"), s));
}

#[test]
fn subnet_choice_avoids_the_hosts_routes() {
    assert_eq!(choose_subnet(&[]), Some(net("172.17.0.0/16")));
    let default_route = net("0.0.0.0/0");
    let routes = [default_route, net("172.17.0.0/16"), net("172.18.1.0/24")];
    assert_eq!(choose_subnet(&routes), Some(net("172.19.0.0/16")));
    let wide = [net("172.16.0.0/12"), net("192.168.0.0/20")];
    assert_eq!(choose_subnet(&wide), Some(net("192.168.16.0/20")));
    assert_eq!(
        choose_subnet(&[net("172.16.0.0/12"), net("192.168.0.0/16")]),
        None
    );
}

#[test]
fn a_lost_network_record_comes_back_from_its_containers() {
    use crate::record::ContainerSpec;
    let ts = chrono::DateTime::from_timestamp(0, 0).expect("epoch");
    let mut spec = ContainerSpec::default();
    assert_eq!(from_endpoints(&[]), None);
    spec.endpoint = Some(Endpoint {
        network: DEFAULT_NETWORK.into(),
        network_id: "f".repeat(64),
        bridge: "moor0".into(),
        ip: Ipv4Addr::new(172, 18, 0, 7),
        prefix_len: 16,
        gateway: Ipv4Addr::new(172, 18, 0, 1),
        internal: false,
    });
    let rec = ContainerRecord::new("a".repeat(64), "x".into(), spec, ts);
    let back = from_endpoints(&[rec]).expect("rebuilt");
    assert_eq!(back.subnet, net("172.18.0.0/16"));
    assert_eq!(
        (back.gateway, back.id.len()),
        (Ipv4Addr::new(172, 18, 0, 1), 64)
    );
}

#[test]
fn user_networks_take_a_pool_free_of_routes_and_other_networks() {
    let taken = NetworkRecord {
        version: NETWORK_RECORD_VERSION,
        name: DEFAULT_NETWORK.into(),
        id: "a".repeat(64),
        bridge: "moor0".into(),
        subnet: net("172.17.0.0/16"),
        gateway: Ipv4Addr::new(172, 17, 0, 1),
        labels: BTreeMap::new(),
        created: None,
        internal: false,
        ip_range: None,
    };
    let routes = [net("0.0.0.0/0"), net("172.18.0.0/24")];
    assert_eq!(
        choose_user_subnet(&routes, &[taken]),
        Some(net("172.19.0.0/16"))
    );
    assert_eq!(
        user_bridge(&"0123456789abcdef".repeat(4)),
        "moor-0123456789"
    );
    assert!(valid_name("front_1.a-b").is_ok());
    assert!(valid_name("bridge").unwrap_err().contains("pre-defined"));
    assert!(valid_name("-x").is_err() && valid_name("").is_err() && valid_name("a/b").is_err());
}

#[test]
fn later_networks_hold_addresses_and_the_first_of_them_is_promoted() {
    use crate::record::ContainerSpec;
    let ts = chrono::DateTime::from_timestamp(0, 0).expect("epoch");
    let ep = |net: &str, last: u8| Endpoint {
        network: net.into(),
        network_id: net.repeat(4),
        bridge: "moor-x".into(),
        ip: Ipv4Addr::new(10, 1, 0, last),
        prefix_len: 24,
        gateway: Ipv4Addr::new(10, 1, 0, 1),
        internal: false,
    };
    let mut spec = ContainerSpec {
        endpoint: Some(ep("front", 2)),
        ..ContainerSpec::default()
    };
    assert_eq!(free_slot(&spec), Some(1));
    spec.extra_endpoints.push(ExtraEndpoint {
        endpoint: ep("back", 7),
        aliases: vec!["b".into()],
        slot: 1,
    });
    assert_eq!(free_slot(&spec), Some(2));
    let a = ContainerRecord::new("a".repeat(64), "a".into(), spec.clone(), ts);
    let b_spec = ContainerSpec {
        endpoint: Some(ep("back", 8)),
        ..ContainerSpec::default()
    };
    let b = ContainerRecord::new("b".repeat(64), "b".into(), b_spec, ts);
    let records = [a, b];
    assert!(held(&records, "back").contains(&Ipv4Addr::new(10, 1, 0, 7)));
    let peers = peer_hosts(&records, &"b".repeat(64), |_| true);
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0].0, Ipv4Addr::new(10, 1, 0, 7));
    assert_eq!(peers[0].1[..2], ["a".to_string(), "b".to_string()]);
    assert!(!promote_first(&mut spec), "the first network is there");
    spec.endpoint = None;
    assert!(promote_first(&mut spec));
    assert_eq!(spec.endpoint.as_ref().map(|e| e.ip.octets()[3]), Some(7));
    assert_eq!(
        (spec.network_mode.as_str(), spec.network_aliases.len()),
        ("back", 1)
    );
    assert!(spec.extra_endpoints.is_empty());
}

#[test]
fn mac_is_derived_from_the_address_as_docker_does() {
    let e = Endpoint {
        network: DEFAULT_NETWORK.into(),
        network_id: String::new(),
        bridge: "moor0".into(),
        ip: Ipv4Addr::new(172, 17, 0, 2),
        prefix_len: 16,
        gateway: Ipv4Addr::new(172, 17, 0, 1),
        internal: false,
    };
    assert_eq!(e.mac_text(), "02:42:ac:11:00:02");
}
