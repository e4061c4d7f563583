//! Healthchecks on the API: `Config.Healthcheck` of a create request checked field by field
//! (a 400 naming the field for a value Docker refuses), merged over the image's as moby's
//! `merge` does, and `State.Health` in Docker's shape for inspect.

use moor_state::health::{Health, HealthConfig, ProbeResult, MIN_DURATION_NS};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::convert::go_time;
use crate::api::fields::FieldError;
use crate::api::types::CreateRequest;

/// The keys of Docker's `HealthConfig`.
const KEYS: &[&str] = &[
    "Test",
    "Interval",
    "Timeout",
    "StartPeriod",
    "StartInterval",
    "Retries",
];

fn invalid(field: &str, key: &str, reason: impl Into<String>) -> FieldError {
    FieldError::Invalid {
        field: format!("{field}.{key}"),
        reason: reason.into(),
    }
}

/// The check of a `Healthcheck` object named `field` (`Healthcheck` for a create's, the
/// image's for an image's): None when null.
pub fn parse(field: &str, v: &Value) -> Result<Option<HealthConfig>, FieldError> {
    let obj = match v {
        Value::Null => return Ok(None),
        Value::Object(obj) => obj,
        _ => {
            return Err(FieldError::NotAnObject {
                field: field.into(),
            })
        }
    };
    if let Some((key, _)) = obj
        .iter()
        .find(|(k, v)| !KEYS.contains(&k.as_str()) && !crate::api::fields::is_zero(v))
    {
        return Err(FieldError::Unknown {
            field: format!("{field}.{key}"),
        });
    }
    let mut config = HealthConfig {
        test: test(field, obj.get("Test").unwrap_or(&Value::Null))?,
        ..HealthConfig::default()
    };
    let slots = [
        ("Interval", &mut config.interval),
        ("Timeout", &mut config.timeout),
        ("StartPeriod", &mut config.start_period),
        ("StartInterval", &mut config.start_interval),
    ];
    for (key, slot) in slots {
        let ns = integer(field, key, obj.get(key))?;
        if ns < 0 {
            return Err(invalid(field, key, format!("must not be negative ({ns})")));
        }
        if ns != 0 && ns < MIN_DURATION_NS {
            let reason = format!("must be 0 (the default) or at least 1ms, in nanoseconds ({ns})");
            return Err(invalid(field, key, reason));
        }
        *slot = ns;
    }
    config.retries = integer(field, "Retries", obj.get("Retries"))?;
    if config.retries < 0 {
        let reason = format!("must not be negative ({})", config.retries);
        return Err(invalid(field, "Retries", reason));
    }
    Ok(Some(config))
}

/// `Test`: empty (inherit the image's), `["NONE"]`, `["CMD", arg...]` or
/// `["CMD-SHELL", command]`.
fn test(field: &str, v: &Value) -> Result<Vec<String>, FieldError> {
    let not_strings = || invalid(field, "Test", "must be a list of strings");
    let list: Vec<String> = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(String::from).ok_or_else(not_strings))
            .collect::<Result<_, _>>()?,
        _ => return Err(not_strings()),
    };
    let Some((kind, args)) = list.split_first() else {
        return Ok(list);
    };
    match kind.as_str() {
        "NONE" if args.is_empty() => Ok(list),
        "NONE" => Err(invalid(field, "Test", "NONE takes no arguments")),
        "CMD" | "CMD-SHELL" if !args.is_empty() => Ok(list),
        "CMD" | "CMD-SHELL" => Err(invalid(field, "Test", format!("{kind} needs a command"))),
        other => Err(invalid(
            field,
            "Test",
            format!("unknown kind {other:?} (it takes NONE, CMD or CMD-SHELL)"),
        )),
    }
}

/// An integer field (absent or null: 0).
fn integer(field: &str, key: &str, v: Option<&Value>) -> Result<i64, FieldError> {
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| invalid(field, key, format!("must be an integer, not {v}"))),
    }
}

/// The healthcheck a container gets: the create's (checked) over the image's (checked), as
/// moby's `merge`: the image's when the create gives none, else the create's with its empty
/// test and zero fields taken from the image's. None when neither has one.
pub fn merged(
    own: Option<&Value>,
    image: Option<&Value>,
) -> Result<Option<HealthConfig>, FieldError> {
    let own = own.map(|v| parse("Healthcheck", v)).transpose()?.flatten();
    let image = image
        .map(|v| parse("the image's Healthcheck", v))
        .transpose()?
        .flatten();
    Ok(match (own, image) {
        (Some(own), Some(image)) => Some(own.over(&image)),
        (own, image) => own.or(image),
    })
}

/// The healthcheck of a create request after the image defaults' merge ([`merged`]).
pub fn of(req: &CreateRequest) -> Result<Option<HealthConfig>, FieldError> {
    merged(req.healthcheck.as_ref(), req.image_healthcheck.as_ref())
}

/// Docker's `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthState {
    /// starting, healthy or unhealthy.
    pub status: String,
    /// Failures in a row that counted.
    pub failing_streak: u32,
    /// The last results, oldest first.
    pub log: Vec<HealthLogEntry>,
}

/// One entry of `State.Health.Log` (Docker's `HealthcheckResult`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthLogEntry {
    /// RFC 3339 nanoseconds.
    pub start: String,
    /// RFC 3339 nanoseconds.
    pub end: String,
    /// 0 passed; -1 timed out or could not run.
    pub exit_code: i64,
    /// stdout and stderr, at most 4 KiB.
    pub output: String,
}

/// A record's health in Docker's shape.
pub fn state(health: &Health) -> HealthState {
    let entry = |r: &ProbeResult| HealthLogEntry {
        start: go_time(Some(r.start)),
        end: go_time(Some(r.end)),
        exit_code: r.exit_code,
        output: r.output.clone(),
    };
    HealthState {
        status: health.status.word().into(),
        failing_streak: health.failing_streak,
        log: health.log.iter().map(entry).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        parse("Healthcheck", &v).unwrap_err().to_string()
    }

    #[test]
    fn a_check_reads_and_shows_back_as_given() {
        let v = json!({"Test": ["CMD-SHELL", "test -f /ok"], "Interval": 1_000_000_000,
            "Retries": 2, "Timeout": 0});
        let c = parse("Healthcheck", &v).unwrap().unwrap();
        assert_eq!((c.interval, c.retries, c.timeout), (1_000_000_000, 2, 0));
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"Test": ["CMD-SHELL", "test -f /ok"], "Interval": 1_000_000_000, "Retries": 2})
        );
        assert_eq!(parse("Healthcheck", &Value::Null), Ok(None));
        assert!(parse("Healthcheck", &json!({"Test": ["NONE"]})).is_ok());
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(
            err(json!({"Test": ["HTTP", "x"]})),
            r#"Healthcheck.Test: unknown kind "HTTP" (it takes NONE, CMD or CMD-SHELL)"#
        );
        assert_eq!(
            err(json!({"Test": ["CMD"]})),
            "Healthcheck.Test: CMD needs a command"
        );
        assert_eq!(
            err(json!({"Interval": -1})),
            "Healthcheck.Interval: must not be negative (-1)"
        );
        assert!(err(json!({"StartPeriod": 5})).starts_with("Healthcheck.StartPeriod: must be 0"));
        assert_eq!(
            err(json!({"Retries": -2})),
            "Healthcheck.Retries: must not be negative (-2)"
        );
        assert_eq!(
            err(json!({"Timeout": "1s"})),
            r#"Healthcheck.Timeout: must be an integer, not "1s""#
        );
        assert_eq!(
            err(json!({"Test": ["CMD", "x"], "Future": 1})),
            "Healthcheck.Future is not a field of the Docker Engine API 1.44 create request"
        );
        assert_eq!(err(json!([])), "Healthcheck must be a JSON object");
    }

    #[test]
    fn the_create_is_merged_over_the_image() {
        let image = json!({"Test": ["CMD", "img"], "Interval": 5_000_000_000_i64, "Retries": 4});
        let own = json!({"Interval": 1_000_000_000});
        let c = merged(Some(&own), Some(&image)).unwrap().unwrap();
        assert_eq!(c.test, ["CMD", "img"]);
        assert_eq!((c.interval, c.retries), (1_000_000_000, 4));
        let none = json!({"Test": ["NONE"]});
        let c = merged(Some(&none), Some(&image)).unwrap().unwrap();
        assert_eq!(c.probe(), None, "NONE disables the image's");
        assert_eq!(merged(None, None), Ok(None));
        let c = merged(None, Some(&image)).unwrap().unwrap();
        assert_eq!(c.retries, 4);
    }
}
