//! One json-file record as Docker's driver writes it:
//! `{"log":"<text>","stream":"stdout","time":"<RFC3339Nano>"}\n`, the text escaped exactly as
//! Docker's `jsonlog.ffjsonWriteJSONBytesAsString` does: `<`, `>`, `&` and control bytes as
//! `\u00XX`, only `\n`, `\r`, `\\` and `\"` as short escapes, each byte of invalid UTF-8 as
//! `\ufffd` (Go's `utf8.DecodeRune` reports them one byte at a time), U+2028/U+2029 escaped.
//!
//! This is the shim's hot path: runs of bytes needing no escape, and newlines, are found
//! sixteen bytes at a time with SSE2 on x86_64 (a table elsewhere) and copied at once.

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
    encode_with(out, log, &Tail::new(stream, time));
}

/// What follows a record's text, `\n","stream":"stdout","time":"<time>"}` and a newline:
/// the same for every record of one read, so it is built once per read.
#[derive(Debug, Clone)]
pub struct Tail {
    /// The bytes, starting with the escape of a line's final `\n`.
    bytes: Vec<u8>,
}

impl Tail {
    /// The tail of records from `stream` read at `time` (Go's RFC3339Nano).
    pub fn new(stream: Stream, time: &str) -> Tail {
        let mut bytes = Vec::with_capacity(32 + time.len());
        bytes.extend_from_slice(b"\\n\",\"stream\":\"");
        bytes.extend_from_slice(stream.name().as_bytes());
        bytes.extend_from_slice(b"\",\"time\":\"");
        bytes.extend_from_slice(time.as_bytes());
        bytes.extend_from_slice(b"\"}\n");
        Tail { bytes }
    }
}

/// [`encode`] with the tail built already: three appends for a plain line.
pub fn encode_with(out: &mut Vec<u8>, log: &[u8], tail: &Tail) {
    // A line's final newline is part of the tail (its escape comes first there).
    let (text, tail) = match log.split_last() {
        Some((b'\n', text)) => (text, &tail.bytes[..]),
        _ => (log, &tail.bytes[2..]),
    };
    out.reserve(text.len() + 8 + tail.len());
    out.extend_from_slice(b"{\"log\":\"");
    escape_text(out, text);
    out.extend_from_slice(tail);
}

/// A quoted JSON string from arbitrary bytes, as Docker writes `log`.
pub fn escape(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    escape_text(out, s);
    out.push(b'"');
}

/// The inside of [`escape`]: runs without a special byte are copied at once.
fn escape_text(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    loop {
        let i = next_special(s, start);
        out.extend_from_slice(&s[start..i]);
        if i == s.len() {
            return;
        }
        start = i + escape_at(out, s, i);
    }
}

/// The index of the first byte from `from` on that [`SPECIAL`] marks, or `s.len()`.
fn next_special(s: &[u8], from: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of the x86_64 baseline: every CPU this binary runs on has it.
    let mut i = unsafe { sse2::plain_run(s, from) };
    #[cfg(not(target_arch = "x86_64"))]
    let mut i = from;
    while i < s.len() && !SPECIAL[usize::from(s[i])] {
        i += 1;
    }
    i
}

/// The 16-byte scans (SSE2 is part of every x86_64 CPU).
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    /// The index of the first special byte in `s` from `i` on, or `s.len()`; a string
    /// shorter than 16 bytes is left to the caller from `i` (the returned index) on.
    #[target_feature(enable = "sse2")]
    pub fn plain_run(s: &[u8], mut i: usize) -> usize {
        while let Some(block) = s.get(i..i + 16) {
            let mask = specials(load16(block));
            if mask != 0 {
                return i + mask.trailing_zeros() as usize;
            }
            i += 16;
        }
        // The last bytes: the final 16 of `s`, overlapping what was checked, masked off.
        if i < s.len() && s.len() >= 16 {
            let last = s.len() - 16;
            return match specials(load16(&s[last..])) >> (i - last) {
                0 => s.len(),
                mask => i + mask.trailing_zeros() as usize,
            };
        }
        i
    }

    /// A bit per byte of `v` that needs escaping.
    #[target_feature(enable = "sse2")]
    fn specials(v: __m128i) -> u32 {
        // Signed compare: below 0x20 is a control byte, and every byte >= 0x80 is negative.
        let below = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
        let [quote, backslash, lt, gt, amp] =
            [b'"', b'\\', b'<', b'>', b'&'].map(|c| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8)));
        let hits = _mm_or_si128(
            _mm_or_si128(below, quote),
            _mm_or_si128(_mm_or_si128(backslash, lt), _mm_or_si128(gt, amp)),
        );
        _mm_movemask_epi8(hits) as u32
    }

    /// The first `\n` in whole 16-byte blocks: `Ok(index)`, or `Err(where the blocks end)`.
    #[target_feature(enable = "sse2")]
    pub fn newline(s: &[u8]) -> Result<usize, usize> {
        let newline = _mm_set1_epi8(b'\n' as i8);
        let mut i = 0;
        while let Some(block) = s.get(i..i + 16) {
            let mask = _mm_movemask_epi8(_mm_cmpeq_epi8(load16(block), newline)) as u32;
            if mask != 0 {
                return Ok(i + mask.trailing_zeros() as usize);
            }
            i += 16;
        }
        Err(i)
    }

    /// Sixteen bytes as one register.
    #[target_feature(enable = "sse2")]
    fn load16(block: &[u8]) -> __m128i {
        assert_eq!(block.len(), 16);
        // SAFETY: `block` is 16 readable bytes (asserted just above), exactly what the
        // unaligned load reads; `_mm_loadu_si128` has no alignment requirement.
        unsafe { _mm_loadu_si128(block.as_ptr().cast()) }
    }
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

/// The index of the first `\n` in `s`, sixteen bytes at a time on x86_64.
pub fn find_newline(s: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of the x86_64 baseline: every CPU this binary runs on has it.
    let i = match unsafe { sse2::newline(s) } {
        Ok(at) => return Some(at),
        Err(rest) => rest,
    };
    #[cfg(not(target_arch = "x86_64"))]
    let i = 0;
    s[i..].iter().position(|&b| b == b'\n').map(|p| p + i)
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
        // Every byte at every position of a run long enough for the 16-byte blocks.
        for b in 0..=255u8 {
            for at in 0..40 {
                let mut s = vec![b'a'; 40];
                s[at] = b;
                inputs.push(s);
            }
        }
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
