//! The checks of every request head, made where it is peeked at
//! ([`crate::api::peek`]): what actix-http would refuse with a plain-text or empty
//! 400 is refused here with Docker's JSON `{"message": ...}` naming the problem, and the
//! numbers a hijacked route reads (its `Content-Length`) are parsed with checks. The rules
//! are actix-http 3's (`h1/decoder.rs`), so nothing it would serve is refused.

use crate::api::error::ApiError;

/// The largest request head read (actix-http itself stops at 128 KiB).
pub const MAX_HEAD: usize = 64 * 1024;
/// The most headers a request may have (actix-http's limit).
pub const MAX_HEADERS: usize = 96;

/// What the checked head says about its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyFacts {
    /// The `Content-Length`, if one was sent.
    pub content_length: Option<u64>,
    /// Whether the body is chunked (`Transfer-Encoding: chunked`).
    pub chunked: bool,
}

/// A head refused as malformed.
fn bad(reason: &'static str) -> ApiError {
    ApiError::BadHead { reason }
}

/// Checks a complete head's request line and headers as actix-http would.
pub fn check(req: &httparse::Request<'_, '_>) -> Result<BodyFacts, ApiError> {
    let path = req.path.unwrap_or("");
    if path.parse::<actix_web::http::Uri>().is_err() {
        return Err(ApiError::BadTarget {
            target: path.chars().take(200).collect(),
        });
    }
    let http11 = req.version == Some(1);
    let mut facts = BodyFacts {
        content_length: None,
        chunked: false,
    };
    let (mut hosts, mut encodings) = (0, 0);
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            if facts.content_length.is_some() {
                return Err(bad("more than one Content-Length header"));
            }
            facts.content_length = Some(content_length(h.value)?);
        } else if h.name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            encodings += 1;
            let value = std::str::from_utf8(h.value).unwrap_or("").trim();
            if value.eq_ignore_ascii_case("chunked") {
                facts.chunked = true;
            } else if !(value.eq_ignore_ascii_case("identity") && http11) {
                return Err(bad("Transfer-Encoding must be chunked"));
            }
        }
    }
    match () {
        _ if hosts > 1 => Err(bad("more than one Host header")),
        _ if http11 && hosts == 0 => Err(bad("an HTTP/1.1 request without a Host header")),
        _ if encodings > 1 => Err(bad("more than one Transfer-Encoding header")),
        _ if encodings > 0 && !http11 => Err(bad("Transfer-Encoding in an HTTP/1.0 request")),
        _ if encodings > 0 && facts.content_length.is_some() => {
            Err(bad("both Content-Length and Transfer-Encoding"))
        }
        _ => Ok(facts),
    }
}

/// Whether the connection may carry another request after this one (RFC 9112 §9.3, as
/// actix-http decides it): HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with
/// `Connection: keep-alive`.
pub fn keeps_alive(req: &httparse::Request<'_, '_>) -> bool {
    let tokens = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .flat_map(|h| h.value.split(|b| *b == b','))
        .map(|t| t.trim_ascii());
    let (mut close, mut keep) = (false, false);
    for t in tokens {
        close |= t.eq_ignore_ascii_case(b"close");
        keep |= t.eq_ignore_ascii_case(b"keep-alive");
    }
    match req.version {
        Some(1) => !close,
        _ => keep && !close,
    }
}

/// A `Content-Length` value: decimal digits that fit a u64, nothing else.
fn content_length(value: &[u8]) -> Result<u64, ApiError> {
    let refuse = || ApiError::ContentLength {
        value: String::from_utf8_lossy(value).chars().take(40).collect(),
    };
    let text = std::str::from_utf8(value).map_err(|_| refuse())?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse());
    }
    text.parse().map_err(|_| refuse())
}

/// The bytes a hijacked route reads as its body: at most `limit`, never chunked.
pub fn hijack_body(facts: BodyFacts, route: &'static str, limit: usize) -> Result<usize, ApiError> {
    if facts.chunked {
        return Err(ApiError::LengthRequired { route });
    }
    let length = facts.content_length.unwrap_or(0);
    usize::try_from(length)
        .ok()
        .filter(|n| *n <= limit)
        .ok_or(ApiError::BodyTooLarge {
            limit: limit as u64,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(head: &str) -> Result<BodyFacts, ApiError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(head.as_bytes()).expect("parses").is_complete());
        check(&req)
    }

    #[test]
    fn lengths_are_checked_numbers() {
        let cl = |v: &str| checked(&format!("POST / HTTP/1.0\r\nContent-Length: {v}\r\n\r\n"));
        assert_eq!(cl("12").unwrap().content_length, Some(12));
        assert_eq!(
            cl("18446744073709551615").unwrap().content_length,
            Some(u64::MAX)
        );
        for bad in [
            "18446744073709551616",
            "+5",
            "-1",
            "",
            "1 2",
            "0x10",
            "5, 5",
        ] {
            assert!(
                matches!(cl(bad), Err(ApiError::ContentLength { .. })),
                "{bad:?}"
            );
        }
        let facts = cl("18446744073709551615").unwrap();
        assert!(matches!(
            hijack_body(facts, "attach", 1 << 20),
            Err(ApiError::BodyTooLarge { .. })
        ));
        assert_eq!(hijack_body(cl("7").unwrap(), "attach", 1 << 20).unwrap(), 7);
    }

    #[test]
    fn heads_actix_refuses_are_refused_as_json() {
        for head in [
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "POST / HTTP/1.0\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            "GET /a`b HTTP/1.0\r\n\r\n",
        ] {
            assert!(checked(head).is_err(), "{head:?}");
        }
        let chunked = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
        let facts = checked(chunked).unwrap();
        assert!(facts.chunked);
        assert!(matches!(
            hijack_body(facts, "exec start", 10),
            Err(ApiError::LengthRequired { .. })
        ));
        assert!(checked("GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n").is_ok());
    }

    #[test]
    fn keep_alive_is_decided_as_http_says() {
        let keeps = |head: &str| {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            assert!(req.parse(head.as_bytes()).expect("parses").is_complete());
            keeps_alive(&req)
        };
        assert!(keeps("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(keeps(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n"
        ));
        assert!(!keeps(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n"
        ));
        assert!(!keeps("GET / HTTP/1.1\r\nConnection: te, close\r\n\r\n"));
        assert!(!keeps("GET / HTTP/1.0\r\n\r\n"));
        assert!(keeps("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    }
}
