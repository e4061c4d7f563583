//! A registry behind bearer-token auth, as Docker Hub does it: a small front on a loopback
//! port that answers `401` with `WWW-Authenticate: Bearer realm=".../token",service=...` to
//! any request without its token, hands the token out at `/token` to a client giving the
//! right basic credentials, and passes requests carrying the token on to a real (anonymous)
//! docker-registry, bodies included (a push's uploads). One thread per connection, one
//! request per connection (`Connection: close`); the listener thread ends with the test
//! process.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

/// The token the realm issues.
const TOKEN: &str = "moor-test-token-7f3a";

/// A running front; its `tokens` counts the tokens issued.
pub struct TokenRealm {
    /// Its loopback port.
    pub port: u16,
    /// How many tokens `/token` handed out.
    pub tokens: Arc<AtomicUsize>,
}

impl TokenRealm {
    /// Starts the front for the registry on `backend` (a loopback port), accepting `user`
    /// and `password`.
    pub fn start(backend: u16, user: &str, password: &str) -> TokenRealm {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the token realm");
        let port = listener.local_addr().expect("address").port();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let tokens = Arc::new(AtomicUsize::new(0));
        let issued = tokens.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (basic, issued) = (basic.clone(), issued.clone());
                std::thread::spawn(move || serve(stream, port, backend, &basic, &issued));
            }
        });
        TokenRealm { port, tokens }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Reads a request head (no request this front serves has a body).
fn read_head(stream: &mut TcpStream) -> Option<String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 || head.len() > 64 << 10 {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}

fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

fn answer(stream: &mut TcpStream, status: &str, extra: &str, body: &str) {
    let text = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra}\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(text.as_bytes());
}

fn serve(mut stream: TcpStream, port: u16, backend: u16, basic: &str, issued: &AtomicUsize) {
    let Some(head) = read_head(&mut stream) else {
        return;
    };
    let target = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let auth = header(&head, "Authorization").unwrap_or_default();
    if target.starts_with("/token") {
        if auth == format!("Basic {basic}") {
            issued.fetch_add(1, Ordering::SeqCst);
            let body = format!(r#"{{"token":"{TOKEN}","expires_in":300}}"#);
            answer(&mut stream, "200 OK", "", &body);
        } else {
            let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#;
            answer(&mut stream, "401 Unauthorized", "", body);
        }
        return;
    }
    if auth != format!("Bearer {TOKEN}") {
        let challenge = format!(
            "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",\
             service=\"moor-test\"\r\n"
        );
        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
        answer(&mut stream, "401 Unauthorized", &challenge, body);
        return;
    }
    proxy(stream, &head, backend);
}

/// Passes the request on to the registry (its headers but Connection and Authorization; Host
/// kept, so the upload URLs the registry answers with point back at this front), then its
/// body (a push's uploads) up and the whole answer back.
fn proxy(mut stream: TcpStream, head: &str, backend: u16) {
    let Ok(mut up) = TcpStream::connect(("127.0.0.1", backend)) else {
        return;
    };
    let mut lines = head.lines();
    let mut request = format!("{}\r\n", lines.next().unwrap_or_default());
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().trim();
        if !["connection", "authorization"].contains(&name.to_ascii_lowercase().as_str()) {
            request.push_str(line);
            request.push_str("\r\n");
        }
    }
    request.push_str("Connection: close\r\n\r\n");
    if up.write_all(request.as_bytes()).is_err() {
        return;
    }
    let (Ok(mut body_in), Ok(mut body_out)) = (stream.try_clone(), up.try_clone()) else {
        return;
    };
    let _ = stream.set_read_timeout(None);
    let body = std::thread::spawn(move || std::io::copy(&mut body_in, &mut body_out));
    let _ = std::io::copy(&mut up, &mut stream);
    // The answer is complete (the registry closes after it): end the body copy too.
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = up.shutdown(std::net::Shutdown::Both);
    let _ = body.join();
}
