//! `docker exec`: `POST /containers/{id}/exec`, `POST /exec/{id}/start`, `GET /exec/{id}/json`.
//!
//! A start arriving as the first request of a connection (the docker CLI always dials a new
//! one to hijack) is served raw by [`serve_start`]: `101 UPGRADED` with `Upgrade: tcp`, else a
//! plain `200` whose body is the multiplexed stream; stdin is forwarded on the same
//! connection. A start on a reused connection (a detached one, usually) reaches the actix
//! route, which streams the output only. User names are resolved in the container's image
//! for runc; the process runtime takes no `User`.

use actix_rt::net::UnixStream;
use actix_web::{web, HttpResponse};
use tokio::io::AsyncWriteExt;

use crate::api::detach::{self, Escape};
use crate::api::error::ApiError;
use crate::api::exec_types::*;
use crate::api::guard::unwinding;
use crate::api::hijack::{self, refuse};
use crate::api::peek::AttachHead;
use crate::api::routes::{resolve, terminal_size, IdPath, Query};
use crate::api::server::ApiState;
use crate::daemon::error::ContainerError;
use crate::daemon::exec::{self, ExecRequest, ExecRun, ExecStatus};
use crate::daemon::messages::{CreateExec, StartExec};

type Data = web::Data<ApiState>;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/containers/{id}/exec", web::post().to(create))
        .route("/exec/{id}/start", web::post().to(start))
        .route("/exec/{id}/resize", web::post().to(resize))
        .route("/exec/{id}/json", web::get().to(inspect));
}

/// A JSON body, or the defaults when it is empty.
fn body<T: serde::de::DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    Ok(serde_json::from_slice(bytes)?)
}

async fn create(
    state: Data,
    path: web::Path<IdPath>,
    bytes: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req: ExecCreateRequest = body(&bytes)?;
    let argv = req.cmd.clone().unwrap_or_default();
    if argv.is_empty() {
        return Err(ApiError::NoExecCommand);
    }
    // Never accepted and ignored: what moor cannot do for an exec is refused by name.
    if req.privileged {
        return Err(ApiError::Unsupported {
            option: "Privileged (exec)",
        });
    }
    let detach_keys = req.detach_keys.unwrap_or_default();
    detach::parse(Some(&detach_keys))?;
    // Detach keys act on a terminal's input only (Docker's): without one they would be
    // accepted and ignored.
    if !req.tty && !detach_keys.is_empty() {
        return Err(ApiError::Unsupported {
            option: "DetachKeys (exec without a TTY)",
        });
    }
    let (_, addr) = resolve(&state, &path.id).await?;
    let request = ExecRequest {
        argv,
        env: req.env.unwrap_or_default(),
        user: req.user.unwrap_or_default(),
        working_dir: req.working_dir.unwrap_or_default(),
        attach_stdin: req.attach_stdin,
        attach_stdout: req.attach_stdout,
        attach_stderr: req.attach_stderr,
        tty: req.tty,
        console_size: req.console_size.unwrap_or_default(),
        detach_keys,
    };
    let exec_id = addr
        .send(CreateExec(request))
        .await
        .map_err(ContainerError::from)??;
    Ok(HttpResponse::Created().json(ExecCreateResponse { id: exec_id }))
}

async fn inspect(state: Data, path: web::Path<IdPath>) -> Result<HttpResponse, ApiError> {
    let entry = state
        .shared
        .execs
        .get(&path.id)
        .ok_or_else(|| exec::ExecError::NotFound(path.id.clone()))?;
    let (running, exit_code, pid) = match entry.status {
        ExecStatus::Created => (false, None, 0),
        ExecStatus::Running { pid } => (true, None, pid),
        ExecStatus::Exited { pid, code } => (false, Some(code), pid),
    };
    let c = entry.config;
    let (entrypoint, arguments) = c.argv.split_first().map_or_else(
        || (String::new(), Vec::new()),
        |(f, r)| (f.clone(), r.to_vec()),
    );
    Ok(HttpResponse::Ok().json(ExecInspect {
        id: path.id.clone(),
        container_id: c.container_id,
        running,
        exit_code,
        pid,
        open_stdin: c.attach_stdin,
        open_stdout: c.attach_stdout,
        open_stderr: c.attach_stderr,
        can_remove: false,
        detach_keys: c.detach_keys,
        process_config: ProcessConfig {
            entrypoint,
            arguments,
            tty: c.tty,
            privileged: false,
            user: c.user,
        },
    }))
}

/// Starts the instance through its container's actor, which checks the container's state
/// and spawns the process in one step.
async fn begin(state: &Data, exec_id: &str, req: &ExecStartRequest) -> Result<ExecRun, ApiError> {
    let entry = state
        .shared
        .execs
        .get(exec_id)
        .ok_or_else(|| exec::ExecError::NotFound(exec_id.into()))?;
    let (_, addr) = resolve(state, &entry.config.container_id).await?;
    let start = StartExec {
        exec_id: exec_id.into(),
        attached: !req.detach,
    };
    match addr.send(start).await.map_err(ContainerError::from)? {
        Ok(run) => {
            if let Some([h, w]) = req.console_size.filter(|s| entry.config.tty && s[0] > 0) {
                state.shared.execs.resize(exec_id, h, w)?;
            }
            Ok(run)
        }
        // The exec's own errors stay apart: a spawn failure is reported in the stream.
        Err(ContainerError::Exec(e)) => Err(ApiError::Exec(e)),
        Err(e) => Err(e.into()),
    }
}

/// The actix route (a start on a reused connection): detached, or output only.
async fn start(
    state: Data,
    path: web::Path<IdPath>,
    bytes: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req: ExecStartRequest = body(&bytes)?;
    let run = begin(&state, &path.id, &req).await?;
    drop(run.stdin);
    let Some(output) = run.output else {
        return Ok(HttpResponse::Ok().finish());
    };
    let frames = futures_util::stream::unfold(output, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    let tty = state
        .shared
        .execs
        .get(&path.id)
        .is_some_and(|e| e.config.tty);
    Ok(HttpResponse::Ok()
        .content_type(stream_type(tty))
        .streaming(frames))
}

/// `POST /exec/{id}/resize?h=&w=`: the size of a Tty exec's terminal.
async fn resize(state: Data, path: web::Path<IdPath>, q: Query) -> Result<HttpResponse, ApiError> {
    let (h, w) = terminal_size(&q)?;
    state.shared.execs.resize(&path.id, h, w)?;
    Ok(HttpResponse::Ok().finish())
}

/// Docker's content type of an exec's output: raw for a Tty exec.
fn stream_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// Serves a start that opened its connection, to its end (see the module header).
pub async fn serve_start(mut io: UnixStream, head: AttachHead, state: Data) {
    let req = match hijack::consume(&mut io, &head)
        .await
        .and_then(|bytes| body::<ExecStartRequest>(&bytes))
    {
        Ok(req) => req,
        Err(e) => return refuse(io, &e).await,
    };
    let started = unwinding("exec start", begin(&state, &head.id, &req)).await;
    // A command that cannot be started is reported in the stream, as Docker does, and its
    // exit code (126/127) is recorded for the inspect that follows.
    let spawn_failed = matches!(&started, Err(ApiError::Exec(exec::ExecError::Spawn { .. })));
    let (run, failure) = match started {
        Ok(run) => (Some(run), None),
        Err(e) if spawn_failed && !req.detach => (None, Some(e)),
        Err(e) => return refuse(io, &e).await,
    };
    let entry = state.shared.execs.get(&head.id);
    let tty = entry.as_ref().is_some_and(|e| e.config.tty);
    let answer = match (req.detach, head.upgrade, tty) {
        (true, _, _) => "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
        (false, true, false) => hijack::UPGRADED.to_string(),
        (false, true, true) => hijack::UPGRADED_RAW.to_string(),
        (false, false, _) => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nConnection: close\r\n\r\n",
            stream_type(tty)
        ),
    };
    if io.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    let Some(run) = run else {
        if let Some(e) = failure {
            let _ = io
                .write_all(&exec::frame(2, format!("{}\n", e.message()).as_bytes()))
                .await;
        }
        let _ = io.shutdown().await;
        return;
    };
    let Some(output) = run.output else {
        let _ = io.shutdown().await;
        return;
    };
    let (rd, wr) = io.into_split();
    let Some(stdin) = run.stdin else {
        return hijack::send_output(wr, output).await;
    };
    // Without a terminal, the client's half-close is the process's stdin EOF (the stdin
    // dropped). With one, the detach keys and the client's EOF end the session only.
    let escape = entry
        .filter(|e| e.config.tty)
        .and_then(|e| detach::parse(Some(&e.config.detach_keys)).ok())
        .map(Escape::new);
    let mut feeder = actix_rt::spawn(hijack::copy_input(rd, stdin, escape));
    if tty {
        tokio::select! {
            () = hijack::send_output(wr, output) => feeder.abort(),
            _ = &mut feeder => {}
        }
    } else {
        hijack::send_output(wr, output).await;
        feeder.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_bodies_are_defaults() {
        let r: ExecStartRequest = body(b"").unwrap();
        assert!(!r.detach);
        let r: ExecStartRequest =
            body(br#"{"Detach":true,"Tty":false,"ConsoleSize":null}"#).unwrap();
        assert!(r.detach);
        assert!(body::<ExecStartRequest>(b"{").is_err());
    }
}
