//! The read phases of the load benches (`load`, `beside_docker`): clients hammering
//! `GET /containers/json` and `GET /containers/{id}/json` for a while, and the creation of
//! the running containers they read. Everything speaks the Docker Engine API over a unix
//! socket, so the same code drives moor and a private dockerd.

use std::path::Path;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::client::{Conn, Stats};

/// Creates and starts `n` containers from the create `body` with `clients` concurrent
/// clients; their ids.
pub fn populate(sock: &Path, n: usize, clients: usize, body: &str) -> Vec<String> {
    let clients = clients.clamp(1, n.max(1));
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let sock = sock.to_path_buf();
            let body = body.to_string();
            let share = n / clients + usize::from(c < n % clients);
            std::thread::spawn(move || {
                let mut conn = Conn::open(&sock).expect("connect");
                (0..share)
                    .map(|_| create_start(&mut conn, &body))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().expect("populate client panicked"))
        .collect()
}

/// One create and start on `conn`; the container's id. Panics on any other answer.
pub fn create_start(conn: &mut Conn, body: &str) -> String {
    let a = conn
        .call("POST", "/containers/create", body)
        .expect("create");
    assert_eq!(
        a.status,
        201,
        "create: {}",
        String::from_utf8_lossy(&a.body)
    );
    let id = a.json()["Id"].as_str().expect("Id").to_string();
    let a = conn
        .call("POST", &format!("/containers/{id}/start"), "")
        .expect("start");
    assert_eq!(a.status, 204, "start: {}", String::from_utf8_lossy(&a.body));
    id
}

/// Which route a read client hammers.
#[derive(Clone, Copy)]
enum Route {
    List,
    Inspect,
}

/// `lists` clients on the list and `inspects` on inspect of random `ids`, for `secs`;
/// the figures of each route (list, inspect).
pub fn read_phase(
    sock: &Path,
    ids: &[String],
    lists: usize,
    inspects: usize,
    secs: f64,
) -> [Stats; 2] {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let routes = std::iter::repeat(Route::List)
        .take(lists)
        .chain(std::iter::repeat(Route::Inspect).take(inspects));
    let threads: Vec<_> = routes
        .map(|route| {
            let sock = sock.to_path_buf();
            let ids = ids.to_vec();
            std::thread::spawn(move || read_client(&sock, route, &ids, deadline))
        })
        .collect();
    let mut out = [Stats::default(), Stats::default()];
    for t in threads {
        let (route, stats) = t.join().expect("read client panicked");
        out[route as usize].merge(stats);
    }
    out
}

fn read_client(sock: &Path, route: Route, ids: &[String], deadline: Instant) -> (Route, Stats) {
    let mut stats = Stats::default();
    let mut rng = rand::thread_rng();
    let mut conn = Conn::open(sock).ok();
    while Instant::now() < deadline {
        let path = match route {
            Route::List => "/containers/json".to_string(),
            Route::Inspect => format!("/containers/{}/json", ids[rng.gen_range(0..ids.len())]),
        };
        let t0 = Instant::now();
        let answer = match conn.as_mut() {
            Some(c) => c.call("GET", &path, ""),
            None => Conn::open(sock).and_then(|mut c| {
                let a = c.call("GET", &path, "");
                conn = Some(c);
                a
            }),
        };
        let took = t0.elapsed();
        let outcome = match answer {
            Ok(a)
                if a.status == 200
                    && a.body.first()
                        == Some(&b"{["[usize::from(matches!(route, Route::List))]) =>
            {
                Ok(())
            }
            Ok(a) => Err(format!(
                "{path}: {} {}",
                a.status,
                String::from_utf8_lossy(&a.body)
            )),
            Err(e) => {
                conn = None;
                Err(format!("{path}: {e}"))
            }
        };
        stats.record(took, outcome);
    }
    (route, stats)
}
