//! Fail points between a persisted intent and its effect, for the fault-injection tests
//! (`tests/fault_injection.rs`). Built only with the `failpoints` feature (every test build
//! has it; a normal build does not, and then [`point`] is empty). A point is armed by the
//! daemon's environment, `FAILPOINTS=<name>=return`, and then kills the daemon with SIGKILL
//! right there: what a crash at that moment leaves is what the next start must recover.
//!
//! The points: `create-persisted` (record stored, not yet answered), `start-persisted`
//! (`starting` stored, no shim yet), `shim-spawned` (the shim runs the process, `running`
//! not yet stored), `stop-signalled` (stop signal sent, the SIGKILL not yet),
//! `rm-persisted` (`removing` stored and the spec file gone, the record not yet deleted);
//! for an image import: `image-unpacked` (unpacked in its work directory, nothing committed),
//! `image-committed` (its tree, or a pull's `layers.json`, in place, no record yet: the next
//! start removes the unlisted directory), `image-recorded` (the record
//! stored, its metadata file not yet written); for volumes: `volume-dir-created` (the data
//! directory made, no record yet) and `volume-record-removed` (the record gone, the data not
//! yet); for a start on the bridge network, in the runtime: `network-attached` (the
//! container's netns, veth and /etc files made, no bundle yet) and `ports-published` (its
//! ports in the NAT table, the shim not started). One point slows instead of killing:
//! `store-flush=return(PATH)` makes every flush of the store wait while PATH exists (a disk
//! whose fsync hangs: `tests/slow_disk.rs`), and `spec-fsync=return(PATH)` likewise every
//! durable write or fsync of a container's spec file. The points themselves live in `host::fault`,
//! so the runtime below the daemon can place them.

/// Holds the armed points for the daemon's life (see [`setup`]).
#[cfg(feature = "failpoints")]
pub type Scenario = fail::FailScenario<'static>;
/// Nothing to hold without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
pub struct Scenario;

/// Arms the points named in `FAILPOINTS`.
#[cfg(feature = "failpoints")]
pub fn setup() -> Scenario {
    fail::FailScenario::setup()
}

/// Nothing to arm without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
pub fn setup() -> Scenario {
    Scenario
}

pub use crate::host::fault::point;
