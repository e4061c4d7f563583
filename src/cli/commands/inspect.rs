//! `moor inspect [-f TEMPLATE]`: `GET /containers/{id}/json` for each name, printed as a JSON
//! array indented like docker's, or through a Go template one line per container.

use anyhow::Context;

use super::container_path;
use crate::cli::args::InspectArgs;
use crate::cli::client::Client;
use crate::cli::error_line;
use crate::cli::format::indent_json;
use crate::cli::template::Format;

/// Prints each container; the exit code is 1 if any could not be inspected.
pub fn execute(client: &Client, args: &InspectArgs) -> anyhow::Result<i32> {
    let format = args
        .format
        .as_deref()
        .map(Format::parse)
        .transpose()
        .context("parse the format")?;
    let mut failed = false;
    let mut raw = Vec::new();
    for name in &args.names {
        match client.get_raw(&container_path(name, "/json")) {
            Ok(body) => raw.push(body),
            Err(error) => {
                eprintln!("{}", error_line(&error.into()));
                failed = true;
            }
        }
    }
    match format {
        Some(format) => {
            for body in &raw {
                let value: serde_json::Value =
                    serde_json::from_slice(body).context("decode the inspect answer")?;
                println!("{}", format.render(&value).context("execute the format")?);
            }
        }
        None => println!("{}", json_array(&raw)),
    }
    Ok(i32::from(failed))
}

/// The raw JSON documents as one array, indented with four spaces.
fn json_array(raw: &[hyper::body::Bytes]) -> String {
    let items: Vec<String> = raw
        .iter()
        .map(|body| String::from_utf8_lossy(body).into_owned())
        .collect();
    indent_json(&format!("[{}]", items.join(",")), "    ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Bytes;

    #[test]
    fn arrays_of_documents() {
        assert_eq!(json_array(&[]), "[]");
        let raw = [
            Bytes::from_static(b"{\"Id\":\"a\"}\n"),
            Bytes::from_static(b"{\"Id\":\"b\"}"),
        ];
        assert_eq!(
            json_array(&raw),
            "[\n    {\n        \"Id\": \"a\"\n    },\n    {\n        \"Id\": \"b\"\n    }\n]"
        );
    }
}
