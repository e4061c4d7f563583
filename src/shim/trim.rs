//! Trimming the idle shim's resident set once the container runs.
//!
//! The start (spec parsing, spawning, identities, the report) touches code spread over the
//! shim's text and, with a dynamic build, libc's. The kernel's fault-around maps up to 64 KiB
//! of cached file pages around each fault, so most of the text ends up mapped although the
//! main loop only needs a few pages of it. [`trim`] drops those mappings; what the loop uses
//! faults back in from the page cache.
//!
//! Only mappings whose pages are all still the file's are dropped: private, not writable,
//! file-backed, and without one copied-on-write page (`Anonymous: 0 kB` in
//! /proc/self/smaps). `MADV_DONTNEED` on such a mapping is lossless: a later access reads the
//! same bytes from the file. Relocated read-only data (RELRO) has copied pages, so it is kept.

use std::ffi::c_void;
use std::ptr::NonNull;

use nix::sys::mman::{madvise, MmapAdvise};

/// One mapping of /proc/self/smaps.
#[derive(Debug, PartialEq, Eq)]
struct Mapping {
    /// First byte.
    start: usize,
    /// One past the last byte.
    end: usize,
    /// Private, not writable and backed by a file: a candidate.
    pristine_file: bool,
}

/// Parses a mapping's header line (`start-end perms offset dev inode path`).
fn header(line: &str) -> Option<Mapping> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?.as_bytes();
    let _offset = fields.next()?;
    let _dev = fields.next()?;
    let inode = fields.next()?;
    let path = fields.next().unwrap_or("");
    if perms.len() != 4 {
        return None;
    }
    let pristine_file =
        perms[1] == b'-' && perms[3] == b'p' && inode != "0" && path.starts_with('/');
    Some(Mapping {
        start,
        end,
        pristine_file,
    })
}

/// The mappings of an smaps text that can be dropped without losing a byte.
fn droppable(smaps: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<Mapping> = None;
    for line in smaps.lines() {
        if let Some(value) = line.strip_prefix("Anonymous:") {
            if let Some(m) = current.as_mut() {
                m.pristine_file &= value.trim() == "0 kB";
            }
        } else if let Some(m) = header(line) {
            // A header line ("Key: value" field lines do not parse as one).
            if let Some(done) = current.replace(m) {
                if done.pristine_file {
                    out.push((done.start, done.end));
                }
            }
        }
    }
    if let Some(done) = current.filter(|m| m.pristine_file) {
        out.push((done.start, done.end));
    }
    out
}

/// Drops the pristine file mappings from the resident set, and returns the heap's free
/// pages to the kernel. Best effort: a failure leaves the pages resident, nothing else.
pub fn trim() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    for (start, end) in droppable(&smaps) {
        let Some(addr) = NonNull::new(start as *mut c_void) else {
            continue;
        };
        // SAFETY: [start, end) is a whole private, read-only, file-backed mapping of this
        // process without a copied-on-write page (checked in smaps just above, and nothing
        // writes to a read-only mapping in between): MADV_DONTNEED only unmaps its pages, and
        // every later access reads the same bytes back from the file.
        let _ = unsafe { madvise(addr, end - start, MmapAdvise::MADV_DONTNEED) };
    }
    drop(smaps);
    // SAFETY: malloc_trim only returns free heap memory to the kernel; no live allocation
    // is touched, and it takes the allocator's own locks (safe with other threads).
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0000000-55d0c0010000 r--p 00000000 fe:00 42   /usr/bin/moor-shim
Size:                 64 kB
Anonymous:             0 kB
55d0c0010000-55d0c0020000 r-xp 00010000 fe:00 42   /usr/bin/moor-shim
Anonymous:             0 kB
55d0c0020000-55d0c0024000 r--p 00020000 fe:00 42   /usr/bin/moor-shim
Anonymous:             8 kB
55d0c0024000-55d0c0025000 rw-p 00024000 fe:00 42   /usr/bin/moor-shim
Anonymous:             4 kB
7f0000000000-7f0000001000 rw-p 00000000 00:00 0
Anonymous:             4 kB
7f0000002000-7f0000003000 r-xp 00000000 00:00 0    [vdso]
Anonymous:             0 kB
7f0000004000-7f0000005000 r--s 00000000 fe:00 7    /dev/shm/x
Anonymous:             0 kB
";

    #[test]
    fn only_untouched_private_read_only_file_mappings_are_dropped() {
        assert_eq!(
            droppable(SMAPS),
            vec![
                (0x55d0c0000000, 0x55d0c0010000),
                (0x55d0c0010000, 0x55d0c0020000)
            ]
        );
    }

    #[test]
    fn trimming_keeps_the_process_working() {
        // Runs on this test process itself: code and read-only data fault back in.
        let before = droppable(&std::fs::read_to_string("/proc/self/smaps").unwrap());
        assert!(!before.is_empty(), "a test binary has a text mapping");
        trim();
        let text: String = (0..3).map(|i| i.to_string()).collect();
        assert_eq!(text, "012");
    }
}
