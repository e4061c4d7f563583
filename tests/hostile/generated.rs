//! Requests over every route for `tests/hostile.rs`: paths, query parameters, headers and
//! bodies from pools of valid, borderline and hostile values, plus random ones.

use proptest::prelude::*;

/// One generated request.
#[derive(Debug, Clone)]
pub struct Generated {
    /// What is sent.
    pub bytes: Vec<u8>,
    /// A HEAD request: its answer has no body.
    pub head_only: bool,
}

impl Generated {
    /// The request as text, shortened, for failure messages.
    pub fn shown(&self) -> String {
        let text = String::from_utf8_lossy(&self.bytes);
        text.chars().take(400).collect()
    }
}

/// The route table (src/api/routes/*.rs): method and path, `{id}` to fill.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/_ping"),
    ("HEAD", "/_ping"),
    ("GET", "/version"),
    ("GET", "/info"),
    ("POST", "/containers/create"),
    ("GET", "/containers/json"),
    ("GET", "/containers/{id}/json"),
    ("POST", "/containers/{id}/start"),
    ("POST", "/containers/{id}/stop"),
    ("POST", "/containers/{id}/restart"),
    ("POST", "/containers/{id}/kill"),
    ("POST", "/containers/{id}/pause"),
    ("POST", "/containers/{id}/unpause"),
    ("POST", "/containers/{id}/wait"),
    ("POST", "/containers/{id}/rename"),
    ("DELETE", "/containers/{id}"),
    ("GET", "/containers/{id}/logs"),
    ("GET", "/containers/{id}/top"),
    ("GET", "/containers/{id}/stats"),
    ("POST", "/containers/{id}/resize"),
    ("HEAD", "/containers/{id}/archive"),
    ("GET", "/containers/{id}/archive"),
    ("PUT", "/containers/{id}/archive"),
    ("GET", "/containers/{id}/export"),
    ("GET", "/containers/{id}/changes"),
    ("POST", "/exec/{id}/resize"),
    ("GET", "/networks"),
    ("GET", "/networks/{id}"),
    // `POST /networks/create` is left out: this daemon runs in the host's network namespace,
    // where a request that parses would make a bridge (tests/user_networks.rs sends its bad
    // input in a namespace of its own).
    ("DELETE", "/networks/{id}"),
    ("POST", "/networks/prune"),
    ("POST", "/networks/{id}/connect"),
    ("POST", "/networks/{id}/disconnect"),
    ("GET", "/volumes"),
    ("GET", "/volumes/{id}"),
    ("POST", "/volumes/create"),
    ("DELETE", "/volumes/{id}"),
    ("POST", "/volumes/prune"),
    ("POST", "/containers/prune"),
    ("POST", "/containers/{id}/attach"),
    ("POST", "/containers/{id}/exec"),
    ("POST", "/exec/{id}/start"),
    ("GET", "/exec/{id}/json"),
    ("GET", "/events"),
    ("POST", "/images/create"),
    ("GET", "/images/json"),
    ("GET", "/images/{id}/json"),
    ("POST", "/images/{id}/tag"),
    ("DELETE", "/images/{id}"),
    ("POST", "/images/prune"),
    // `POST /auth` and `POST /images/{name}/push` are left out: a request that parses
    // reaches a registry, which may be off this host (tests talk to loopback only);
    // tests/registry_auth.rs and tests/push.rs send them their bad input.
    ("GET", "/moor/admin/inspect"),
    ("POST", "/moor/admin/containers/{id}/adopt"),
    ("POST", "/moor/admin/containers/{id}/kill-orphan"),
    // `POST /moor/admin/upgrade` is left out: a valid request replaces the daemon's image
    // (tests/admin_upgrade.rs sends it bad binaries and an unknown field).
    ("GET", "/no/such/route"),
];

const IDS: &[&str] = &[
    "fixed", "nope", "host", "f", "%2e%2e", "a%2Fb", "%zz", "a%00b", "..", "%C3%A9",
];
const KEYS: &[&str] = &[
    "all",
    "stdout",
    "stderr",
    "since",
    "until",
    "t",
    "signal",
    "filters",
    "name",
    "limit",
    "tail",
    "follow",
    "stream",
    "logs",
    "condition",
    "force",
    "v",
    "fromSrc",
    "repo",
    "tag",
    "ps_args",
    "timestamps",
    "size",
    "stdin",
    "changes",
    "path",
    "noOverwriteDirNonDir",
    "copyUIDGID",
];
const VALUES: &[&str] = &[
    "1",
    "0",
    "true",
    "-1",
    "99999999999h",
    "2562048h",
    "18446744073709551616",
    "9000000000000",
    "-9223372036854775808",
    "{}",
    r#"{"until":["99999999999h"]}"#,
    r#"{"status":["exited"]}"#,
    "[1]",
    "SIGKILL",
    "SIGNOPE",
    "99999",
    "not-running",
    "next-exit",
    "removed",
    "-",
    "ENV A=1",
    "",
    "1.5s",
    "2024-13-45T99:00:00Z",
    "/etc/../../..",
    "/proc/self/root",
];
const HEADERS: &[&str] = &[
    "Content-Type: application/json",
    "Content-Type: text/plain",
    "Upgrade: tcp",
    "Connection: Upgrade",
    "Connection: close",
    "Expect: 100-continue",
    "X-Registry-Auth: e30=",
    "Host: second",
    "Transfer-Encoding: chunked",
    "Transfer-Encoding: gzip",
    "Content-Length: 5",
    "Content-Length: -1",
    "Bad Header: x",
];
const BODIES: &[&str] = &[
    "",
    "{}",
    "{",
    "null",
    "[]",
    r#"{"Image":"host","Cmd":["true"]}"#,
    r#"{"Image":"host","Cmd":["true"],"StopTimeout":4294967296}"#,
    r#"{"Image":"host","Cmd":["true"],"HostConfig":{"RestartPolicy":{"Name":"bogus"}}}"#,
    r#"{"Image":"nope:latest","Cmd":["true"]}"#,
    r#"{"Image":"host","Tty":true,"Cmd":["true"]}"#,
    r#"{"Detach":true}"#,
    r#"{"Cmd":["true"],"AttachStdout":true}"#,
    r#"{"Cmd":[]}"#,
];

fn percent(text: &str) -> String {
    super::percent(text)
}

fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(pool).prop_map(String::from)
}

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just("fixed".to_string()),
        2 => pick(IDS),
        1 => "[a-zA-Z0-9._-]{1,24}",
        1 => "[a-f0-9]{64}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    let value = prop_oneof![4 => pick(VALUES).prop_map(|v| percent(&v)), 1 => "[ -~]{0,12}".prop_map(|v| percent(&v)), 1 => Just("%zz".to_string())];
    let key = prop_oneof![4 => pick(KEYS), 1 => "[a-z]{1,6}"];
    proptest::collection::vec((key, value), 0..4).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => pick(BODIES).prop_map(String::into_bytes),
        2 => proptest::collection::vec(any::<u8>(), 0..64),
        1 => Just(vec![b' '; (1 << 20) + 1]),
    ]
}

/// A request over the route table.
pub fn request() -> impl Strategy<Value = Generated> {
    let method = prop_oneof![
        8 => Just(None),
        1 => pick(&["GET", "POST", "DELETE", "HEAD", "PUT"]).prop_map(Some),
    ];
    let prefix = pick(&["", "", "/v1.44", "/v1.24", "/v9", "/vx"]);
    let headers = prop_oneof![
        3 => Just(Vec::new()),
        2 => proptest::collection::vec(pick(HEADERS), 1..3),
    ];
    (
        proptest::sample::select(ROUTES),
        method,
        prefix,
        id(),
        query(),
        headers,
        body(),
    )
        .prop_map(
            |((m, template), method, prefix, id, query, headers, body)| {
                let method = method.unwrap_or_else(|| m.to_string());
                let mut path = format!("{prefix}{}", template.replace("{id}", &id));
                if !query.is_empty() {
                    path = format!("{path}?{query}");
                }
                let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
                Generated {
                    bytes: super::request(&method, &path, &headers, &body),
                    head_only: method == "HEAD",
                }
            },
        )
}
