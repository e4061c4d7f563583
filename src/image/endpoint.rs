//! Where a pull goes (Docker's rule): the registry the image's name gives; for a Docker Hub
//! image (`busybox`, `docker.io/library/busybox`), each daemon.json `registry-mirrors` entry
//! in order first, then Docker Hub itself. An endpoint whose manifest or config cannot be had
//! (unreachable, an error status, an unknown manifest, refused credentials) passes the pull on
//! to the next one; the error shown is the last endpoint's. Once an endpoint has given the
//! manifest, its layers come from it too.
//!
//! A mirror is reached as its URL says (`http://` in plain text, `https://` over TLS);
//! `insecure-registries` apply to mirrors as to registries: an `https://` mirror the list
//! names (or on loopback) is reached without certificate checks, as Docker does.
//!
//! Tests cannot reach Docker Hub: the environment variable [`HUB_ENDPOINT_ENV`]
//! (`MOOR_TEST_HUB_ENDPOINT=http://127.0.0.1:PORT`) puts another registry in Docker Hub's
//! place. It is read by the daemon at each pull and meant for tests only.

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::Reference;

use super::registry::{insecure_host, scheme_for, PullError};
use crate::config::registry::{InsecureRegistries, Mirror};

/// The variable that replaces Docker Hub's endpoint (tests only).
pub const HUB_ENDPOINT_ENV: &str = "MOOR_TEST_HUB_ENDPOINT";

/// Docker Hub's name in a parsed reference.
const HUB: &str = "docker.io";

/// One place to pull from.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The image's reference with this endpoint as its registry.
    pub reference: Reference,
    /// Plain http or TLS.
    pub protocol: ClientProtocol,
    /// An `https://` mirror that `insecure-registries` names: no certificate checks.
    pub skip_verify: bool,
    /// Whether this is a mirror (logged when it fails).
    pub mirror: bool,
}

impl Endpoint {
    /// A client configuration for this endpoint (the platform resolver is the caller's).
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            protocol: self.protocol.clone(),
            accept_invalid_certificates: self.skip_verify,
            ..ClientConfig::default()
        }
    }

    /// `host[:port]` of the endpoint.
    pub fn host(&self) -> &str {
        self.reference.registry()
    }
}

/// `reference` with `host` as its registry.
fn moved(reference: &Reference, host: &str) -> Reference {
    let (registry, repository) = (host.to_string(), reference.repository().to_string());
    match (reference.digest(), reference.tag()) {
        (Some(d), _) => Reference::with_digest(registry, repository, d.to_string()),
        (None, Some(t)) => Reference::with_tag(registry, repository, t.to_string()),
        (None, None) => Reference::with_tag(registry, repository, "latest".to_string()),
    }
}

/// The endpoint of `mirror` for `reference` (a Docker Hub image).
async fn mirror_endpoint(
    reference: &Reference,
    mirror: &Mirror,
    insecure: &InsecureRegistries,
) -> Endpoint {
    let (protocol, skip_verify) = match mirror.tls {
        true => (
            ClientProtocol::Https,
            insecure_host(&mirror.host, insecure).await,
        ),
        false => (ClientProtocol::Http, false),
    };
    Endpoint {
        reference: moved(reference, &mirror.host),
        protocol,
        skip_verify,
        mirror: true,
    }
}

/// The endpoints to try for `reference`, in order; `hub` is [`HUB_ENDPOINT_ENV`]'s value.
pub async fn endpoints(
    reference: &Reference,
    mirrors: &[Mirror],
    insecure: &InsecureRegistries,
    hub: Option<&str>,
) -> Result<Vec<Endpoint>, PullError> {
    let own = |reference: Reference, protocol| Endpoint {
        reference,
        protocol,
        skip_verify: false,
        mirror: false,
    };
    if reference.registry() != HUB {
        let protocol = protocol_of(scheme_for(reference.registry(), insecure).await);
        return Ok(vec![own(reference.clone(), protocol)]);
    }
    let mut out = Vec::new();
    for mirror in mirrors {
        out.push(mirror_endpoint(reference, mirror, insecure).await);
    }
    match hub {
        Some(url) => {
            let hub = Mirror::parse(HUB_ENDPOINT_ENV, url).map_err(PullError::HubEndpoint)?;
            let mut end = mirror_endpoint(reference, &hub, insecure).await;
            end.mirror = false;
            out.push(end);
        }
        None => out.push(own(reference.clone(), ClientProtocol::Https)),
    }
    Ok(out)
}

fn protocol_of(scheme: &str) -> ClientProtocol {
    match scheme {
        "http" => ClientProtocol::Http,
        _ => ClientProtocol::Https,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn mirrors(list: &[&str]) -> Vec<Mirror> {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        Mirror::parse_all(&list).expect("mirrors")
    }

    #[test]
    fn hub_images_go_through_the_mirrors_in_order_then_the_hub() {
        let insecure = InsecureRegistries::parse(&["10.9.9.9:443".into()]).expect("insecure");
        let m = mirrors(&[
            "http://127.0.0.1:1",
            "https://10.9.9.9:443",
            "https://m.example",
        ]);
        let busybox: Reference = "busybox:1".parse().expect("reference");
        let list = run(endpoints(&busybox, &m, &insecure, None)).expect("endpoints");
        let shown: Vec<(String, bool, bool)> = list
            .iter()
            .map(|e| {
                let scheme = match e.protocol {
                    ClientProtocol::Http => "http",
                    _ => "https",
                };
                let r = &e.reference;
                let at = format!(
                    "{scheme}://{}/{}:{}",
                    e.host(),
                    r.repository(),
                    r.tag().unwrap()
                );
                (at, e.skip_verify, e.mirror)
            })
            .collect();
        let want = |a: &str, s, m| (a.to_string(), s, m);
        assert_eq!(
            shown,
            [
                want("http://127.0.0.1:1/library/busybox:1", false, true),
                want("https://10.9.9.9:443/library/busybox:1", true, true),
                want("https://m.example/library/busybox:1", false, true),
                want("https://docker.io/library/busybox:1", false, false),
            ]
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        let by_digest: Reference = format!("busybox@{digest}").parse().expect("reference");
        let hub = Some("http://127.0.0.1:2");
        let list = run(endpoints(&by_digest, &m[..1], &insecure, hub)).expect("endpoints");
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].host(), "127.0.0.1:2");
        assert!(!list[1].mirror);
        assert_eq!(list[1].reference.digest(), Some(digest.as_str()));
        let bad = run(endpoints(&by_digest, &m, &insecure, Some("127.0.0.1:2")));
        let e = bad.expect_err("a bad hub endpoint").to_string();
        assert!(e.contains(HUB_ENDPOINT_ENV), "{e}");
    }

    #[test]
    fn other_registries_ignore_the_mirrors() {
        let m = mirrors(&["http://127.0.0.1:1"]);
        let own: Reference = "127.0.0.1:5000/app:v1".parse().expect("reference");
        let list = run(endpoints(
            &own,
            &m,
            &InsecureRegistries::default(),
            Some("http://x:1"),
        ))
        .expect("endpoints");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].host(), "127.0.0.1:5000");
        assert!(matches!(list[0].protocol, ClientProtocol::Http));
    }
}
