//! Registry credentials against real registries: Debian's docker-registry with htpasswd basic
//! auth, and the same registry behind a bearer-token realm (tests/common/token_realm.rs).
//! `POST /auth` checks credentials as `docker login` expects; `moor login` and the docker
//! CLI's login store them in config.json; pulls send them (`X-Registry-Auth`); refused
//! credentials fail clearly and leave nothing.

mod common;

use std::sync::atomic::Ordering;

use common::registry::{skip_reason as registry_skip, two_layer_image, Registry};
use common::runc::skip_reason as runc_skip;
use common::token_realm::TokenRealm;
use common::Daemon;

/// A runc daemon, or None (reason printed) when asked to skip.
fn daemon() -> Option<Daemon> {
    if let Some(reason) = runc_skip().or_else(registry_skip) {
        eprintln!("skipped: {reason}");
        return None;
    }
    Some(Daemon::start_with_runtime("{}", "runc"))
}

/// The daemon has no image and no layer, and nothing is left in its tmp dir.
fn nothing_kept(d: &Daemon) {
    let list = d.http("GET", "/images/json", None).json();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
    let empty = |dir: &str| {
        std::fs::read_dir(d.root().join(dir))
            .map(|mut r| r.next().is_none())
            .unwrap_or(true)
    };
    assert!(empty("images/layers"), "no layer kept");
    assert!(empty("images/tmp"), "nothing left in tmp");
}

fn config_json(d: &Daemon) -> String {
    std::fs::read_to_string(d.root().with_file_name("docker-config/config.json"))
        .unwrap_or_default()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn basic_auth_login_then_pull() {
    let Some(d) = daemon() else { return };
    let reg = Registry::start_htpasswd("alice", "s3cr3t");
    let (layout, _) = two_layer_image(&d.root().with_file_name("oci"), "v1");
    reg.push(&layout, "v1", "app", &["--dest-creds", "alice:s3cr3t"]);
    let name = format!("{}/app:v1", reg.host());

    let out = d.cli_fail(&["pull", &name]);
    assert!(
        stderr(&out).contains("pull access denied"),
        "{}",
        stderr(&out)
    );
    nothing_kept(&d);

    // POST /auth, as docker login calls it.
    let body = |pw: &str| {
        format!(
            r#"{{"username":"alice","password":"{pw}","serveraddress":"{}"}}"#,
            reg.host()
        )
    };
    let r = d.http("POST", "/v1.44/auth", Some(&body("wrong")));
    assert_eq!(r.status, 401, "{}", r.body);
    let want = format!(
        "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
        reg.host()
    );
    assert!(r.body.contains(&want), "{}", r.body);
    let r = d.http("POST", "/v1.44/auth", Some(&body("s3cr3t")));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        serde_json::json!({"Status": "Login Succeeded", "IdentityToken": ""})
    );

    // moor login: refused credentials are not stored; accepted ones are, in config.json.
    let out = d.cli_fail(&["login", "-u", "alice", "-p", "wrong", &reg.host()]);
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    assert!(
        !config_json(&d).contains(&reg.host()),
        "{}",
        config_json(&d)
    );
    let args = ["login", "-u", "alice", "--password-stdin", &reg.host()];
    let out = d.cli_input(&args, Some(b"s3cr3t\n"));
    assert!(out.status.success(), "{}", common::describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
    let config: serde_json::Value = serde_json::from_str(&config_json(&d)).expect("config.json");
    assert_eq!(config["auths"][reg.host()]["auth"], "YWxpY2U6czNjcjN0");

    let out = d.cli_ok(&["pull", &name]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(
        d.cli_ok(&["run", "--rm", &name, "cat", "/etc/base.txt"]),
        "from layer 1\n"
    );
    let out = d.cli_ok(&["logout", &reg.host()]);
    assert!(out.contains("Removing login credentials"), "{out}");
    assert!(!config_json(&d).contains(&reg.host()));
}

#[test]
fn wrong_stored_credentials_fail_the_pull_and_keep_nothing() {
    let Some(d) = daemon() else { return };
    let reg = Registry::start_htpasswd("alice", "s3cr3t");
    let (layout, _) = two_layer_image(&d.root().with_file_name("oci"), "v1");
    reg.push(&layout, "v1", "app", &["--dest-creds", "alice:s3cr3t"]);
    let dir = d.root().with_file_name("docker-config");
    std::fs::create_dir_all(&dir).expect("config dir");
    // base64("alice:nope").
    let config = format!(
        r#"{{"auths":{{"{}":{{"auth":"YWxpY2U6bm9wZQ=="}}}}}}"#,
        reg.host()
    );
    std::fs::write(dir.join("config.json"), config).expect("config.json");
    let out = d.cli_fail(&["pull", &format!("{}/app:v1", reg.host())]);
    assert!(
        stderr(&out).contains("pull access denied"),
        "{}",
        stderr(&out)
    );
    nothing_kept(&d);
}

#[test]
fn the_docker_cli_logs_in_and_pulls() {
    let Some(d) = daemon() else { return };
    let reg = Registry::start_htpasswd("alice", "s3cr3t");
    let (layout, _) = two_layer_image(&d.root().with_file_name("oci"), "v1");
    reg.push(&layout, "v1", "app", &["--dest-creds", "alice:s3cr3t"]);
    let name = format!("{}/app:v1", reg.host());
    let wrong = ["login", "-u", "alice", "--password-stdin", &reg.host()];
    let out = d.docker(&wrong, Some(b"wrong\n"));
    assert!(!out.status.success(), "{}", common::describe(&out));
    assert!(
        stderr(&out).contains("failed with status: 401 Unauthorized"),
        "{}",
        common::describe(&out)
    );
    let out = d.docker(&wrong, Some(b"s3cr3t\n"));
    assert!(out.status.success(), "{}", common::describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
    let text = common::describe(&d.docker(&["pull", &name], None));
    assert!(text.contains("Downloaded newer image"), "{text}");
    let out = d.docker_ok(&["run", "--rm", &name, "cat", "/etc/top.txt"]);
    assert_eq!(out, "from layer 2\n");
}

#[test]
fn a_bearer_token_realm_is_followed() {
    let Some(d) = daemon() else { return };
    let reg = Registry::start();
    let (layout, _) = two_layer_image(&d.root().with_file_name("oci"), "v1");
    reg.push(&layout, "v1", "app", &[]);
    let realm = TokenRealm::start(reg.port, "bob", "hunter2");
    let name = format!("{}/app:v1", realm.host());

    let out = d.cli_fail(&["pull", &name]);
    assert!(
        stderr(&out).contains("pull access denied"),
        "{}",
        stderr(&out)
    );
    nothing_kept(&d);
    let out = d.cli_fail(&["login", "-u", "bob", "-p", "wrong", &realm.host()]);
    let want = format!(
        "login attempt to http://{}/token failed with status: 401 Unauthorized",
        realm.host()
    );
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    assert_eq!(realm.tokens.load(Ordering::SeqCst), 0);
    d.cli_ok(&["login", "-u", "bob", "-p", "hunter2", &realm.host()]);
    assert_eq!(realm.tokens.load(Ordering::SeqCst), 1, "login took a token");
    let out = d.cli_ok(&["pull", &name]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert!(
        realm.tokens.load(Ordering::SeqCst) >= 2,
        "the pull took one"
    );
    assert_eq!(d.cli_ok(&["run", "--rm", &name]), "from layer 2\n");
}
