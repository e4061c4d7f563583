//! `POST /images/prune[?filters={"dangling":["false"]}]` (`docker image prune [-a]`): removes
//! the images no container uses (the untagged ones; all of them with `dangling=false`) and
//! every layer no image lists any more, through the images' owner; answers Docker's
//! `{"ImagesDeleted": [...], "SpaceReclaimed": N}`.

use actix_web::{web, HttpResponse};

use super::{ask, Data};
use crate::api::error::ApiError;
use crate::api::image_types::{DeleteItem, PruneReport};
use crate::api::routes::{parse_filters, Query};
use crate::daemon::events::DockerEvent;
use crate::daemon::messages::PruneImages;

/// Docker's `dangling` filter: whether only untagged images go (the default).
fn dangling_only(q: &Query) -> Result<bool, ApiError> {
    let filters = parse_filters(q.get("filters"))?;
    let mut only = true;
    for (key, values) in &filters {
        match key.as_str() {
            "dangling" => {
                for v in values {
                    only = match v.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(ApiError::Query {
                                name: "filters",
                                value: format!("dangling={v}"),
                            })
                        }
                    };
                }
            }
            "until" => {
                return Err(ApiError::Unsupported {
                    option: "the image prune filter until",
                })
            }
            "label" | "label!" => {
                return Err(ApiError::Unsupported {
                    option: "the image prune filter label",
                })
            }
            _ => {
                return Err(ApiError::Query {
                    name: "filters",
                    value: key.clone(),
                })
            }
        }
    }
    Ok(only)
}

/// The handler.
pub async fn prune(state: Data, q: Query) -> Result<HttpResponse, ApiError> {
    let all = !dangling_only(&q)?;
    let pruned = ask(&state, PruneImages { all }).await?;
    let events = &state.shared.events;
    let mut deleted = Vec::new();
    // An imported image's rootfs is its own; a pulled image's bytes are its layers'.
    let mut space: u64 = 0;
    for img in &pruned.images {
        let labels = &img.config.labels;
        for tag in &img.repo_tags {
            events.publish(DockerEvent::image("untag", &img.id, tag, labels));
            deleted.push(DeleteItem {
                untagged: Some(tag.clone()),
                deleted: None,
            });
        }
        let sha = format!("sha256:{}", img.id);
        events.publish(DockerEvent::image("delete", &img.id, &sha, labels));
        deleted.push(DeleteItem {
            untagged: None,
            deleted: Some(sha),
        });
        if img.layers.is_empty() {
            space = space.saturating_add(img.size);
        }
    }
    for layer in &pruned.layers {
        space = space.saturating_add(layer.size);
        deleted.push(DeleteItem {
            untagged: None,
            deleted: Some(layer.diff_id.clone()),
        });
    }
    tracing::info!(
        images = pruned.images.len(),
        layers = pruned.layers.len(),
        bytes = space,
        "images pruned"
    );
    // The trees are removed before the answer, off the actors' thread.
    web::block(move || drop(pruned)).await.ok();
    Ok(HttpResponse::Ok().json(PruneReport {
        images_deleted: (!deleted.is_empty()).then_some(deleted),
        space_reclaimed: space,
    }))
}
