//! `moor logs`: `GET /containers/{id}/logs?stdout=1&stderr=1&follow=&tail=&timestamps=&since=
//! &until=`, demultiplexed to our stdout and stderr. `--since`/`--until` durations (`10m`) are
//! resolved with this machine's clock, as docker does.

use std::time::SystemTime;

use std::io::Write;

use anyhow::Context;

use super::container_path;
use crate::cli::args::LogsArgs;
use crate::cli::client::{encode, BodyStream, Client};
use crate::cli::demux::copy_stream;
use crate::logs::when;

/// Prints the container's logs.
pub fn execute(client: &Client, args: &LogsArgs) -> anyhow::Result<i32> {
    let mut query = String::from("?stdout=1&stderr=1");
    if args.follow {
        query.push_str("&follow=1");
    }
    if let Some(tail) = &args.tail {
        query.push_str(&format!("&tail={}", encode(tail)));
    }
    if args.timestamps {
        query.push_str("&timestamps=1");
    }
    for (name, value) in [("since", &args.since), ("until", &args.until)] {
        if let Some(value) = value {
            let at = when::to_api(value, SystemTime::now())
                .with_context(|| format!("invalid value for --{name}"))?;
            query.push_str(&format!("&{name}={}", encode(&at)));
        }
    }
    let path = container_path(&args.name, &format!("/logs{query}"));
    copy_output(client.get_stream(&path)?)?;
    Ok(0)
}

/// Opens a container's output, followed until it stops (what `run` and `start -a`
/// show while attach is not there). Opened before the start, so nothing is missed even
/// when a `--rm` container ends and is removed at once.
pub fn open_output<'c>(client: &'c Client, name: &str) -> anyhow::Result<BodyStream<'c>> {
    Ok(client.get_stream(&container_path(name, "/logs?follow=1&stdout=1&stderr=1"))?)
}

/// Copies an opened output stream to our stdout and stderr (to stdout as it is when the
/// daemon sends a raw stream: a Tty container's).
pub fn copy_output(mut stream: BodyStream<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if stream.raw {
        while let Some(chunk) = stream.next_chunk().context("read the container's output")? {
            match out.write_all(&chunk).and_then(|()| out.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                other => other.context("write the container's output")?,
            }
        }
        return Ok(());
    }
    let mut err = std::io::stderr().lock();
    copy_stream(&mut stream, &mut out, &mut err).context("copy the container's output")?;
    Ok(())
}
