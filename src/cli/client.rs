//! A blocking HTTP/1.1 client for the daemon's Docker Engine API over its unix socket.
//!
//! hyper's legacy pooled client with hyperlocal's connector runs on a current-thread tokio
//! runtime that this struct owns; every call blocks on it, so commands stay plain sequential
//! code. Streaming bodies (`logs -f`, `wait`) are read chunk by chunk.

use std::path::PathBuf;
use std::time::Duration;

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::http::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client as HyperClient;
use hyperlocal::{UnixClientExt, UnixConnector};
use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::api::types::ErrorBody;

#[cfg(test)]
mod pending_tests;
mod upload;

/// A request's body: whole (JSON, a small tar) or streamed from a reader ([`upload`]).
type ReqBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// The API version every path is prefixed with, as the docker CLI does.
pub const API_VERSION: &str = "1.44";

/// How long [`Client::post_pending`] waits for the answer's headers before going on: the daemon
/// sends them as soon as the wait is registered, as Docker's does.
const PENDING_HEADERS_GRACE: Duration = Duration::from_millis(250);

/// Why a call to the daemon failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// `--host` is not a `unix://` address.
    #[error("invalid host {host:?}: only unix://PATH is supported")]
    InvalidHost {
        /// What was given.
        host: String,
    },
    /// The tokio runtime could not be built.
    #[error("start the client runtime")]
    Runtime(#[source] std::io::Error),
    /// The socket is missing or nobody listens on it.
    #[error("Cannot connect to the moor daemon at {host}: is the daemon running?")]
    Connect {
        /// The `unix://` address tried.
        host: String,
        /// The io error below hyper's.
        #[source]
        source: std::io::Error,
    },
    /// The request could not be sent or its answer not received.
    #[error("{method} {path}: request failed")]
    Request {
        /// The method.
        method: Method,
        /// The path (with its query).
        path: String,
        /// hyper's error.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The request could not be built (an invalid path).
    #[error("build request for {path}")]
    Build {
        /// The path.
        path: String,
        /// http's error.
        #[source]
        source: hyper::http::Error,
    },
    /// The answer's body broke off.
    #[error("read the answer to {path}")]
    Body {
        /// The path.
        path: String,
        /// hyper's error.
        #[source]
        source: hyper::Error,
    },
    /// The daemon answered with an error status; `message` is its text.
    #[error("{message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The daemon's message (`{"message": ...}`).
        message: String,
    },
    /// The answer was not the JSON expected.
    #[error("decode the answer to {path}")]
    Decode {
        /// The path.
        path: String,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// A request body could not be serialized.
    #[error("encode the request to {path}")]
    Encode {
        /// The path.
        path: String,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// A background request's task died.
    #[error("background request to {path} was lost")]
    Join {
        /// The path.
        path: String,
        /// tokio's error.
        #[source]
        source: tokio::task::JoinError,
    },
}

impl ClientError {
    /// The HTTP status of an API error, if this is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A connection to the daemon.
pub struct Client {
    /// The `unix://` address, for messages.
    host: String,
    /// The socket path.
    socket: PathBuf,
    /// Drives every request; current-thread, owned here.
    runtime: Runtime,
    /// hyper's pooled client over hyperlocal's unix connector.
    http: HyperClient<UnixConnector, ReqBody>,
}

/// An answer body read as it arrives.
pub struct BodyStream<'c> {
    /// The client whose runtime drives the body.
    client: &'c Client,
    /// The path, for errors.
    path: String,
    /// The body.
    body: Incoming,
    /// The answer is Docker's raw stream (a Tty container's output), not multiplexed.
    pub raw: bool,
}

/// An answer's header as text.
fn header_value(response: &hyper::Response<Incoming>, name: &str) -> Option<String> {
    let value = response.headers().get(name)?;
    value.to_str().ok().map(String::from)
}

/// Whether an answer's Content-Type is Docker's raw stream.
fn is_raw_stream(response: &hyper::Response<Incoming>) -> bool {
    response
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/vnd.docker.raw-stream")
}

/// A request sent in the background whose answer is collected later ([`Client::finish`]).
pub struct Pending {
    /// The path, for errors.
    path: String,
    /// Its answer's headers had come (the daemon registered it) when the call returned.
    registered: bool,
    /// The answer, or the task still collecting it.
    answer: PendingAnswer,
}

impl Pending {
    /// Whether the request was registered (its answer's headers came) before the call that
    /// sent it returned, rather than its grace period running out.
    pub fn registered(&self) -> bool {
        self.registered
    }
}

/// Where a [`Pending`] answer is.
enum PendingAnswer {
    /// Still coming: the task collecting it.
    Running(JoinHandle<Result<Bytes, ClientError>>),
    /// Already here.
    Done(Bytes),
}

impl Client {
    /// A client for `host` (`unix://PATH`); nothing is connected yet.
    pub fn new(host: &str) -> Result<Client, ClientError> {
        let path = host
            .strip_prefix("unix://")
            .filter(|path| !path.is_empty())
            .ok_or_else(|| ClientError::InvalidHost {
                host: host.to_string(),
            })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ClientError::Runtime)?;
        // The pool spawns its connection tasks, so it must be built inside the runtime.
        let http = runtime.block_on(async { HyperClient::unix() });
        Ok(Client {
            host: host.to_string(),
            socket: PathBuf::from(path),
            runtime,
            http,
        })
    }

    /// The socket path (for a hijacked connection, which hyper's pool cannot give).
    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// `GET path` decoded as JSON.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let body = self.call(Method::GET, path, None)?;
        decode(path, &body)
    }

    /// `GET path` as raw bytes (for `inspect`, which prints the daemon's JSON as it is).
    pub fn get_raw(&self, path: &str) -> Result<Bytes, ClientError> {
        self.call(Method::GET, path, None)
    }

    /// `POST path` without a body, the answer decoded as JSON.
    pub fn post_answer<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let answer = self.call(Method::POST, path, None)?;
        decode(path, &answer)
    }

    /// `POST path` with a JSON body, the answer decoded as JSON.
    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let json = serde_json::to_vec(body).map_err(|source| ClientError::Encode {
            path: path.to_string(),
            source,
        })?;
        let answer = self.call(Method::POST, path, Some(Bytes::from(json)))?;
        decode(path, &answer)
    }

    /// `POST path` with a raw body (an image tarball), the answer as raw bytes.
    pub fn post_bytes(&self, path: &str, body: Bytes) -> Result<Bytes, ClientError> {
        self.call(Method::POST, path, Some(body))
    }

    /// `POST path` without a body, the answer ignored (204, or 304 for "already so").
    pub fn post_empty(&self, path: &str) -> Result<(), ClientError> {
        self.call(Method::POST, path, None).map(drop)
    }

    /// `DELETE path`, the answer ignored.
    pub fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, path, None).map(drop)
    }

    /// `DELETE path`, the answer decoded as JSON.
    pub fn call_delete_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let answer = self.call(Method::DELETE, path, None)?;
        decode(path, &answer)
    }

    /// `GET path`, the body to be read as it arrives.
    pub fn get_stream(&self, path: &str) -> Result<BodyStream<'_>, ClientError> {
        let response = self.runtime.block_on(self.send(Method::GET, path, None))?;
        let response = self.runtime.block_on(check_status(response, path))?;
        Ok(BodyStream {
            client: self,
            path: path.to_string(),
            raw: is_raw_stream(&response),
            body: response.into_body(),
        })
    }

    /// `GET path`, the body to be read as it arrives, and the answer's `header`.
    pub fn get_stream_with_header(
        &self,
        path: &str,
        header: &str,
    ) -> Result<(BodyStream<'_>, Option<String>), ClientError> {
        let response = self.runtime.block_on(self.send(Method::GET, path, None))?;
        let response = self.runtime.block_on(check_status(response, path))?;
        let value = header_value(&response, header);
        let stream = BodyStream {
            client: self,
            path: path.to_string(),
            raw: is_raw_stream(&response),
            body: response.into_body(),
        };
        Ok((stream, value))
    }

    /// `HEAD path`: the answer's `header` (an error status is [`ClientError::Api`] with the
    /// status's text: a HEAD answer has no body).
    pub fn head_header(&self, path: &str, header: &str) -> Result<Option<String>, ClientError> {
        self.runtime.block_on(async {
            let response = self.send(Method::HEAD, path, None).await?;
            let response = check_status(response, path).await?;
            Ok(header_value(&response, header))
        })
    }

    /// `PUT path` with a raw body (a tar), the answer ignored.
    pub fn put_bytes(&self, path: &str, body: Bytes) -> Result<(), ClientError> {
        self.call(Method::PUT, path, Some(body)).map(drop)
    }

    /// `POST path` (no body), the answer to be read as it arrives (`pull`'s progress).
    pub fn post_stream(&self, path: &str) -> Result<BodyStream<'_>, ClientError> {
        self.post_stream_auth(path, None)
    }

    /// [`Client::post_stream`] with registry credentials (an `X-Registry-Auth` value).
    pub fn post_stream_auth(
        &self,
        path: &str,
        registry_auth: Option<String>,
    ) -> Result<BodyStream<'_>, ClientError> {
        let request = self.send_with(Method::POST, path, None, registry_auth);
        let response = self.runtime.block_on(request)?;
        let response = self.runtime.block_on(check_status(response, path))?;
        Ok(BodyStream {
            client: self,
            path: path.to_string(),
            raw: is_raw_stream(&response),
            body: response.into_body(),
        })
    }

    /// `POST path` sent in the background; returns once the answer's headers arrived (the
    /// daemon registered the request) or a short grace period passed. Collect the answer with
    /// [`Client::finish`]. `run --rm` registers its wait this way before starting.
    pub fn post_pending(&self, path: &str) -> Result<Pending, ClientError> {
        self.post_pending_while(path, || ()).0
    }

    /// [`Client::post_pending`], with `during` run while the request is on its way (another
    /// request of its own: `run --rm` opens the output stream meanwhile, one round trip
    /// instead of two before the start). Returns once both are done.
    pub fn post_pending_while<T>(
        &self,
        path: &str,
        during: impl FnOnce() -> T,
    ) -> (Result<Pending, ClientError>, T) {
        let (headers_tx, headers_rx) = tokio::sync::oneshot::channel::<()>();
        let request = self.send(Method::POST, path, None);
        let owned_path = path.to_string();
        let task = self.runtime.spawn(async move {
            let response = request.await?;
            let _ = headers_tx.send(());
            let response = check_status(response, &owned_path).await?;
            collect(response.into_body(), &owned_path).await
        });
        // The task runs whenever the runtime does: within `during`'s own calls too.
        let other = during();
        let registered = self.runtime.block_on(async {
            let headers = tokio::time::timeout(PENDING_HEADERS_GRACE, headers_rx).await;
            matches!(headers, Ok(Ok(())))
        });
        if !task.is_finished() {
            let pending = Pending {
                path: path.to_string(),
                registered,
                answer: PendingAnswer::Running(task),
            };
            return (Ok(pending), other);
        }
        // It ended already: an error (no daemon, no such container) is reported before the
        // caller goes on; an answer is kept for `finish`.
        let pending = self.join(path, task).map(|body| Pending {
            path: path.to_string(),
            registered,
            answer: PendingAnswer::Done(body),
        });
        (pending, other)
    }

    /// The answer of a [`Pending`] request, decoded as JSON.
    pub fn finish<T: DeserializeOwned>(&self, pending: Pending) -> Result<T, ClientError> {
        let path = pending.path.clone();
        let body = self.finish_raw(pending)?;
        decode(&path, &body)
    }

    /// The answer of a [`Pending`] request as bytes.
    fn finish_raw(&self, pending: Pending) -> Result<Bytes, ClientError> {
        match pending.answer {
            PendingAnswer::Running(task) => self.join(&pending.path, task),
            PendingAnswer::Done(body) => Ok(body),
        }
    }

    /// Waits for a background request's task.
    fn join(
        &self,
        path: &str,
        task: JoinHandle<Result<Bytes, ClientError>>,
    ) -> Result<Bytes, ClientError> {
        self.runtime
            .block_on(task)
            .map_err(|source| ClientError::Join {
                path: path.to_string(),
                source,
            })?
    }

    /// One request, its whole answer collected; error statuses become [`ClientError::Api`].
    fn call(&self, method: Method, path: &str, body: Option<Bytes>) -> Result<Bytes, ClientError> {
        self.runtime.block_on(async {
            let response = self.send(method, path, body).await?;
            let response = check_status(response, path).await?;
            collect(response.into_body(), path).await
        })
    }

    /// Builds and sends a request; the future resolves with the answer's head.
    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> impl std::future::Future<Output = Result<Response<Incoming>, ClientError>> + Send + 'static
    {
        self.send_with(method, path, body, None)
    }

    /// [`Client::send`] with an optional `X-Registry-Auth` header.
    fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        registry_auth: Option<String>,
    ) -> impl std::future::Future<Output = Result<Response<Incoming>, ClientError>> + Send + 'static
    {
        let content_type = body.is_some().then_some("application/json");
        let body = Full::new(body.unwrap_or_default())
            .map_err(|never| match never {})
            .boxed_unsync();
        self.send_body(method, path, body, content_type, registry_auth)
    }

    /// Sends a request with any body (see [`ReqBody`]); the future resolves with the
    /// answer's head.
    fn send_body(
        &self,
        method: Method,
        path: &str,
        body: ReqBody,
        content_type: Option<&str>,
        registry_auth: Option<String>,
    ) -> impl std::future::Future<Output = Result<Response<Incoming>, ClientError>> + Send + 'static
    {
        let full_path = format!("/v{API_VERSION}{path}");
        let uri: hyper::Uri = hyperlocal::Uri::new(&self.socket, &full_path).into();
        let mut builder = Request::builder().method(method.clone()).uri(uri);
        if let Some(content_type) = content_type {
            builder = builder.header("Content-Type", content_type);
        }
        if let Some(auth) = registry_auth {
            builder = builder.header("X-Registry-Auth", auth);
        }
        let request = builder.body(body);
        let http = self.http.clone();
        let host = self.host.clone();
        let path = path.to_string();
        async move {
            let request = request.map_err(|source| ClientError::Build {
                path: path.clone(),
                source,
            })?;
            http.request(request)
                .await
                .map_err(|source| match connect_cause(&source) {
                    Some(cause) => ClientError::Connect {
                        host,
                        source: cause,
                    },
                    None => ClientError::Request {
                        method,
                        path,
                        source,
                    },
                })
        }
    }
}

impl BodyStream<'_> {
    /// The next piece of the body, `None` at its end.
    pub fn next_chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        loop {
            let frame = self.client.runtime.block_on(self.body.frame());
            match frame {
                None => return Ok(None),
                Some(Err(source)) => {
                    return Err(ClientError::Body {
                        path: self.path.clone(),
                        source,
                    })
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
}

/// The io error under a failed connection, copied out of hyper's error chain.
fn connect_cause(error: &hyper_util::client::legacy::Error) -> Option<std::io::Error> {
    if !error.is_connect() {
        return None;
    }
    let mut cause = std::error::Error::source(error);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return Some(match io.raw_os_error() {
                Some(code) => std::io::Error::from_raw_os_error(code),
                None => std::io::Error::new(io.kind(), io.to_string()),
            });
        }
        cause = current.source();
    }
    None
}

/// Turns an error status into [`ClientError::Api`] with the daemon's message.
async fn check_status(
    response: Response<Incoming>,
    path: &str,
) -> Result<Response<Incoming>, ClientError> {
    let status = response.status();
    if status.as_u16() < 400 {
        return Ok(response);
    }
    let body = collect(response.into_body(), path).await?;
    Err(ClientError::Api {
        status: status.as_u16(),
        message: error_message(status, &body),
    })
}

/// The message of an error answer: `{"message": ...}`, else the text, else the status.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    if let Ok(error) = serde_json::from_slice::<ErrorBody>(body) {
        return error.message;
    }
    let text = String::from_utf8_lossy(body).trim().to_string();
    match text.is_empty() {
        true => status.to_string(),
        false => text,
    }
}

/// The whole body.
async fn collect(body: Incoming, path: &str) -> Result<Bytes, ClientError> {
    body.collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|source| ClientError::Body {
            path: path.to_string(),
            source,
        })
}

/// Decodes a JSON answer.
fn decode<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|source| ClientError::Decode {
        path: path.to_string(),
        source,
    })
}

/// Percent-encodes a path segment or query value (RFC 3986 unreserved characters stay).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode("web-1_a.b~"), "web-1_a.b~");
        assert_eq!(
            encode("{\"name\":[\"x\"]}"),
            "%7B%22name%22%3A%5B%22x%22%5D%7D"
        );
        assert_eq!(encode("a b/é"), "a%20b%2F%C3%A9");
    }

    #[test]
    fn error_messages() {
        let json = br#"{"message":"No such container: x"}"#;
        assert_eq!(
            error_message(StatusCode::NOT_FOUND, json),
            "No such container: x"
        );
        assert_eq!(error_message(StatusCode::BAD_REQUEST, b" oops \n"), "oops");
        assert_eq!(error_message(StatusCode::NOT_FOUND, b""), "404 Not Found");
    }

    #[test]
    fn only_unix_hosts() {
        assert!(matches!(
            Client::new("tcp://1.2.3.4:2375"),
            Err(ClientError::InvalidHost { .. })
        ));
        assert!(Client::new("unix://").is_err());
    }

    #[test]
    fn missing_socket_is_a_connect_error() {
        let dir = tempfile::tempdir().unwrap();
        let host = format!("unix://{}/none.sock", dir.path().display());
        let client = Client::new(&host).unwrap();
        let error = client.get::<serde_json::Value>("/version").unwrap_err();
        assert!(matches!(error, ClientError::Connect { .. }), "{error:?}");
        assert!(error.to_string().contains("is the daemon running?"));
    }
}
