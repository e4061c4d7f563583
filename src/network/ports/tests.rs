use serde_json::json;

use super::*;

fn b(
    container_port: u16,
    proto: Proto,
    ip: Option<[u8; 4]>,
    host_port: Option<u16>,
) -> PortBinding {
    PortBinding {
        container_port,
        proto,
        host_ip: ip.map(Ipv4Addr::from),
        host_port,
    }
}

#[test]
fn every_docker_form_parses() {
    use Proto::{Tcp, Udp};
    let cases: &[(&str, Vec<PortBinding>)] = &[
        ("80", vec![b(80, Tcp, None, None)]),
        ("8080:80", vec![b(80, Tcp, None, Some(8080))]),
        ("8080:80/udp", vec![b(80, Udp, None, Some(8080))]),
        ("80/tcp", vec![b(80, Tcp, None, None)]),
        (
            "127.0.0.1:8080:80",
            vec![b(80, Tcp, Some([127, 0, 0, 1]), Some(8080))],
        ),
        (
            "127.0.0.1::80",
            vec![b(80, Tcp, Some([127, 0, 0, 1]), None)],
        ),
        ("0.0.0.0:8080:80", vec![b(80, Tcp, None, Some(8080))]),
        (":8080:80", vec![b(80, Tcp, None, Some(8080))]),
        (
            "8000-8001:80-81",
            vec![b(80, Tcp, None, Some(8000)), b(81, Tcp, None, Some(8001))],
        ),
        (
            "80-81/udp",
            vec![b(80, Udp, None, None), b(81, Udp, None, None)],
        ),
        (
            "10.0.0.1:7000-7001:70-71/udp",
            vec![
                b(70, Udp, Some([10, 0, 0, 1]), Some(7000)),
                b(71, Udp, Some([10, 0, 0, 1]), Some(7001)),
            ],
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(&parse_publish(spec).unwrap(), want, "{spec}");
    }
}

#[test]
fn every_bad_form_says_why() {
    let cases = [
        ("", "no container port"),
        ("8080:", "no container port"),
        ("abc", "container port \"abc\" is not a port"),
        ("0", "container port \"0\" is not a port"),
        ("70000", "container port \"70000\" is not a port"),
        ("x:80", "host port \"x\" is not a port"),
        ("80/sctp", "sctp is not supported"),
        ("80/icmp", "unknown protocol \"icmp\""),
        ("300.1.1.1:80:80", "\"300.1.1.1\" is not an IPv4 address"),
        ("[::1]:80:80", "IPv6 host addresses are not supported"),
        ("1:2:3:4", "expected [IP:][HOSTPORT:]CONTAINERPORT"),
        ("8000-8002:80-81", "ranges differ in length"),
        (
            "8000-8010:80",
            "a host port range (8000-8010) for one container port",
        ),
        ("81-80", "range 81-80 ends before it starts"),
    ];
    for (spec, reason) in cases {
        let err = parse_publish(spec).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("invalid port specification '{spec}'")),
            "{spec}: {err}"
        );
        assert!(err.contains(reason), "{spec}: {err}");
    }
}

#[test]
fn api_bindings_parse_with_docker_shape() {
    let v = json!({
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": ""}],
        "53/udp": [{"HostPort": "5353"}],
        "90": null,
    });
    let map: BTreeMap<String, Value> = serde_json::from_value(v).unwrap();
    let got = from_api(&map).unwrap();
    assert_eq!(
        got,
        vec![
            b(53, Proto::Udp, None, Some(5353)),
            b(80, Proto::Tcp, None, Some(8080)),
            b(80, Proto::Tcp, Some([127, 0, 0, 1]), None),
        ]
    );
    for (bad, reason) in [
        (
            json!({"80/tcp": [{"HostPort": "x"}]}),
            "host port \"x\" is not a port",
        ),
        (
            json!({"80/tcp": [{"HostPort": 8080}]}),
            "HostPort must be a string",
        ),
        (
            json!({"80/tcp": [{"HostPort": "1", "Extra": 1}]}),
            "Extra is not a field",
        ),
        (json!({"80/tcp": "8080"}), "expected a list"),
        (json!({"eighty": []}), "container port \"eighty\""),
    ] {
        let map: BTreeMap<String, Value> = serde_json::from_value(bad.clone()).unwrap();
        let err = from_api(&map).unwrap_err().to_string();
        assert!(
            err.starts_with("invalid port specification '"),
            "{bad}: {err}"
        );
        assert!(err.contains(reason), "{bad}: {err}");
    }
}

#[test]
fn publish_all_takes_exposed_ports_not_bound_already() {
    let exposed = [
        "80/tcp".to_string(),
        "53/udp".to_string(),
        "443".to_string(),
    ];
    let bound = [b(80, Proto::Tcp, None, Some(8080))];
    let got = publish_all(&exposed, &bound).unwrap();
    assert_eq!(
        got,
        vec![
            b(53, Proto::Udp, None, None),
            b(443, Proto::Tcp, None, None)
        ]
    );
}

fn m(ip: Option<[u8; 4]>, host_port: u16) -> PortMapping {
    PortMapping {
        container_port: 80,
        proto: Proto::Tcp,
        host_ip: ip.map(Ipv4Addr::from),
        host_port,
    }
}

#[test]
fn a_port_held_by_another_container_or_the_host_is_refused() {
    let want = [b(80, Proto::Tcp, None, Some(8080))];
    let err = resolve(&want, &[m(Some([127, 0, 0, 1]), 8080)], 40000, |_, _, _| {
        true
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Bind for 0.0.0.0:8080 failed: port is already allocated"
    );
    let err = resolve(&want, &[], 40000, |_, p, _| p != 8080).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Bind for 0.0.0.0:8080 failed: port is already allocated"
    );
    // Another address, or udp, is another socket.
    let lo = [b(80, Proto::Tcp, Some([127, 0, 0, 1]), Some(8080))];
    assert!(resolve(&lo, &[m(Some([127, 0, 0, 2]), 8080)], 40000, |_, _, _| true).is_ok());
    // Twice in one request.
    let twice = [want[0].clone(), b(81, Proto::Tcp, None, Some(8080))];
    assert!(matches!(
        resolve(&twice, &[], 40000, |_, _, _| true),
        Err(PortError::Allocated { port: 8080, .. })
    ));
}

#[test]
fn ephemeral_ports_skip_what_is_held_and_wrap() {
    let want = [b(80, Proto::Tcp, None, None), b(81, Proto::Tcp, None, None)];
    let got = resolve(&want, &[m(None, 40000)], 40000, |_, p, _| p != 40001).unwrap();
    assert_eq!(
        got.iter().map(|m| m.host_port).collect::<Vec<_>>(),
        vec![40002, 40003]
    );
    let got = resolve(&want, &[], 60999, |_, _, _| true).unwrap();
    assert_eq!(
        got.iter().map(|m| m.host_port).collect::<Vec<_>>(),
        vec![60999, 32768]
    );
    let err = resolve(&want[..1], &[], 40000, |_, _, _| false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no free host port in 32768-60999 for tcp port 80"
    );
}

#[test]
fn the_host_probe_sees_a_listening_socket() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    assert!(!host_port_free(Some(Ipv4Addr::LOCALHOST), port, Proto::Tcp));
    assert!(
        !host_port_free(None, port, Proto::Tcp),
        "0.0.0.0 covers 127.0.0.1"
    );
    drop(held);
    assert!(host_port_free(Some(Ipv4Addr::LOCALHOST), port, Proto::Tcp));
}

#[test]
fn on_the_host_a_listening_socket_and_publish_all_are_honoured() {
    let held = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let spec = ContainerSpec {
        port_bindings: vec![b(80, Proto::Tcp, None, Some(port))],
        ..ContainerSpec::default()
    };
    let err = resolve_on_host(&spec, &[]).unwrap_err();
    assert_eq!(
        err,
        PortError::Allocated {
            ip: Ipv4Addr::UNSPECIFIED,
            port
        }
    );
    // 198.51.100.0/24 is documentation space: no address of this host.
    let spec = ContainerSpec {
        port_bindings: vec![b(80, Proto::Tcp, Some([198, 51, 100, 77]), Some(8080))],
        ..ContainerSpec::default()
    };
    let err = resolve_on_host(&spec, &[]).unwrap_err().to_string();
    assert_eq!(
        err,
        "Bind for 198.51.100.77:8080 failed: 198.51.100.77 is not an address of this host"
    );
    let spec = ContainerSpec {
        port_bindings: vec![b(80, Proto::Tcp, Some([127, 0, 0, 1]), None)],
        ..ContainerSpec::default()
    };
    assert!(resolve_on_host(&spec, &[]).is_ok(), "127.0.0.1 is local");
    let spec = ContainerSpec {
        exposed_ports: vec!["80/tcp".into(), "53/udp".into()],
        publish_all: true,
        ..ContainerSpec::default()
    };
    let got = resolve_on_host(&spec, &[]).unwrap();
    assert_eq!(got.len(), 2);
    for m in &got {
        assert!(EPHEMERAL.contains(&m.host_port), "{m:?}");
        assert_eq!(m.host_ip, None);
    }
    assert_eq!((got[0].container_port, got[1].container_port), (80, 53));
}

#[test]
fn none_and_host_networks_refuse_ports() {
    assert!(check_network("none", true)
        .unwrap_err()
        .contains("\"none\""));
    assert!(check_network("host", true)
        .unwrap_err()
        .contains("\"host\""));
    assert!(check_network("none", false).is_ok());
    assert!(check_network("bridge", true).is_ok());
}

#[test]
fn port_lines_are_dockers() {
    let lines = port_lines(&[m(Some([127, 0, 0, 1]), 9090), m(None, 8080)]);
    assert_eq!(
        lines,
        vec!["80/tcp -> 0.0.0.0:8080", "80/tcp -> 127.0.0.1:9090"]
    );
}
