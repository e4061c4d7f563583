//! The `GET /containers/json` answer, built from parts kept while the store is unchanged.
//!
//! Every field of a container's entry but `Status` ("Up 5 minutes", which moves with the
//! clock) depends on its record alone, and the Supervisor hands out the same shared list of
//! records until a write commits. So each entry is serialized once per list of records, in
//! two parts around its status, and an answer copies those parts with each status computed
//! in between. With 1,000 containers and 50 clients, building and serializing 1,000
//! summaries for every request was most of the daemon's CPU (malloc, free, memmove, JSON
//! escaping; BENCHMARKS.md, "Load").

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use moor_state::ContainerRecord;

use crate::api::convert;
use crate::daemon::settings::DriftBase;

/// Where an entry serialized with an empty status is cut. Inside a JSON string every `"` is
/// escaped, so these bytes, quotes unescaped and after a `,`, can only be the entry's own
/// `Status` key: the fields before it are strings, a number and an array of strings.
const STATUS_FIELD: &[u8] = br#","Status":"""#;

/// Each entry's rendered drift, in the entries' order.
type Rendered = Arc<Vec<Vec<u8>>>;

/// One container's entry, cut around its status.
struct Entry {
    /// Index of its record in [`Listing::records`].
    record: usize,
    /// The entry up to and including `"Status":`.
    head: Vec<u8>,
    /// The entry after the status, closing brace included.
    tail: Vec<u8>,
}

/// The entries of one list of records, newest first (Docker's order).
pub struct Listing {
    /// The Supervisor's shared list they were built from: the same `Arc` until the store
    /// changes, which is how [`ListCache`] knows this listing is current.
    records: Arc<Vec<ContainerRecord>>,
    /// Newest first; among equal creation times, in the records' order.
    entries: Vec<Entry>,
    /// The size of the last answer, for the next one's buffer.
    size_hint: AtomicUsize,
    /// Each entry's rendered `,"Drift":[...]` (empty without drift), for the drift base it
    /// was measured against: computed once per listing while daemon.json is unchanged,
    /// not once per entry and request (it was most of a list's CPU at 1,000 containers).
    drift: Mutex<Option<(DriftBase, Rendered)>>,
}

impl Listing {
    /// Serializes every record's entry; `None` if one cannot be cut around its status
    /// (it always can: see [`STATUS_FIELD`]; the caller then builds the answer whole).
    fn new(records: Arc<Vec<ContainerRecord>>) -> Option<Listing> {
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(records[i].created_at));
        let entries = order
            .into_iter()
            .map(|i| {
                let mut summary = convert::summary(&records[i], Utc::now());
                summary.status.clear();
                let bytes = serde_json::to_vec(&summary).ok()?;
                let at = bytes
                    .windows(STATUS_FIELD.len())
                    .position(|w| w == STATUS_FIELD)?;
                let cut = at + STATUS_FIELD.len() - 2;
                Some(Entry {
                    record: i,
                    head: bytes[..cut].to_vec(),
                    tail: bytes[cut + 2..].to_vec(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Listing {
            records,
            entries,
            size_hint: AtomicUsize::new(0),
            drift: Mutex::new(None),
        })
    }

    /// Each entry's rendered drift against `base` (see [`Listing::drift`]).
    fn drift_of(&self, base: &DriftBase) -> Rendered {
        let lock = || self.drift.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, rendered)) = lock().as_ref() {
            if at == base {
                return rendered.clone();
            }
        }
        let rendered: Vec<Vec<u8>> = self
            .entries
            .iter()
            .map(|e| {
                let settings: Vec<String> = base
                    .drift(&self.records[e.record])
                    .into_iter()
                    .map(|d| d.setting)
                    .collect();
                let mut out = Vec::new();
                if !settings.is_empty() {
                    out.extend_from_slice(br#","Drift":"#);
                    // Serializing strings into a Vec cannot fail.
                    let _ = serde_json::to_writer(&mut out, &settings);
                }
                out
            })
            .collect();
        let rendered = Arc::new(rendered);
        *lock() = Some((base.clone(), rendered.clone()));
        rendered
    }

    /// The JSON array of the entries whose record `keep` accepts, at most `limit` of them,
    /// each with its status at `now` and its `Drift` against `base` (which follows
    /// `Status`, and is kept apart from the other parts: it moves with daemon.json).
    pub fn render(
        &self,
        now: DateTime<Utc>,
        keep: impl Fn(&ContainerRecord) -> bool,
        limit: Option<usize>,
        base: &DriftBase,
    ) -> Vec<u8> {
        let drift = self.drift_of(base);
        let mut out = Vec::with_capacity(self.size_hint.load(Ordering::Relaxed));
        out.push(b'[');
        let kept = self
            .entries
            .iter()
            .zip(drift.iter())
            .map(|(e, drift)| (e, drift, &self.records[e.record]))
            .filter(|(_, _, rec)| keep(rec))
            .take(limit.unwrap_or(usize::MAX));
        // One buffer for every status: no allocation per container.
        let mut status = String::new();
        for (n, (entry, drift, rec)) in kept.enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&entry.head);
            status.clear();
            // Neither writing to a String nor serializing a str can fail.
            let _ = convert::write_status(&mut status, rec, now);
            let _ = serde_json::to_writer(&mut out, status.as_str());
            out.extend_from_slice(drift);
            out.extend_from_slice(&entry.tail);
        }
        out.push(b']');
        self.size_hint.store(out.len(), Ordering::Relaxed);
        out
    }
}

/// The last listing, shared by the API's workers.
#[derive(Default)]
pub struct ListCache {
    /// Replaced when the Supervisor hands out a new list of records.
    last: Mutex<Option<Arc<Listing>>>,
}

impl ListCache {
    /// The listing of `records`: the last one if it was built from this very list (the
    /// cache holds that list, so no other list can have its address), else a new one.
    pub fn listing(&self, records: Arc<Vec<ContainerRecord>>) -> Option<Arc<Listing>> {
        let lock = || self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(last) = lock().as_ref() {
            if Arc::ptr_eq(&last.records, &records) {
                return Some(last.clone());
            }
        }
        // Built outside the lock: the other worker keeps answering from the last one.
        let built = Arc::new(Listing::new(records)?);
        *lock() = Some(built.clone());
        Some(built)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use moor_state::settings::DaemonSettings;
    use moor_state::{ContainerSpec, Exit, ProcessIdentity, Run, State};

    fn record(n: u64, name: &str, state: State) -> ContainerRecord {
        let spec = ContainerSpec {
            image: "host\",\"Status\":\"".into(),
            cmd: vec![
                "sh".into(),
                "-c".into(),
                r#"echo ","Status":"" \ ok"#.into(),
            ],
            labels: [("k\"".to_string(), "v\\".to_string())].into(),
            ..ContainerSpec::default()
        };
        // Two records share a creation time: their order must not change either.
        let created = Utc
            .timestamp_opt(1_700_000_000 + (n / 2) as i64, 0)
            .unwrap();
        let mut rec = ContainerRecord::new(format!("{n:064x}"), name.into(), spec, created);
        rec.state = state;
        // "c" runs under another run directory and log options than the daemon's now.
        let mut settings = settings();
        if name == "c" {
            settings.run_dir = "/run/old".into();
            settings.log_opts.insert("max-size".into(), "1m".into());
        }
        rec.settings = Some(Arc::new(settings));
        rec
    }

    /// The daemon's settings in these tests.
    fn settings() -> DaemonSettings {
        DaemonSettings {
            runtime: "process".into(),
            run_dir: "/run/moor".into(),
            data_root: "/var/lib/moor".into(),
            ..DaemonSettings::default()
        }
    }

    fn base() -> DriftBase {
        DriftBase::uniform(settings())
    }

    fn run(secs: i64) -> Run {
        let who = ProcessIdentity {
            pid: 42,
            start_time: 1,
            boot_id: "b".into(),
        };
        Run {
            shim: who.clone(),
            process: who,
            started_at: Utc.timestamp_opt(1_700_000_000 + secs, 5).unwrap(),
        }
    }

    /// What the list answered before the cache: summaries built and serialized whole.
    fn whole(records: &[ContainerRecord], now: DateTime<Utc>, all: bool) -> Vec<u8> {
        let mut sorted: Vec<_> = records.iter().collect();
        sorted.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        let out: Vec<_> = sorted
            .into_iter()
            .filter(|r| all || r.state.docker_status() == "running")
            .map(|r| {
                let mut s = convert::summary(r, now);
                s.drift = drifted(r);
                s
            })
            .collect();
        serde_json::to_vec(&out).unwrap()
    }

    /// The drift the list shows after a record's status.
    fn drifted(r: &ContainerRecord) -> Vec<String> {
        base().drift(r).into_iter().map(|d| d.setting).collect()
    }

    #[test]
    fn answers_byte_for_byte_as_whole_summaries() {
        let exited = State::Exited {
            exit: Some(Exit::Code(3)),
            finished_at: Utc.timestamp_opt(1_700_000_100, 0).unwrap(),
            started_at: None,
            error: String::new(),
        };
        let records = Arc::new(vec![
            record(1, "a", State::Created),
            record(2, "web\",\"Status\":\"x", State::Running(run(10))),
            record(3, "c", State::Paused(run(20))),
            record(4, "d", exited),
            record(5, "e", State::Running(run(30))),
        ]);
        let cache = ListCache::default();
        let listing = cache.listing(records.clone()).expect("every entry cuts");
        for secs in [0, 61, 7200] {
            let now = Utc.timestamp_opt(1_700_000_200 + secs, 0).unwrap();
            for all in [true, false] {
                let keep = |r: &ContainerRecord| all || r.state.docker_status() == "running";
                let fast = listing.render(now, keep, None, &base());
                let slow = whole(&records, now, all);
                assert_eq!(
                    String::from_utf8_lossy(&fast),
                    String::from_utf8_lossy(&slow)
                );
            }
        }
        let two = listing.render(Utc::now(), |_| true, Some(2), &base());
        let parsed: serde_json::Value = serde_json::from_slice(&two).unwrap();
        assert_eq!(parsed.as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn a_new_list_of_records_is_a_new_listing() {
        let cache = ListCache::default();
        let first = Arc::new(vec![record(1, "a", State::Created)]);
        let a = cache.listing(first.clone()).unwrap();
        let again = cache.listing(first.clone()).unwrap();
        assert!(Arc::ptr_eq(&a, &again), "the same list reuses its listing");
        // Equal contents, but a new list from the Supervisor: the store changed.
        let second = Arc::new(vec![record(1, "b", State::Created)]);
        let b = cache.listing(second).unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        assert!(
            String::from_utf8_lossy(&b.render(Utc::now(), |_| true, None, &base())).contains("/b")
        );
    }

    #[test]
    fn the_drift_follows_a_changed_base_on_the_same_listing() {
        let cache = ListCache::default();
        let records = Arc::new(vec![record(1, "a", State::Created)]);
        let listing = cache.listing(records).unwrap();
        let text = |base: &DriftBase| {
            String::from_utf8(listing.render(Utc::now(), |_| true, None, base)).unwrap()
        };
        assert!(!text(&base()).contains("Drift"));
        // daemon.json changed (a reload): the same listing shows the new drift at once.
        let mut now = settings();
        now.data_root = "/srv/moor".into();
        let moved = DriftBase::uniform(now);
        assert!(
            text(&moved).contains(r#""Drift":["data-root"]"#),
            "{}",
            text(&moved)
        );
        assert!(!text(&base()).contains("Drift"));
    }
}
