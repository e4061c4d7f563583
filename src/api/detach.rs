//! Detach keys (Docker's `detachKeys`, `--detach-keys`): a key sequence that, typed by an
//! attached client of a Tty container, ends the attach session and leaves the container
//! running. The spec is Docker's (moby/term `ToBytes`): comma-separated keys, each one
//! character or `ctrl-X` with X in `@`, `a`..`z`, `[`, `\`, `]`, `^`, `_`.

use crate::api::error::ApiError;

/// Docker's default: ctrl-p, ctrl-q.
pub const DEFAULT: &[u8] = &[0x10, 0x11];

/// The `ctrl-` keys, by code: `ctrl-@` is 0, `ctrl-a` 1 ... `ctrl-_` 31.
const CTRL: &str = "@abcdefghijklmnopqrstuvwxyz[\\]^_";

/// Parses a spec; an empty or absent one is the default.
pub fn parse(spec: Option<&str>) -> Result<Vec<u8>, ApiError> {
    let spec = match spec {
        None | Some("") => return Ok(DEFAULT.to_vec()),
        Some(s) => s,
    };
    let bad = || ApiError::DetachKeys(spec.to_string());
    spec.split(',')
        .map(|key| {
            if key.len() == 1 {
                return Ok(key.as_bytes()[0]);
            }
            let lower = key.to_ascii_lowercase();
            let name = lower.strip_prefix("ctrl-").ok_or_else(bad)?;
            let mut chars = name.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => CTRL
                    .find(c)
                    .and_then(|i| u8::try_from(i).ok())
                    .ok_or_else(bad),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// Watches a client's bytes for the sequence. Bytes that may begin it are held back until
/// it is complete (they are then dropped) or broken (they are then passed on).
#[derive(Debug)]
pub struct Escape {
    /// The sequence (not empty).
    keys: Vec<u8>,
    /// How many of its bytes the latest input ended with.
    matched: usize,
}

impl Escape {
    /// A watcher for `keys` (not empty).
    pub fn new(keys: Vec<u8>) -> Escape {
        Escape { keys, matched: 0 }
    }

    /// Appends to `out` what of `input` goes to the container; true once the sequence was
    /// typed (what follows it in `input` is dropped, as the session ends).
    pub fn filter(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return true;
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return true;
                }
            } else {
                out.push(b);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_dockers() {
        assert_eq!(parse(None).unwrap(), vec![16, 17]);
        assert_eq!(parse(Some("")).unwrap(), vec![16, 17]);
        assert_eq!(parse(Some("ctrl-x")).unwrap(), vec![24]);
        assert_eq!(
            parse(Some("ctrl-@,ctrl-_,a,CTRL-A")).unwrap(),
            vec![0, 31, b'a', 1]
        );
        assert_eq!(parse(Some("ctrl-\\")).unwrap(), vec![28]);
        for bad in ["ctrl-", "ctrl-1", "ctrl-ab", "shift-a", "ab", "a,,b"] {
            match parse(Some(bad)) {
                Err(ApiError::DetachKeys(s)) => assert_eq!(s, bad),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_sequence_is_found_across_reads_and_kept_out() {
        let mut esc = Escape::new(vec![16, 17]);
        let mut out = Vec::new();
        assert!(!esc.filter(b"ls\x10", &mut out));
        assert_eq!(out, b"ls");
        // A broken sequence passes its bytes on.
        assert!(!esc.filter(b"x\x10\x10", &mut out));
        assert_eq!(out, b"ls\x10x\x10");
        assert!(esc.filter(b"\x11after", &mut out));
        assert_eq!(out, b"ls\x10x\x10");
        let mut one = Escape::new(vec![24]);
        let mut out = Vec::new();
        assert!(one.filter(b"ab\x18c", &mut out));
        assert_eq!(out, b"ab");
    }
}
