//! A loopback TCP proxy in front of a test registry: it records every request line the
//! daemon sends (to count blob GETs), can hold requests whose line names a given string
//! until released (to make two pulls meet on one layer), can slow the registry's answers to
//! a byte rate (so a test can act in the middle of a download), and can cut one answer's
//! connection after some bytes (a download that breaks). Meant for pulls: the requests it
//! forwards are bodiless (GET, HEAD).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the proxy's threads share with the test.
#[derive(Default)]
struct Shared {
    /// Every request line seen, in order (held ones included).
    requests: Mutex<Vec<String>>,
    /// Every request head seen (line and headers), in order.
    heads: Mutex<Vec<String>>,
    /// The next request whose line contains this has its answer cut after so many bytes.
    cut: Mutex<Option<(String, u64)>>,
    /// Set: `Range` headers are dropped on the way (a registry without Range support).
    no_range: AtomicBool,
    /// A request whose line contains one of these waits until it is removed.
    held: Mutex<Vec<String>>,
    /// The answers' rate in bytes per second per connection; 0: as fast as they come.
    rate: AtomicU64,
    /// Set on drop: the accept loop ends.
    stop: AtomicBool,
}

/// A running proxy to `127.0.0.1:upstream`; stops accepting on drop.
pub struct Proxy {
    /// The proxy's loopback port.
    pub port: u16,
    /// The state its threads share.
    shared: Arc<Shared>,
}

impl Proxy {
    /// Starts a proxy to the registry on `upstream` (a loopback port).
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        listener.set_nonblocking(true).expect("nonblocking accept");
        let shared = Arc::new(Shared::default());
        let state = shared.clone();
        thread::spawn(move || {
            while !state.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let state = state.clone();
                        thread::spawn(move || connection(client, upstream, state));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Proxy { port, shared }
    }

    /// `127.0.0.1:PORT`: the registry as the daemon reaches it through the proxy.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every request line seen so far.
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().expect("requests").clone()
    }

    /// How many `GET`s of the blob `digest` were seen.
    pub fn blob_gets(&self, digest: &str) -> usize {
        let path = format!("/blobs/{digest} ");
        self.requests()
            .iter()
            .filter(|l| l.starts_with("GET ") && l.contains(&path))
            .count()
    }

    /// Every request head seen so far (request line and headers).
    pub fn heads(&self) -> Vec<String> {
        self.shared.heads.lock().expect("heads").clone()
    }

    /// Cuts the connection of the next request whose line contains `text` once `bytes` of
    /// its answer (head included) went through.
    pub fn cut_after(&self, text: &str, bytes: u64) {
        *self.shared.cut.lock().expect("cut") = Some((text.to_string(), bytes));
    }

    /// Drops the `Range` header of every request from now on, as a registry that does not
    /// support ranges answers (the whole blob, 200); [`Proxy::heads`] still shows it.
    pub fn drop_ranges(&self) {
        self.shared.no_range.store(true, Ordering::SeqCst);
    }

    /// Holds every request whose line contains `text` until [`Proxy::release`].
    pub fn hold(&self, text: &str) {
        self.shared
            .held
            .lock()
            .expect("held")
            .push(text.to_string());
    }

    /// Lets the requests held for `text` go on.
    pub fn release(&self, text: &str) {
        self.shared.held.lock().expect("held").retain(|t| t != text);
    }

    /// Slows the answers to `bytes_per_second` per connection (0: full speed).
    pub fn set_rate(&self, bytes_per_second: u64) {
        self.shared.rate.store(bytes_per_second, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

/// Serves one client connection: requests up, answers down, each way on its own thread.
fn connection(client: TcpStream, upstream: u16, state: Arc<Shared>) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let (Ok(client_up), Ok(server_down)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let down_state = state.clone();
    // Bytes of answer left before this connection is cut (set by a request to cut).
    let budget: Arc<Mutex<Option<u64>>> = Arc::default();
    let down_budget = budget.clone();
    let down = thread::spawn(move || answers(server_down, client, &down_state, &down_budget));
    requests(client_up, server, &state, &budget);
    let _ = down.join();
}

/// Forwards the client's request heads one by one, recording and holding them.
fn requests(
    mut client: TcpStream,
    mut server: TcpStream,
    state: &Shared,
    budget: &Mutex<Option<u64>>,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = pending.drain(..end + 4).collect();
            let text = String::from_utf8_lossy(&head);
            let line = text.lines().next().unwrap_or_default().to_string();
            state.requests.lock().expect("requests").push(line.clone());
            state.heads.lock().expect("heads").push(text.to_string());
            let mut cut = state.cut.lock().expect("cut");
            if let Some((_, bytes)) = cut.as_ref().filter(|(t, _)| line.contains(t.as_str())) {
                *budget.lock().expect("budget") = Some(*bytes);
                *cut = None;
            }
            drop(cut);
            while state
                .held
                .lock()
                .expect("held")
                .iter()
                .any(|h| line.contains(h.as_str()))
            {
                thread::sleep(Duration::from_millis(20));
            }
            let head = match state.no_range.load(Ordering::SeqCst) {
                true => without_range(&text).into_bytes(),
                false => head,
            };
            if server.write_all(&head).is_err() {
                return;
            }
        }
    }
    let _ = server.shutdown(Shutdown::Write);
}

/// Forwards the registry's answers, at the set rate.
fn answers(
    mut server: TcpStream,
    mut client: TcpStream,
    state: &Shared,
    budget: &Mutex<Option<u64>>,
) {
    let mut buf = [0u8; 16 << 10];
    loop {
        let mut n = match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let left = *budget.lock().expect("budget");
        if let Some(left) = left {
            n = n.min(usize::try_from(left).unwrap_or(usize::MAX));
            *budget.lock().expect("budget") = Some(left - n as u64);
            if n == 0 {
                // The cut: both ways closed, as a connection reset mid-answer.
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
                return;
            }
        }
        let rate = state.rate.load(Ordering::SeqCst);
        if let Some(micros) = (n as u64 * 1_000_000).checked_div(rate) {
            thread::sleep(Duration::from_micros(micros));
        }
        if client.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = client.shutdown(Shutdown::Write);
}

/// A request head without its `Range` header.
fn without_range(head: &str) -> String {
    head.split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("range:"))
        .collect::<Vec<_>>()
        .join("\r\n")
}
