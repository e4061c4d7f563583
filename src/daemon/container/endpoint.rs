//! `POST /networks/{id}/connect|disconnect` on the container's side: its endpoints
//! (address, network, aliases, slot) change through its own actor, so the record it holds
//! stays the one in the store, and in order with its start and stop. A container that does
//! not run is changed in its record only (its networks are plugged in at start); a running
//! one gets the change stored first ("write the intent, then act"), then its veth made or
//! deleted in its namespace on the blocking pool: a daemon that dies in between finds the
//! record right and the reconciler's repair makes the kernel match it.

use std::sync::Arc;

use actix::prelude::*;
use moor_state::network::{free_slot, promote_first, Endpoint, ExtraEndpoint, MAX_SLOT};
use moor_state::ContainerRecord;
use tracing::info;

use super::ContainerActor;
use crate::daemon::error::ContainerError;

/// Connect the container to a network (Container), answered once stored and, when it runs,
/// plugged in.
#[derive(Message)]
#[rtype(result = "Result<(), ContainerError>")]
pub struct Connect {
    /// Its endpoint there (the Supervisor allocated the address).
    pub endpoint: Endpoint,
    /// Its aliases on that network.
    pub aliases: Vec<String>,
}

/// Disconnect the container from the network of id `network_id` (Container).
#[derive(Message)]
#[rtype(result = "Result<(), ContainerError>")]
pub struct Disconnect {
    /// The network's id.
    pub network_id: String,
    /// The network's name, for messages.
    pub network: String,
}

type Reply = AtomicResponse<ContainerActor, Result<(), ContainerError>>;

fn ready(out: Result<(), ContainerError>) -> Reply {
    AtomicResponse::new(ready_fut(out))
}

fn ready_fut(
    out: Result<(), ContainerError>,
) -> ResponseActFuture<ContainerActor, Result<(), ContainerError>> {
    Box::pin(fut::ready(out))
}

/// The answer of a change to a container that does not run: once its record and spec file
/// are durable.
fn stored(act: &ContainerActor) -> Reply {
    AtomicResponse::new(act.after_durable_spec(ready_fut(Ok(()))))
}

fn net_error(what: &'static str, name: &str, e: crate::network::NetworkError) -> ContainerError {
    ContainerError::Bridge {
        what,
        name: name.into(),
        source: Box::new(e),
    }
}

impl ContainerActor {
    /// Whether the container runs (its network namespace exists), refusing the moment a
    /// start is under way, and a running container whose namespace is not one moor made
    /// (`none`, `host`, another container's).
    fn connectable_now(&self) -> Result<bool, ContainerError> {
        if matches!(self.record.state, moor_state::State::Starting) {
            return Err(ContainerError::BadRequest(format!(
                "container {} is starting: connect or disconnect it once it runs",
                self.record.name
            )));
        }
        if self.record.state.run().is_none() {
            return Ok(false);
        }
        let netns = crate::network::netns::path(
            &self.shared.layout_of(&self.record).run_dir,
            &self.record.id,
        );
        if !netns.exists() {
            return Err(ContainerError::BadRequest(format!(
                "container {} runs in network mode {}: moor connects a running container to \
                 networks only when it started on a bridge network (stop it first)",
                self.record.name, self.record.spec.network_mode
            )));
        }
        Ok(true)
    }

    /// Before a start: a container that lost its first network while it ran starts on the
    /// first of the others (committed before the start is; the caller rewrites the spec
    /// file when this says it changed the record).
    pub(super) fn promote_before_start(&mut self) -> Result<bool, ContainerError> {
        let mut rec = self.record.clone();
        match promote_first(Arc::make_mut(&mut rec.spec)) {
            true => self.store_record(rec).map(|()| true),
            false => Ok(false),
        }
    }

    /// Commits `rec` as this container's record; its spec file is rewritten by the step
    /// that waits for it ([`ContainerActor::after_durable_spec`]).
    fn store_record(&mut self, rec: ContainerRecord) -> Result<(), ContainerError> {
        self.commit(&rec)?;
        self.record = rec;
        Ok(())
    }

    /// Runs a network step on the blocking pool; on failure the record goes back to `before`.
    fn network_step(
        &mut self,
        before: ContainerRecord,
        what: &'static str,
        network: String,
        step: impl FnOnce() -> Result<(), crate::network::NetworkError> + Send + 'static,
    ) -> Reply {
        // On the blocking pool once the record and spec file saying so are durable (spawned
        // only then).
        let job = async move { Ok(tokio::task::spawn_blocking(step).await) };
        let job = self.after_durable_spec(Box::pin(job.into_actor(self)));
        AtomicResponse::new(Box::pin(job.then(move |joined, act, _| {
            let done = match joined {
                Ok(joined) => joined.unwrap_or(Err(crate::network::NetworkError::Thread)),
                Err(e) => return ready_fut(Err(e)),
            };
            let Err(e) = done else {
                return ready_fut(Ok(()));
            };
            let failed = net_error(what, &network, e);
            if let Err(undo) = act.store_record(before) {
                tracing::warn!(parent: &act.span, error = %undo, "the record was not put back");
                return ready_fut(Err(failed));
            }
            // The step's error, once the record put back is durable.
            let undone = act.after_durable_spec(ready_fut(Ok(())));
            Box::pin(undone.map(move |undone, act, _| {
                if let Err(undo) = undone {
                    tracing::warn!(parent: &act.span, error = %undo, "the record put back is not durable");
                }
                Err(failed)
            }))
        })))
    }
}

impl Handler<Connect> for ContainerActor {
    type Result = Reply;

    fn handle(&mut self, msg: Connect, _: &mut Context<Self>) -> Self::Result {
        let running = match self.connectable_now() {
            Ok(r) => r,
            Err(e) => return ready(Err(e)),
        };
        let before = self.record.clone();
        let mut rec = before.clone();
        let network = msg.endpoint.network.clone();
        let slot = match (&rec.spec.endpoint, free_slot(&rec.spec)) {
            (None, _) => 0,
            (Some(_), Some(slot)) => slot,
            (Some(_), None) => {
                return ready(Err(ContainerError::BadRequest(format!(
                    "container {} is on {} networks already: moor's limit",
                    rec.name,
                    usize::from(MAX_SLOT) + 1
                ))))
            }
        };
        let endpoint = msg.endpoint.clone();
        let spec = Arc::make_mut(&mut rec.spec);
        if slot == 0 {
            spec.network_mode = network.clone();
            spec.endpoint = Some(msg.endpoint);
            spec.network_aliases = msg.aliases;
        } else {
            spec.extra_endpoints.push(ExtraEndpoint {
                endpoint: msg.endpoint,
                aliases: msg.aliases,
                slot,
            });
        }
        if let Err(e) = self.store_record(rec) {
            return ready(Err(e));
        }
        info!(parent: &self.span, network = %network, slot, running, "network connected");
        if !running {
            return stored(self);
        }
        let run_dir = self.shared.layout_of(&self.record).run_dir;
        let netns = crate::network::netns::path(&run_dir, &self.record.id);
        let id = self.record.id.clone();
        self.network_step(before, "connect a container to", network, move || {
            crate::network::veth::plug(&netns, &id, slot, &endpoint, false).inspect_err(|_| {
                let _ = crate::network::veth::unplug(&id, slot);
            })
        })
    }
}

impl Handler<Disconnect> for ContainerActor {
    type Result = Reply;

    fn handle(&mut self, msg: Disconnect, _: &mut Context<Self>) -> Self::Result {
        let running = match self.connectable_now() {
            Ok(r) => r,
            Err(e) => return ready(Err(e)),
        };
        let before = self.record.clone();
        let mut rec = before.clone();
        let on_first = rec
            .spec
            .endpoint
            .as_ref()
            .is_some_and(|e| e.network_id == msg.network_id);
        let extra = rec
            .spec
            .extra_endpoints
            .iter()
            .position(|x| x.endpoint.network_id == msg.network_id);
        let slot = match (on_first, extra) {
            (true, _) => {
                let spec = Arc::make_mut(&mut rec.spec);
                spec.endpoint = None;
                spec.network_aliases.clear();
                if running {
                    rec.published.clear();
                }
                0
            }
            (false, Some(i)) => Arc::make_mut(&mut rec.spec).extra_endpoints.remove(i).slot,
            (false, None) => {
                return ready(Err(ContainerError::BadRequest(format!(
                    "container {} is not connected to network {}",
                    rec.name, msg.network
                ))))
            }
        };
        // A container that does not run starts on its next network; a running one keeps its
        // interfaces as they are until it ends.
        if !running {
            promote_first(Arc::make_mut(&mut rec.spec));
        }
        if let Err(e) = self.store_record(rec) {
            return ready(Err(e));
        }
        info!(parent: &self.span, network = %msg.network, slot, running, "network disconnected");
        if !running {
            return stored(self);
        }
        let id = self.record.id.clone();
        self.network_step(before, "disconnect a container from", msg.network, move || {
            if slot == 0 {
                // Its published ports were on that address.
                if let Err(e) = crate::network::nat::unpublish_owned(&id) {
                    tracing::warn!(container_id = %&id[..12], error = %e, "published ports not withdrawn");
                }
            }
            crate::network::veth::unplug(&id, slot).map(drop)
        })
    }
}
