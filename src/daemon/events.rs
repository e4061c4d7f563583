//! The event bus behind `GET /events`: container actors publish Docker's event records
//! (create, start, die, stop, kill, destroy, rename, and moor's own `restore` for a
//! container the reconciler resumed), the image routes theirs (import, tag, untag, delete);
//! every `/events` stream subscribes. A bounded history
//! serves `since`. A broadcast channel rather than an actor: publishing never awaits, so a
//! slow client can never hold up a container's state machine (it misses events instead).

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

/// Events kept for `since`.
const HISTORY: usize = 1024;
/// Events a subscriber may fall behind by before it misses some.
const LAG: usize = 256;

/// Docker's event actor: the container and its attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Actor {
    /// The container id, or `sha256:<id>` of an image.
    #[serde(rename = "ID")]
    pub id: String,
    /// `name`, `image`, and per action `exitCode`, `signal`, `oldName`.
    pub attributes: BTreeMap<String, String>,
}

/// One Docker event record, as `/events` streams it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DockerEvent {
    /// `container` or `image`.
    #[serde(rename = "Type")]
    pub kind: &'static str,
    /// create, start, die, stop, kill, destroy, rename, pause, unpause, restore,
    /// `exec_create: <cmd>`, `exec_start: <cmd>`, exec_die, `health_status: <status>`; for
    /// images import, tag, untag, delete.
    #[serde(rename = "Action")]
    pub action: Cow<'static, str>,
    /// What it happened to.
    #[serde(rename = "Actor")]
    pub actor: Actor,
    /// `local`, as Docker's.
    pub scope: &'static str,
    /// Unix seconds.
    pub time: i64,
    /// Unix nanoseconds.
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
    /// Legacy field older clients read: the action.
    pub status: Cow<'static, str>,
    /// Legacy field: the container id.
    pub id: String,
    /// Legacy field: the image.
    pub from: String,
}

impl DockerEvent {
    /// A container event now, with its name and image and any extra attributes.
    pub fn container(
        action: impl Into<Cow<'static, str>>,
        id: &str,
        name: &str,
        image: &str,
        extra: &[(&str, String)],
    ) -> Self {
        let mut attributes = BTreeMap::new();
        attributes.insert("name".to_string(), name.to_string());
        attributes.insert("image".to_string(), image.to_string());
        for (k, v) in extra {
            attributes.insert((*k).to_string(), v.clone());
        }
        DockerEvent::new(
            "container",
            action,
            id.to_string(),
            attributes,
            image.to_string(),
        )
    }

    /// An image event now (`import`, `tag`, `untag`, `delete`), as moby's `LogImageEvent`
    /// logs it: the actor is `sha256:<id>`, `name` the reference the action was about, and
    /// the image's labels.
    pub fn image(
        action: &'static str,
        id: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Self {
        let mut attributes = labels.clone();
        attributes.insert("name".to_string(), name.to_string());
        DockerEvent::new(
            "image",
            action,
            format!("sha256:{id}"),
            attributes,
            String::new(),
        )
    }

    fn new(
        kind: &'static str,
        action: impl Into<Cow<'static, str>>,
        id: String,
        attributes: BTreeMap<String, String>,
        from: String,
    ) -> Self {
        let now = Utc::now();
        let action = action.into();
        DockerEvent {
            kind,
            status: action.clone(),
            action,
            actor: Actor {
                id: id.clone(),
                attributes,
            },
            scope: "local",
            time: now.timestamp(),
            time_nano: now.timestamp_nanos_opt().unwrap_or(0),
            id,
            from,
        }
    }

    /// When it happened.
    pub fn at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.time_nano)
    }
}

/// The bus: history plus live subscribers.
pub struct EventBus {
    /// The last [`HISTORY`] events; locked while publishing so a subscriber gets no gap.
    history: Mutex<VecDeque<DockerEvent>>,
    /// Live subscribers.
    live: broadcast::Sender<DockerEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
            live: broadcast::channel(LAG).0,
        }
    }
}

impl EventBus {
    /// Records and broadcasts an event.
    pub fn publish(&self, event: DockerEvent) {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(event.clone());
        // No subscriber is not an error.
        let _ = self.live.send(event);
    }

    /// The history so far and a receiver for everything after it.
    pub fn subscribe(&self) -> (Vec<DockerEvent>, broadcast::Receiver<DockerEvent>) {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        (history.iter().cloned().collect(), self.live.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_then_live_without_gap() {
        let bus = EventBus::default();
        bus.publish(DockerEvent::container("create", "abc", "web", "host", &[]));
        let (past, mut rx) = bus.subscribe();
        bus.publish(DockerEvent::container(
            "die",
            "abc",
            "web",
            "host",
            &[("exitCode", "3".into())],
        ));
        assert_eq!(past.len(), 1);
        assert_eq!(past[0].action, "create");
        let next = rx.try_recv().expect("live event");
        assert_eq!(next.actor.attributes["exitCode"], "3");
        let json = serde_json::to_value(&next).unwrap();
        assert_eq!(json["Type"], "container");
        assert_eq!(json["Actor"]["ID"], "abc");
        assert_eq!(json["Actor"]["Attributes"]["name"], "web");
        assert!(json["timeNano"].as_i64().unwrap() > 0);
    }
}
