//! moor's container state: the pure state machine (`machine`, `event`, `record`,
//! `reconcile`) and the sled store that persists it (`store`, `schema`).
//!
//! Everything but `store` and `schema` is free of I/O: the daemon and
//! `moor admin inspect` call the same functions and get the same answers.

mod aside;
pub mod event;
pub mod health;
pub mod image;
pub mod machine;
pub mod network;
pub mod ports;
pub mod reconcile;
pub mod record;
pub mod resources;
pub mod restart;
mod runtime_state;
pub mod schema;
pub mod settings;
pub mod store;
pub mod volume;
mod witness;

pub use event::Event;
pub use machine::{transition, Run, State, TransitionError};
pub use record::{ContainerRecord, ContainerSpec, Exit, ProcessIdentity, Timestamp};
