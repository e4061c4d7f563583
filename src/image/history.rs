//! `docker history`: an image's history as Docker computes it from the config blob. Each
//! history entry that is not an `empty_layer` takes the next diff id, bottom first, and its
//! size is that layer's unpacked size; the list is newest first, the top entry carries the
//! image's id and names, the others `<missing>` (moor keeps no parent images, as a pulled
//! image in Docker has none). An image without a config blob (an import, a pull recorded
//! before moor kept configs) gets one entry per layer, or one for its rootfs.

use moor_state::image::ImageRecord;
use serde::{Deserialize, Serialize};

/// One line of `GET /images/{name}/history` (Docker's `HistoryResponseItem`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    /// `sha256:<id>` for the top entry, `<missing>` for the others.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    /// The command that made it.
    pub created_by: String,
    /// The image's names on the top entry.
    pub tags: Option<Vec<String>>,
    /// Bytes of the layer it made (0 for an empty layer).
    pub size: i64,
    /// Its comment.
    pub comment: String,
}

/// A config's history entry, as moor reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Entry {
    /// RFC 3339.
    created: Option<String>,
    /// The command.
    created_by: String,
    /// Its comment.
    comment: String,
    /// Made no layer (takes no diff id).
    empty_layer: bool,
}

/// A config blob, for its history only.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WithHistory {
    /// Oldest first.
    history: Vec<Entry>,
}

fn unix(created: Option<&str>) -> i64 {
    created
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map_or(0, |c| c.timestamp())
}

/// The history of `rec` from its config blob (`config`), its layers (bottom first) and
/// `size_of` each layer.
pub fn history(
    rec: &ImageRecord,
    config: Option<&[u8]>,
    layers: &[String],
    size_of: impl Fn(&str) -> u64,
) -> Vec<HistoryItem> {
    let entries = config
        .and_then(|c| serde_json::from_slice::<WithHistory>(c).ok())
        .map(|c| c.history)
        .unwrap_or_default();
    let size = |l: &str| i64::try_from(size_of(l)).unwrap_or(i64::MAX);
    let mut out: Vec<HistoryItem> = if entries.is_empty() {
        let created = rec.created_at.timestamp();
        let imported = |size: i64| HistoryItem {
            id: "<missing>".into(),
            created,
            created_by: String::new(),
            tags: None,
            size,
            comment: "Imported from -".into(),
        };
        match layers.is_empty() {
            true => vec![imported(i64::try_from(rec.size).unwrap_or(i64::MAX))],
            false => layers.iter().map(|l| imported(size(l))).collect(),
        }
    } else {
        let mut next = layers.iter();
        entries
            .iter()
            .map(|e| HistoryItem {
                id: "<missing>".into(),
                created: unix(e.created.as_deref()),
                created_by: e.created_by.clone(),
                tags: None,
                size: match e.empty_layer {
                    true => 0,
                    false => next.next().map_or(0, |l| size(l)),
                },
                comment: e.comment.clone(),
            })
            .collect()
    };
    out.reverse();
    if let Some(top) = out.first_mut() {
        top.id = format!("sha256:{}", rec.id);
        top.tags = Some(rec.repo_tags.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_layers_take_no_layer_and_the_top_has_the_id() {
        let rec = ImageRecord {
            version: 1,
            id: "ab".repeat(32),
            repo_tags: vec!["x:1".into()],
            created_at: chrono::Utc::now(),
            size: 30,
            config: Default::default(),
            layers: vec!["l1".into(), "l2".into()],
            repo_digests: Vec::new(),
            manifest_type: None,
        };
        let config = br#"{"history":[
            {"created":"2024-01-01T00:00:00Z","created_by":"ADD file"},
            {"created":"2024-01-02T00:00:00Z","created_by":"CMD [\"sh\"]","empty_layer":true},
            {"created":"2024-01-03T00:00:00Z","created_by":"touch /f","comment":"c"}]}"#;
        let h = history(&rec, Some(config), &rec.layers, |l| match l {
            "l1" => 10,
            _ => 20,
        });
        let sizes: Vec<i64> = h.iter().map(|i| i.size).collect();
        assert_eq!(sizes, vec![20, 0, 10]);
        assert_eq!(h[0].id, format!("sha256:{}", rec.id));
        assert_eq!(h[0].tags, Some(vec!["x:1".to_string()]));
        assert_eq!(h[0].comment, "c");
        assert_eq!(h[1].id, "<missing>");
        assert_eq!(h[2].created, 1704067200);
        let flat = history(&rec, None, &[], |_| 0);
        assert_eq!(flat.len(), 1);
        assert_eq!(flat[0].size, 30);
    }
}
