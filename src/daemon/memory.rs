//! How the daemon's allocator is set up. glibc gives each thread that allocates while
//! another holds the lock an arena of its own, up to eight per core, and an arena keeps the
//! memory freed in it for its own later use. The daemon's threads are short-lived and many
//! (the blocking pool grows to a thread per concurrent blocking task and retires them after
//! ten idle seconds), so every burst of containers left memory parked in arenas no thread
//! used any more: measured with 1,000 running containers and after churns of 500, about half
//! of the daemon's RSS (BENCHMARKS.md, "Daemon memory"). The daemon's work runs on one actor
//! thread; the other threads allocate little and briefly, and glibc's per-thread cache
//! serves their small allocations without the arena's lock.

use std::sync::atomic::{AtomicU64, Ordering};

/// Arenas the daemon allows (`MALLOC_ARENA_MAX` in the environment overrides it).
pub const ARENAS: i32 = 2;

/// Caps glibc's malloc arenas at [`ARENAS`] unless `MALLOC_ARENA_MAX` is set (glibc reads
/// that itself). Called first in the daemon, before it starts a thread. Returns whether the
/// cap was set here.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_arenas() -> bool {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return false;
    }
    // SAFETY: mallopt only sets a parameter of glibc's allocator, under the allocator's own
    // lock; M_ARENA_MAX with a positive value is a documented parameter (mallopt(3)).
    let set = unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
    set == 1
}

/// Other allocators than glibc's have no arenas to cap.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_arenas() -> bool {
    false
}

/// Returns the heap memory freed so far to the kernel (glibc's `malloc_trim`). Called once
/// the start-up is over: the reconciler's reads and observations (on threads of their own,
/// whose arena keeps what they freed) leave free pages inside the heaps that glibc's own
/// trimming of the heap's top does not reach (a trim by hand returned 4.4 MB of a daemon
/// that had just resumed 10,000 containers).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_freed() {
    RELEASES.fetch_add(1, Ordering::Relaxed);
    // SAFETY: malloc_trim only returns free pages of glibc's heaps to the kernel, under
    // each arena's lock; no live allocation moves (malloc_trim(3)).
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators: nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_freed() {
    RELEASES.fetch_add(1, Ordering::Relaxed);
}

/// How many times [`release_freed`] ran.
static RELEASES: AtomicU64 = AtomicU64::new(0);

/// How many times [`release_freed`] ran in this process (tests: when it is called).
pub fn releases() -> u64 {
    RELEASES.load(Ordering::Relaxed)
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use std::io::{Read, Seek};
    use std::sync::{Arc, Barrier};

    /// Set in the child process the test re-executes itself as.
    const CHILD: &str = "MOOR_TEST_ARENAS_CHILD";

    /// glibc's arenas now, counted in `malloc_info`'s report (one `<heap nr=` each).
    fn arenas() -> usize {
        // SAFETY: tmpfile returns a new stream or null (checked); malloc_info writes to it;
        // it is closed once, after its text is read through a duplicate of its descriptor.
        unsafe {
            let file = libc::tmpfile();
            assert!(!file.is_null(), "tmpfile");
            assert_eq!(libc::malloc_info(0, file), 0, "malloc_info");
            libc::fflush(file);
            let fd = libc::dup(libc::fileno(file));
            libc::fclose(file);
            assert!(fd >= 0, "dup");
            let mut f = <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd);
            f.rewind().expect("rewind");
            let mut text = String::new();
            f.read_to_string(&mut text).expect("read");
            text.matches("<heap nr=").count()
        }
    }

    /// In a process of its own (arenas are per process and never go away): the cap set,
    /// 16 threads allocating at once share at most [`super::ARENAS`] arenas.
    #[test]
    fn sixteen_threads_share_the_capped_arenas() {
        if std::env::var_os(CHILD).is_none() {
            let exe = std::env::current_exe().expect("current_exe");
            let out = std::process::Command::new(exe)
                .args([
                    "--exact",
                    "daemon::memory::tests::sixteen_threads_share_the_capped_arenas",
                ])
                .args(["--test-threads", "1", "--nocapture"])
                .env(CHILD, "1")
                .env_remove("MALLOC_ARENA_MAX")
                .output()
                .expect("run the child");
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "child: {said}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(said.contains("1 passed"), "the child ran no test: {said}");
            return;
        }
        assert!(super::limit_arenas(), "the cap was not set");
        let start = Arc::new(Barrier::new(16));
        let done = Arc::new(Barrier::new(17));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (start, done) = (start.clone(), done.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let held: Vec<Vec<u8>> = (0..64).map(|n| vec![n as u8; 4096]).collect();
                    // Alive, holding their memory, until every one has allocated.
                    done.wait();
                    drop(held);
                })
            })
            .collect();
        done.wait();
        let counted = arenas();
        for t in threads {
            t.join().expect("thread");
        }
        assert!(
            counted <= super::ARENAS as usize,
            "{counted} arenas, at most {} expected",
            super::ARENAS
        );
    }
}
