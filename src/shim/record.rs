//! One json-file record as Docker's driver writes it:
//! `{"log":"<text>","stream":"stdout","time":"<RFC3339Nano>"}\n`, the text escaped exactly as
//! Docker's `jsonlog.ffjsonWriteJSONBytesAsString` does: `<`, `>`, `&` and control bytes as
//! `\u00XX`, only `\n`, `\r`, `\\` and `\"` as short escapes, each byte of invalid UTF-8 as
//! `\ufffd` (Go's `utf8.DecodeRune` reports them one byte at a time), U+2028/U+2029 escaped.
//!
//! This is the shim's hot path: runs of bytes needing no escape are found with a table and
//! copied at once, and newlines are searched eight bytes at a time.

use super::log_writer::Stream;

/// Bytes that end a plain run: control bytes, `"`, `\`, `<`, `>`, `&` and all non-ASCII.
static SPECIAL: [bool; 256] = special_table();

const fn special_table() -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b < 0x20
            || b >= 0x80
            || b == b'"' as usize
            || b == b'\\' as usize
            || b == b'<' as usize
            || b == b'>' as usize
            || b == b'&' as usize;
        b += 1;
    }
    table
}

/// Appends one record line (with its final `\n`) to `out`, in Docker's field order.
pub fn encode(out: &mut Vec<u8>, stream: Stream, log: &[u8], time: &str) {
    out.reserve(log.len() + 48 + time.len());
    out.extend_from_slice(b"{\"log\":");
    escape(out, log);
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(stream.name().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// A quoted JSON string from arbitrary bytes, as Docker writes `log`.
pub fn escape(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        if !SPECIAL[usize::from(s[i])] {
            i += 1;
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        i += escape_at(out, s, i);
        start = i;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// Writes the escape of the special byte (or UTF-8 sequence) at `s[i]`; returns its length.
fn escape_at(out: &mut Vec<u8>, s: &[u8], i: usize) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let b = s[i];
    match b {
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'"' => out.extend_from_slice(b"\\\""),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        0..=0x7f => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]),
        _ => {
            let width = match b {
                0xc2..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf4 => 4,
                _ => 0,
            };
            return match s.get(i..i + width) {
                Some(seq) if width > 0 && std::str::from_utf8(seq).is_ok() => {
                    match seq {
                        [0xe2, 0x80, 0xa8] => out.extend_from_slice(b"\\u2028"),
                        [0xe2, 0x80, 0xa9] => out.extend_from_slice(b"\\u2029"),
                        _ => out.extend_from_slice(seq),
                    }
                    width
                }
                _ => {
                    out.extend_from_slice(b"\\ufffd");
                    1
                }
            };
        }
    }
    1
}

/// The index of the first `\n` in `s`, scanning a 64-bit word at a time.
pub fn find_newline(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = ONES * b'\n' as u64;
    let mut base = 0;
    for chunk in s.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // A byte of `w` is zero where `chunk` has a newline; the classic has-zero-byte test.
        let w = u64::from_ne_bytes(word) ^ NEWLINES;
        if w.wrapping_sub(ONES) & !w & HIGH != 0 {
            break;
        }
        base += 8;
    }
    s[base..].iter().position(|&b| b == b'\n').map(|p| p + base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &[u8]) -> String {
        let mut out = Vec::new();
        escape(&mut out, s);
        String::from_utf8(out).expect("escaped is ascii or utf8")
    }

    /// The escape as the previous, char-by-char implementation computed it.
    fn reference(s: &[u8]) -> String {
        let mut out = String::from("\"");
        for chunk in s.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\\' | '"' => {
                        out.push('\\');
                        out.push(c);
                    }
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\u{0}'..='\u{1f}' | '<' | '>' | '&' => {
                        out.push_str(&format!("\\u{:04x}", c as u32));
                    }
                    '\u{2028}' => out.push_str("\\u2028"),
                    '\u{2029}' => out.push_str("\\u2029"),
                    c => out.push(c),
                }
            }
            for _ in chunk.invalid() {
                out.push_str("\\ufffd");
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn record_bytes_match_docker() {
        let mut out = Vec::new();
        encode(
            &mut out,
            Stream::Stdout,
            b"hi <b>&\t\"x\"\\\n",
            "1970-01-01T00:00:00.000005Z",
        );
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "{\"log\":\"hi \\u003cb\\u003e\\u0026\\u0009\\\"x\\\"\\\\\\n\",\
             \"stream\":\"stdout\",\"time\":\"1970-01-01T00:00:00.000005Z\"}\n"
        );
    }

    #[test]
    fn escaping_of_unicode_and_invalid_bytes() {
        assert_eq!(
            escaped("é\u{2028}\u{2029}\r\u{7f}".as_bytes()),
            "\"é\\u2028\\u2029\\r\u{7f}\""
        );
        // Each invalid byte is one U+FFFD escape, as Go's utf8.DecodeRune reports them.
        assert_eq!(escaped(b"a\xe2\x82b\xff"), "\"a\\ufffd\\ufffdb\\ufffd\"");
        let parsed: String = serde_json::from_str(&escaped(b"\x01<>&")).expect("valid json");
        assert_eq!(parsed, "\u{1}<>&");
    }

    #[test]
    fn matches_the_reference_on_every_byte_and_edge() {
        let mut inputs: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b'a', b, b'z']).collect();
        inputs.extend(
            [
                &b"\xed\xa0\x80"[..],      // a surrogate: invalid
                b"\xf0\x9f\x98\x80 emoji", // valid 4 bytes
                b"\xf0\x9f\x98",           // truncated at the end
                b"\xe2\x80",               // truncated U+2028
                b"\xc0\xaf",               // overlong
                b"\xf5\x80\x80\x80",       // beyond U+10FFFF
                "日本語 \u{2028}x".as_bytes(),
            ]
            .map(<[u8]>::to_vec),
        );
        for input in inputs {
            assert_eq!(escaped(&input), reference(&input), "{input:?}");
        }
    }

    #[test]
    fn newline_search() {
        for len in 0..40 {
            let mut s = vec![b'x'; len];
            assert_eq!(find_newline(&s), None);
            for at in 0..len {
                s[at] = b'\n';
                assert_eq!(find_newline(&s), Some(at), "len {len} at {at}");
                s[at] = b'\x0b';
            }
        }
    }
}
