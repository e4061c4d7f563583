//! Images have one owner: `rmi IMAGE` racing `create --image IMAGE` (raw API requests on
//! threads, released together) never leaves a container whose image is gone. After each
//! round either the image was removed and every create failed with "No such image", or the
//! image is still there and every create made a container; every container's `Image` is an
//! image of the list (root, runc and busybox: the busybox image as `tests/runc.rs` imports it).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::thread;

use common::runc::{busybox_tar, skip_reason};
use common::{raw_request, Daemon, HttpResponse, HTTP_DEADLINE};

/// Rounds of the race.
const ROUNDS: usize = 40;
/// Creates racing the one `rmi` of a round.
const CREATES: usize = 3;
/// The image's name.
const IMAGE: &str = "race";

/// One request on `socket` (HTTP/1.0, JSON body when given).
fn request(socket: &Path, method: &str, path: &str, body: &str) -> HttpResponse {
    let mut text = format!(
        "{method} {path} HTTP/1.0\r\nHost: moor\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        text.push_str("Content-Type: application/json\r\n");
    }
    text.push_str("\r\n");
    text.push_str(body);
    raw_request(socket, &text, HTTP_DEADLINE).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// The ids (`sha256:...`) of every image the daemon lists.
fn image_ids(socket: &Path) -> BTreeSet<String> {
    let list = request(socket, "GET", "/images/json", "").json();
    let list = list.as_array().expect("image list").clone();
    list.iter()
        .map(|i| i["Id"].as_str().expect("Id").to_string())
        .collect()
}

/// Every container's id and `Image` (inspect's image id).
fn containers(socket: &Path) -> Vec<(String, String)> {
    let list = request(socket, "GET", "/containers/json?all=1", "").json();
    let ids: Vec<String> = list
        .as_array()
        .expect("container list")
        .iter()
        .map(|c| c["Id"].as_str().expect("Id").to_string())
        .collect();
    ids.into_iter()
        .map(|id| {
            let inspect = request(socket, "GET", &format!("/containers/{id}/json"), "");
            assert_eq!(inspect.status, 200, "inspect {id}: {}", inspect.body);
            let image = inspect.json()["Image"].as_str().expect("Image").to_string();
            (id, image)
        })
        .collect()
}

/// What one round's requests answered.
struct Round {
    /// The rmi's status and body.
    rmi: HttpResponse,
    /// Each create's status and body.
    creates: Vec<HttpResponse>,
}

/// One `DELETE /images/race` and [`CREATES`] `POST /containers/create`, released together.
fn race(socket: &Path) -> Round {
    let start = Arc::new(Barrier::new(CREATES + 1));
    let spawn = |method: &'static str, path: &'static str, body: &'static str| {
        let (socket, start): (PathBuf, _) = (socket.to_path_buf(), start.clone());
        thread::spawn(move || {
            start.wait();
            request(&socket, method, path, body)
        })
    };
    let body = r#"{"Image":"race","Cmd":["true"]}"#;
    let creates: Vec<_> = (0..CREATES)
        .map(|_| spawn("POST", "/containers/create", body))
        .collect();
    let rmi = spawn("DELETE", "/images/race", "");
    Round {
        rmi: rmi.join().expect("rmi thread"),
        creates: creates
            .into_iter()
            .map(|c| c.join().expect("create thread"))
            .collect(),
    }
}

/// Checks one round's answers against what the daemon lists afterwards.
fn check(round: usize, socket: &Path, answers: &Round) {
    let images = image_ids(socket);
    let image_kept = match answers.rmi.status {
        200 => false,
        409 => true,
        other => panic!("round {round}: rmi answered {other}: {}", answers.rmi.body),
    };
    for c in &answers.creates {
        match (image_kept, c.status) {
            (true, 201) => {}
            (false, 404) => assert!(
                c.message().contains("No such image"),
                "round {round}: create failed with {}",
                c.body
            ),
            (kept, status) => panic!(
                "round {round}: image kept: {kept} (rmi {}: {}), but a create answered {status}: {}",
                answers.rmi.status, answers.rmi.body, c.body
            ),
        }
    }
    for (id, image) in containers(socket) {
        assert!(
            images.contains(&image),
            "round {round}: container {id} has image {image}, which is gone (images: {images:?}; rmi {}: {})",
            answers.rmi.status,
            answers.rmi.body
        );
    }
}

#[test]
fn rmi_racing_create_never_leaves_a_container_without_its_image() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let d = Daemon::start_with_runtime("{}", "runc");
    let tar = d.root().with_file_name("bb.tar");
    std::fs::write(&tar, busybox_tar()).expect("write busybox tar");
    let tar = tar.to_str().expect("utf-8");
    let socket = d.socket();
    let (mut removed, mut kept) = (0, 0);
    for round in 0..ROUNDS {
        if image_ids(&socket).is_empty() {
            let out = d.cli_ok(&["image", "import", tar, IMAGE]);
            assert!(out.trim().starts_with("sha256:"), "{out}");
        }
        let answers = race(&socket);
        check(round, &socket, &answers);
        match answers.rmi.status {
            200 => removed += 1,
            _ => kept += 1,
        }
        for (id, _) in containers(&socket) {
            let gone = request(&socket, "DELETE", &format!("/containers/{id}"), "");
            assert_eq!(gone.status, 204, "rm {id}: {}", gone.body);
        }
    }
    eprintln!("{ROUNDS} rounds: rmi won {removed}, create won {kept}");
}
