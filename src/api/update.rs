//! `POST /containers/{id}/update` (`docker update`): Docker's `UpdateConfig`
//! ([`UpdateRequest`]) as far as moor takes it (the field rule, [`crate::api::fields::UPDATE`], refuses the rest by name), and
//! its check against the container's current spec: the result must be a spec create would
//! take, on a runtime that has a cgroup to change.

use moor_state::resources::ResourceUpdate;
use moor_state::ContainerSpec;

use crate::api::error::ApiError;
use crate::api::fields::FieldError;
use crate::api::types::{HostConfig, UpdateRequest};

/// Parses an update body: the field rule first, then the typed request.
pub fn parse(body: &[u8]) -> Result<UpdateRequest, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)?;
    crate::api::fields::check_update(&value)?;
    Ok(serde_json::from_value(value)?)
}

fn given(v: i64) -> Option<i64> {
    (v != 0).then_some(v)
}

/// The update `req` asks of a container whose spec is `spec`, checked: the values a create
/// would refuse, an update of a runtime without a cgroup, and a restart policy on an
/// `--rm` container are 400s naming the field.
pub fn to_update(req: &UpdateRequest, spec: &ContainerSpec) -> Result<ResourceUpdate, ApiError> {
    let policy = match req.restart_policy.as_ref().filter(|p| !p.name.is_empty()) {
        Some(p) => Some(crate::api::spec::restart_policy(Some(p))?),
        None => None,
    };
    let up = ResourceUpdate {
        memory: given(req.memory),
        memory_swap: given(req.memory_swap),
        memory_reservation: given(req.memory_reservation),
        nano_cpus: given(req.nano_cpus),
        cpu_shares: given(req.cpu_shares),
        cpu_quota: given(req.cpu_quota),
        cpu_period: given(req.cpu_period),
        cpuset_cpus: (!req.cpuset_cpus.is_empty()).then(|| req.cpuset_cpus.clone()),
        cpuset_mems: (!req.cpuset_mems.is_empty()).then(|| req.cpuset_mems.clone()),
        pids_limit: req.pids_limit,
        restart_policy: policy,
    };
    let invalid = |field: &str, reason: String| -> ApiError {
        FieldError::Invalid {
            field: field.into(),
            reason,
        }
        .into()
    };
    let runtime = crate::runtime::interface::profile(spec.runtime);
    if up.touches_cgroup() && !runtime.limits {
        return Err(invalid(
            "Resources",
            format!("not supported with the {} runtime", runtime.name),
        ));
    }
    if spec.auto_remove && policy.is_some_and(|p| p != moor_state::record::RestartPolicy::No) {
        return Err(invalid(
            "RestartPolicy",
            "Restart policy cannot be updated because AutoRemove is enabled for the container"
                .into(),
        ));
    }
    let after = up.apply(spec);
    if let Some(n) = up.pids_limit.filter(|n| *n < -1) {
        return Err(invalid(
            "PidsLimit",
            format!("{n} is not a limit (-1 or 0: none)"),
        ));
    }
    // The result must be what a create takes (the same checks, the same messages).
    let r = &after.resources;
    let as_created = HostConfig {
        memory: after.memory,
        nano_cpus: after.nano_cpus,
        memory_swap: r.memory_swap,
        memory_reservation: r.memory_reservation,
        cpu_shares: r.cpu_shares,
        cpu_quota: r.cpu_quota,
        cpu_period: r.cpu_period,
        cpuset_cpus: r.cpuset_cpus.clone(),
        cpuset_mems: r.cpuset_mems.clone(),
        ..HostConfig::default()
    };
    if after.memory < 0 || after.nano_cpus < 0 {
        return Err(invalid("Memory", "a limit can not be negative".into()));
    }
    crate::api::resources::resources(&as_created)?;
    Ok(up)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::RestartPolicy;
    use moor_state::record::RuntimeKind;

    fn runc(memory: i64) -> ContainerSpec {
        ContainerSpec {
            runtime: RuntimeKind::Runc,
            memory,
            ..ContainerSpec::default()
        }
    }

    #[test]
    fn an_update_is_checked_against_the_spec() {
        let req: UpdateRequest =
            serde_json::from_str(r#"{"Memory": 134217728, "RestartPolicy": {"Name": ""}}"#)
                .unwrap();
        let up = to_update(&req, &runc(64 << 20)).unwrap();
        assert_eq!((up.memory, up.restart_policy), (Some(128 << 20), None));
        let swap = UpdateRequest {
            memory_swap: 32 << 20,
            ..UpdateRequest::default()
        };
        let e = to_update(&swap, &runc(64 << 20)).unwrap_err().to_string();
        assert!(e.contains("MemorySwap"), "{e}");
        let mut process = runc(0);
        process.runtime = RuntimeKind::Process;
        let e = to_update(&req, &process).unwrap_err().to_string();
        assert!(e.contains("process runtime"), "{e}");
        let policy = UpdateRequest {
            restart_policy: Some(RestartPolicy {
                name: "always".into(),
                maximum_retry_count: 0,
            }),
            ..UpdateRequest::default()
        };
        assert!(
            to_update(&policy, &process).is_ok(),
            "a policy on any runtime"
        );
        process.auto_remove = true;
        assert!(to_update(&policy, &process).is_err());
        let e = parse(br#"{"BlkioWeight": 300}"#).unwrap_err().to_string();
        assert_eq!(e, "BlkioWeight is not supported by moor yet");
    }
}
