//! `moor admin check`: verifies the store without changing it (schema version, every record
//! decodes, names and ids agree, every record has its spec file, no record uses an image
//! the store does not have) and lists the problems.

use std::collections::HashMap;

use moor_state::schema::SCHEMA_VERSION;
use moor_state::store::Store;

use crate::host::layout::Layout;

/// The problems found; empty when the store is sound.
pub fn check(store: &Store, layout: &Layout) -> Vec<String> {
    let mut problems = Vec::new();
    match store.schema_version() {
        Ok(v) if v == SCHEMA_VERSION => {}
        Ok(v) => problems.push(format!(
            "schema version {v}, this moor writes {SCHEMA_VERSION}"
        )),
        Err(e) => problems.push(format!("schema version unreadable: {e}")),
    }
    let (records, bad) = match store.list_with_errors() {
        Ok(r) => r,
        Err(e) => {
            problems.push(format!("the containers tree cannot be read: {e}"));
            return problems;
        }
    };
    for (id, e) in bad {
        problems.push(format!("record {id} does not decode: {e}"));
    }
    let names = match store.names() {
        Ok(n) => n,
        Err(e) => {
            problems.push(format!("the names tree cannot be read: {e}"));
            Vec::new()
        }
    };
    let by_name: HashMap<&str, &str> = names
        .iter()
        .map(|(n, i)| (n.as_str(), i.as_str()))
        .collect();
    let by_id: HashMap<&str, &str> = records
        .iter()
        .map(|r| (r.id.as_str(), r.name.as_str()))
        .collect();
    for (name, id) in &names {
        match by_id.get(id.as_str()) {
            None => problems.push(format!("name {name:?} points at {id}, which has no record")),
            Some(own) if own != name => problems.push(format!(
                "name {name:?} points at {id}, whose record is named {own:?}"
            )),
            Some(_) => {}
        }
    }
    let images = store
        .images()
        .map_err(|e| e.to_string())
        .and_then(|i| i.list().map_err(|e| e.to_string()));
    let image_ids: Option<std::collections::HashSet<String>> = match images {
        Ok(list) => Some(list.into_iter().map(|i| i.id).collect()),
        Err(e) => {
            problems.push(format!("the images tree cannot be read: {e}"));
            None
        }
    };
    for rec in &records {
        if let Some(ids) = &image_ids {
            let id = &rec.spec.image_id;
            if !id.is_empty() && !ids.contains(id) {
                problems.push(format!(
                    "record {} uses image sha256:{id}, which the store does not have",
                    rec.id
                ));
            }
        }
        if by_name.get(rec.name.as_str()) != Some(&rec.id.as_str()) {
            problems.push(format!(
                "record {} is named {:?}, but the name index does not point at it",
                rec.id, rec.name
            ));
        }
        if !layout.spec_file(&rec.id).exists() {
            problems.push(format!(
                "record {} has no spec file {}",
                rec.id,
                layout.spec_file(&rec.id).display()
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use moor_state::{ContainerRecord, ContainerSpec};

    #[test]
    fn a_record_using_a_missing_image_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout {
            root: dir.path().to_path_buf(),
            run_dir: dir.path().join("run"),
            socket: dir.path().join("s.sock"),
            shim_bin: "moor-shim".into(),
        };
        let store = Store::open(&layout.store()).unwrap();
        let spec = ContainerSpec {
            image: "bb".into(),
            image_id: "ab".repeat(32),
            ..Default::default()
        };
        let rec = ContainerRecord::new("cd".repeat(32), "web".into(), spec, chrono::Utc::now());
        store.create(&rec).unwrap();
        let problems = check(&store, &layout);
        assert!(
            problems
                .iter()
                .any(|p| p.contains(&format!("uses image sha256:{}", "ab".repeat(32)))),
            "{problems:?}"
        );
    }
}
