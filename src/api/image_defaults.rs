//! An image's config as the defaults of a create request, merged as moby's `merge`
//! (daemon/commit.go) does: the request's Cmd, Entrypoint, WorkingDir, User and StopSignal
//! win when given; an Entrypoint given at create also drops the image's Cmd; the image's
//! Env entries and Labels are added under the request's own (the request wins per key).

use moor_state::image::ImageConfig;

use crate::api::types::CreateRequest;

/// Fills what `req` leaves unset from `image`.
pub fn merge(req: &mut CreateRequest, image: &ImageConfig) {
    if req.entrypoint.as_ref().map_or(true, Vec::is_empty) {
        if req.cmd.as_ref().map_or(true, Vec::is_empty) {
            req.cmd.clone_from(&image.cmd);
        }
        if req.entrypoint.is_none() {
            req.entrypoint.clone_from(&image.entrypoint);
        }
    }
    let env = req.env.get_or_insert_with(Vec::new);
    let key = |e: &str| e.split('=').next().unwrap_or_default().to_string();
    let own: Vec<String> = env.iter().map(|e| key(e)).collect();
    env.extend(image.env.iter().filter(|e| !own.contains(&key(e))).cloned());
    // The image's VOLUMEs are anonymous volumes, as in Docker (`api::mounts`).
    let volumes = req.volumes.get_or_insert_with(Default::default);
    for path in &image.volumes {
        volumes
            .entry(path.clone())
            .or_insert_with(|| serde_json::json!({}));
    }
    // The image's EXPOSE ports join the request's (Docker's merge): `-P` publishes them.
    if !image.exposed_ports.is_empty() {
        let exposed = req.exposed_ports.get_or_insert_with(Default::default);
        for port in &image.exposed_ports {
            exposed
                .entry(port.clone())
                .or_insert_with(|| serde_json::json!({}));
        }
    }
    let labels = req.labels.get_or_insert_with(Default::default);
    for (k, v) in &image.labels {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let unset = |s: &Option<String>| s.as_deref().map_or(true, str::is_empty);
    if unset(&req.working_dir) {
        req.working_dir = Some(image.working_dir.clone());
    }
    if unset(&req.user) {
        req.user = Some(image.user.clone());
    }
    if unset(&req.stop_signal) {
        req.stop_signal = Some(image.stop_signal.clone());
    }
    // The request's is merged over it at the conversion (`api::health::merged`).
    req.image_healthcheck.clone_from(&image.healthcheck);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn image() -> ImageConfig {
        ImageConfig {
            env: strings(&["A=1", "B=2"]),
            cmd: Some(strings(&["img-cmd"])),
            entrypoint: Some(strings(&["img-ep"])),
            working_dir: "/srv".into(),
            user: "daemon".into(),
            labels: [
                ("l".to_string(), "img".to_string()),
                ("m".into(), "img".into()),
            ]
            .into(),
            stop_signal: "SIGINT".into(),
            ..ImageConfig::default()
        }
    }

    #[test]
    fn the_images_exposed_ports_join_the_requests() {
        let img = ImageConfig {
            exposed_ports: strings(&["80/tcp", "53/udp"]),
            ..ImageConfig::default()
        };
        let mut req = CreateRequest {
            exposed_ports: Some([("443/tcp".to_string(), serde_json::json!({}))].into()),
            ..Default::default()
        };
        merge(&mut req, &img);
        let keys: Vec<&String> = req.exposed_ports.as_ref().unwrap().keys().collect();
        assert_eq!(keys, ["443/tcp", "53/udp", "80/tcp"]);
    }

    #[test]
    fn the_request_wins_and_the_image_fills_the_rest() {
        let mut req = CreateRequest {
            env: Some(strings(&["B=own", "C=3"])),
            labels: Some([("l".to_string(), "own".to_string())].into()),
            ..Default::default()
        };
        merge(&mut req, &image());
        assert_eq!(req.cmd, Some(strings(&["img-cmd"])));
        assert_eq!(req.entrypoint, Some(strings(&["img-ep"])));
        assert_eq!(req.env, Some(strings(&["B=own", "C=3", "A=1"])));
        let labels = req.labels.expect("labels");
        assert_eq!((labels["l"].as_str(), labels["m"].as_str()), ("own", "img"));
        assert_eq!(req.working_dir.as_deref(), Some("/srv"));
        assert_eq!(req.user.as_deref(), Some("daemon"));
        assert_eq!(req.stop_signal.as_deref(), Some("SIGINT"));
        let mut req = CreateRequest {
            cmd: Some(strings(&["own"])),
            working_dir: Some("/w".into()),
            user: Some("0".into()),
            ..Default::default()
        };
        merge(&mut req, &image());
        assert_eq!(req.cmd, Some(strings(&["own"])));
        assert_eq!(req.entrypoint, Some(strings(&["img-ep"])));
        assert_eq!(req.working_dir.as_deref(), Some("/w"));
        assert_eq!(req.user.as_deref(), Some("0"));
    }

    #[test]
    fn an_entrypoint_at_create_drops_the_image_cmd() {
        let mut req = CreateRequest {
            entrypoint: Some(strings(&["own-ep"])),
            ..Default::default()
        };
        merge(&mut req, &image());
        assert_eq!(req.entrypoint, Some(strings(&["own-ep"])));
        assert_eq!(req.cmd, None);
        // `--entrypoint ""`: the image's entrypoint goes, its cmd stays.
        let mut req = CreateRequest {
            entrypoint: Some(Vec::new()),
            ..Default::default()
        };
        merge(&mut req, &image());
        assert_eq!(req.entrypoint, Some(Vec::new()));
        assert_eq!(req.cmd, Some(strings(&["img-cmd"])));
    }

    #[test]
    fn the_images_healthcheck_goes_to_the_conversion() {
        let check = serde_json::json!({"Test": ["CMD", "true"], "Retries": 2});
        let config = ImageConfig {
            healthcheck: Some(check.clone()),
            ..image()
        };
        let mut req = CreateRequest::default();
        merge(&mut req, &config);
        assert_eq!(req.image_healthcheck, Some(check));
        let merged = crate::api::health::of(&req)
            .expect("valid")
            .expect("a check");
        assert_eq!((merged.test.len(), merged.retries), (2, 2));
    }

    #[test]
    fn an_empty_image_changes_nothing_that_matters() {
        let mut req = CreateRequest::default();
        merge(&mut req, &ImageConfig::default());
        assert_eq!((req.cmd, req.entrypoint), (None, None));
        assert_eq!(req.env, Some(Vec::new()));
    }
}
