//! Go templates for `inspect -f`, evaluated with gtmpl over the daemon's JSON, with docker's
//! `json` function.

use std::collections::HashMap;

use gtmpl::{Context, FuncError, Template, Value};
use gtmpl_value::Number;
use thiserror::Error;

/// Why a template could not be used.
#[derive(Debug, Error)]
pub enum TemplateError {
    /// The template text is not a valid Go template.
    #[error("template parsing error")]
    Parse(#[source] Box<gtmpl::error::ParseError>),
    /// Evaluating it over a container failed.
    #[error("template: executing")]
    Exec(#[source] Box<gtmpl::error::ExecError>),
}

/// A parsed template, ready to render containers.
pub struct Format {
    /// gtmpl's template with docker's extra functions.
    template: Template,
}

impl Format {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Format, TemplateError> {
        let mut template = Template::default();
        template.add_func("json", json_func);
        template
            .parse(text)
            .map_err(|error| TemplateError::Parse(Box::new(error)))?;
        Ok(Format { template })
    }

    /// Renders the template over one JSON document.
    pub fn render(&self, data: &serde_json::Value) -> Result<String, TemplateError> {
        self.template
            .render(&Context::from(to_gtmpl(data)))
            .map_err(|error| TemplateError::Exec(Box::new(error)))
    }
}

/// serde_json's value as gtmpl's: objects become maps (a missing field renders
/// `<no value>`), integers stay integers.
pub fn to_gtmpl(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Number(json_number(n)),
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => Value::Array(items.iter().map(to_gtmpl).collect()),
        serde_json::Value::Object(map) => Value::Map(
            map.iter()
                .map(|(key, value)| (key.clone(), to_gtmpl(value)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// A JSON number as the narrowest of i64, u64, f64.
fn json_number(n: &serde_json::Number) -> Number {
    if let Some(i) = n.as_i64() {
        Number::from(i)
    } else if let Some(u) = n.as_u64() {
        Number::from(u)
    } else {
        Number::from(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// gtmpl's value back as serde_json's (for `json`); functions and "no value" become null.
pub fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::NoValue | Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Number(n) => number_to_json(n),
        Value::Array(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::Map(map) | Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), to_json(value)))
                .collect(),
        ),
    }
}

/// A gtmpl number as JSON, integers first.
fn number_to_json(n: &Number) -> serde_json::Value {
    if let Some(i) = n.as_i64() {
        return serde_json::Value::from(i);
    }
    if let Some(u) = n.as_u64() {
        return serde_json::Value::from(u);
    }
    n.as_f64()
        .and_then(serde_json::Number::from_f64)
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// Docker's `json` template function: its argument as compact JSON (keys sorted, as gtmpl
/// keeps maps unordered).
fn json_func(args: &[Value]) -> Result<Value, FuncError> {
    let [arg] = args else {
        return Err(FuncError::ExactlyXArgs("json".to_string(), 1));
    };
    Ok(Value::String(to_json(arg).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inspect() -> serde_json::Value {
        json!({
            "Id": "0123456789abcdef",
            "Name": "/web",
            "RestartCount": 0,
            "State": {
                "Status": "running",
                "Running": true,
                "Pid": 1234,
                "ExitCode": 0,
                "StartedAt": "2024-01-02T03:04:05.123456789Z",
            },
            "Config": { "Labels": { "k": "v" }, "Cmd": ["sleep", "9"] },
        })
    }

    fn render(text: &str) -> String {
        Format::parse(text).unwrap().render(&inspect()).unwrap()
    }

    #[test]
    fn integers_print_as_integers() {
        assert_eq!(render("{{.State.Pid}}"), "1234");
        assert_eq!(render("{{ .State.Pid }}"), "1234");
        assert_eq!(render("{{.State.ExitCode}}"), "0");
        assert_eq!(render("{{.RestartCount}}"), "0");
    }

    #[test]
    fn nested_fields_and_strings() {
        assert_eq!(
            render("{{.State.StartedAt}}"),
            "2024-01-02T03:04:05.123456789Z"
        );
        assert_eq!(render("{{.Name}} {{.State.Status}}"), "/web running");
        assert_eq!(render("{{.Config.Labels.k}}"), "v");
        assert_eq!(render("{{index .Config.Cmd 1}}"), "9");
        assert_eq!(render("{{if .State.Running}}up{{else}}down{{end}}"), "up");
    }

    #[test]
    fn json_function() {
        let state: serde_json::Value = serde_json::from_str(&render("{{json .State}}")).unwrap();
        assert_eq!(state, inspect()["State"]);
        assert_eq!(render("{{json .State.Pid}}"), "1234");
        assert_eq!(render("{{json .Name}}"), "\"/web\"");
    }

    #[test]
    fn floats_stay_floats() {
        let value = to_gtmpl(&json!(1.5));
        assert_eq!(value.to_string(), "1.5");
        assert_eq!(to_json(&value), json!(1.5));
    }

    #[test]
    fn bad_templates_are_errors() {
        assert!(matches!(
            Format::parse("{{.State"),
            Err(TemplateError::Parse(_))
        ));
    }
}
