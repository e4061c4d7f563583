//! An import's `changes` (`docker import -c LINE`, `POST /images/create?changes=LINE`):
//! Dockerfile lines applied to the image's config as moby's `BuildFromConfig` applies them.
//! The instructions Docker accepts are accepted (CMD, ENTRYPOINT, ENV, LABEL, USER, WORKDIR
//! and STOPSIGNAL set the config, HEALTHCHECK its `Healthcheck` (`image::healthcheck`);
//! EXPOSE, ONBUILD and VOLUME are checked and ignored); the others are refused with
//! Docker's text. Every error also names the change line it is about.
//!
//! As in Docker: the changes are joined with newlines and read as a Dockerfile (comments,
//! `\` continuations), ENV, LABEL, USER, WORKDIR and STOPSIGNAL words lose their quotes and
//! expand `$VAR` / `${VAR}` from the environment set so far, a shell-form CMD or ENTRYPOINT
//! becomes `["/bin/sh", "-c", LINE]`, and an ENTRYPOINT drops the image's CMD unless a CMD
//! came in the same changes.

use moor_state::image::ImageConfig;
use thiserror::Error;

use crate::host::signal::parse_signal;

/// The instructions Docker's import and commit accept (moby `validCommitCommands`).
const VALID: &[&str] = &[
    "cmd",
    "entrypoint",
    "env",
    "expose",
    "healthcheck",
    "label",
    "onbuild",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// Why a change line is refused: Docker's text, then the line.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChangeError {
    /// An instruction an import cannot apply (RUN, COPY, FROM...).
    #[error("{instruction} is not a valid change command (change {line:?})")]
    NotValid {
        /// The instruction as Docker names it (lower case).
        instruction: String,
        /// The change line.
        line: String,
    },
    /// A HEALTHCHECK line Docker's parser refuses.
    #[error("{reason} (change {line:?})")]
    Healthcheck {
        /// Docker's text for it.
        reason: crate::image::healthcheck::HealthcheckLineError,
        /// The change line.
        line: String,
    },
    /// ENV, LABEL, EXPOSE, VOLUME, HEALTHCHECK or ONBUILD without arguments.
    #[error("{command} requires at least one argument (change {line:?})")]
    AtLeastOneArgument {
        /// The instruction.
        command: &'static str,
        /// The change line.
        line: String,
    },
    /// USER, WORKDIR or STOPSIGNAL without an argument.
    #[error("{command} requires exactly one argument (change {line:?})")]
    ExactlyOneArgument {
        /// The instruction.
        command: &'static str,
        /// The change line.
        line: String,
    },
    /// `ENV NAME` without a value.
    #[error("{command} must have two arguments (change {line:?})")]
    TwoArguments {
        /// The instruction.
        command: &'static str,
        /// The change line.
        line: String,
    },
    /// `ENV A=1 B`: a word of the `name=value` form without `=`.
    #[error("Syntax error - can't find = in {word:?}. Must be of the form: name=value (change {line:?})")]
    NoEquals {
        /// The word.
        word: String,
        /// The change line.
        line: String,
    },
    /// `ENV =1`.
    #[error("{command} names can not be blank (change {line:?})")]
    BlankName {
        /// The instruction.
        command: &'static str,
        /// The change line.
        line: String,
    },
    /// `CMD ["sh", 1]`.
    #[error(
        "when using JSON array syntax, arrays must be comprised of strings only (change {line:?})"
    )]
    NotStringArray {
        /// The change line.
        line: String,
    },
    /// `STOPSIGNAL NOPE`.
    #[error("Invalid signal: {signal} (change {line:?})")]
    InvalidSignal {
        /// The signal as given.
        signal: String,
        /// The change line.
        line: String,
    },
}

/// `config` with `changes` applied, or the first line refused.
pub fn apply(config: &ImageConfig, changes: &[String]) -> Result<ImageConfig, ChangeError> {
    let lines = logical_lines(changes);
    for line in &lines {
        let instruction = split(line).0.to_ascii_lowercase();
        if !VALID.contains(&instruction.as_str()) {
            return Err(ChangeError::NotValid {
                instruction,
                line: line.clone(),
            });
        }
    }
    let mut out = config.clone();
    let mut cmd_set = false;
    for line in &lines {
        apply_line(&mut out, &mut cmd_set, line)?;
    }
    Ok(out)
}

/// The changes as Dockerfile lines: joined, comments and blank lines dropped, `\`
/// continuations joined.
fn logical_lines(changes: &[String]) -> Vec<String> {
    let text = changes.join("\n");
    let mut out = Vec::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if line.starts_with('#') {
            continue;
        }
        if let Some(head) = line.trim_end().strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(line);
        let whole = std::mem::take(&mut pending);
        if !whole.trim().is_empty() {
            out.push(whole.trim().to_string());
        }
    }
    if !pending.trim().is_empty() {
        out.push(pending.trim().to_string());
    }
    out
}

/// Instruction and arguments of a line.
fn split(line: &str) -> (&str, &str) {
    match line.split_once(char::is_whitespace) {
        Some((instruction, rest)) => (instruction, rest.trim()),
        None => (line, ""),
    }
}

fn apply_line(cfg: &mut ImageConfig, cmd_set: &mut bool, line: &str) -> Result<(), ChangeError> {
    let (instruction, rest) = split(line);
    let instruction = instruction.to_ascii_lowercase();
    let one = |command| {
        if rest.is_empty() {
            return Err(ChangeError::ExactlyOneArgument {
                command,
                line: line.to_string(),
            });
        }
        Ok(process_word(rest, &cfg.env))
    };
    match instruction.as_str() {
        "env" => {
            for (key, value) in name_values(rest, "ENV", line, &cfg.env)? {
                let entry = format!("{key}={value}");
                let same = |e: &String| e.split('=').next() == Some(key.as_str());
                match cfg.env.iter_mut().find(|e| same(e)) {
                    Some(old) => *old = entry,
                    None => cfg.env.push(entry),
                }
            }
        }
        "label" => {
            let pairs = name_values(rest, "LABEL", line, &cfg.env)?;
            cfg.labels.extend(pairs);
        }
        "cmd" => {
            let cmd = command_line(rest, line)?;
            *cmd_set |= !cmd.is_empty();
            cfg.cmd = Some(cmd);
        }
        "entrypoint" => {
            cfg.entrypoint = Some(command_line(rest, line)?);
            if !*cmd_set {
                cfg.cmd = None;
            }
        }
        "workdir" => {
            let dir = one("WORKDIR")?;
            cfg.working_dir = workdir(&cfg.working_dir, &dir);
        }
        "user" => cfg.user = one("USER")?,
        "stopsignal" => {
            let signal = one("STOPSIGNAL")?;
            if parse_signal(&signal).is_none() {
                return Err(ChangeError::InvalidSignal {
                    signal,
                    line: line.to_string(),
                });
            }
            cfg.stop_signal = signal;
        }
        "healthcheck" if !rest.is_empty() => {
            let parsed = crate::image::healthcheck::parse(rest);
            let reason = |reason| ChangeError::Healthcheck {
                reason,
                line: line.to_string(),
            };
            let config = parsed.map_err(reason)?;
            // A struct of strings and numbers always serializes.
            cfg.healthcheck = serde_json::to_value(config).ok();
        }
        _ if rest.is_empty() => {
            return Err(ChangeError::AtLeastOneArgument {
                command: upper(&instruction),
                line: line.to_string(),
            })
        }
        _ => tracing::warn!(change = %line, "change accepted and ignored: moor has no use for it"),
    }
    Ok(())
}

/// The upper-case name of an ignored instruction, for its error.
fn upper(instruction: &str) -> &'static str {
    match instruction {
        "expose" => "EXPOSE",
        "volume" => "VOLUME",
        "healthcheck" => "HEALTHCHECK",
        _ => "ONBUILD",
    }
}

/// ENV and LABEL arguments: `NAME VALUE...` or `NAME=VALUE ...`, expanded.
fn name_values(
    rest: &str,
    command: &'static str,
    line: &str,
    env: &[String],
) -> Result<Vec<(String, String)>, ChangeError> {
    let line = || line.to_string();
    let ws = words(rest);
    let Some(first) = ws.first() else {
        return Err(ChangeError::AtLeastOneArgument {
            command,
            line: line(),
        });
    };
    let pairs: Vec<(String, String)> = if !first.contains('=') {
        match rest.split_once(char::is_whitespace) {
            Some((key, value)) => vec![(key.to_string(), value.trim_start().to_string())],
            None => {
                return Err(ChangeError::TwoArguments {
                    command,
                    line: line(),
                })
            }
        }
    } else {
        let mut pairs = Vec::new();
        for word in &ws {
            let Some((key, value)) = word.split_once('=') else {
                return Err(ChangeError::NoEquals {
                    word: word.clone(),
                    line: line(),
                });
            };
            pairs.push((key.to_string(), value.to_string()));
        }
        pairs
    };
    if pairs.iter().any(|(key, _)| key.is_empty()) {
        return Err(ChangeError::BlankName {
            command,
            line: line(),
        });
    }
    Ok(pairs
        .into_iter()
        .map(|(k, v)| (process_word(&k, env), process_word(&v, env)))
        .collect())
}

/// CMD and ENTRYPOINT: a JSON array of strings, or else a shell line.
fn command_line(rest: &str, line: &str) -> Result<Vec<String>, ChangeError> {
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    if rest.starts_with('[') {
        if let Ok(items) = serde_json::from_str::<Vec<serde_json::Value>>(rest) {
            return items
                .into_iter()
                .map(|item| match item {
                    serde_json::Value::String(s) => Ok(s),
                    _ => Err(ChangeError::NotStringArray {
                        line: line.to_string(),
                    }),
                })
                .collect();
        }
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
}

/// moby's `normalizeWorkdir`: a relative WORKDIR goes under the current one.
fn workdir(current: &str, requested: &str) -> String {
    if requested.starts_with('/') {
        return requested.to_string();
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in current.split('/').chain(requested.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The words of a line, quotes and escapes kept (buildkit's `parseWords`).
fn words(rest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            } else if c == '\\' && q != '\'' {
                if let Some(next) = chars.next() {
                    word.push(c);
                    word.push(next);
                }
                continue;
            }
            word.push(c);
            continue;
        }
        if c.is_whitespace() {
            if blank_ok || !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            blank_ok = false;
            continue;
        }
        if c == '\'' || c == '"' {
            quote = Some(c);
            blank_ok = true;
        }
        if c == '\\' {
            if let Some(next) = chars.next() {
                word.push(c);
                word.push(next);
            }
            continue;
        }
        word.push(c);
    }
    if blank_ok || !word.is_empty() {
        out.push(word);
    }
    out
}

/// One word as the shell reads it: quotes removed, escapes resolved, variables expanded.
fn process_word(word: &str, env: &[String]) -> String {
    let mut out = String::new();
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => out.extend(chars.by_ref().take_while(|&c| c != '\'')),
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.peek() {
                            Some(&n @ ('"' | '$' | '\\')) => {
                                out.push(n);
                                chars.next();
                            }
                            Some(_) => out.push('\\'),
                            None => {}
                        },
                        '$' => out.push_str(&variable(&mut chars, env)),
                        c => out.push(c),
                    }
                }
            }
            '\\' => out.extend(chars.next()),
            '$' => out.push_str(&variable(&mut chars, env)),
            c => out.push(c),
        }
    }
    out
}

/// What follows a `$`: `NAME`, `{NAME}`, `{NAME:-word}`, `{NAME:+word}` (and without the
/// colon); anything else is a literal `$`.
fn variable(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, env: &[String]) -> String {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let lookup = |name: &str| {
        env.iter()
            .find_map(|e| e.strip_prefix(name)?.strip_prefix('='))
            .map(String::from)
    };
    if chars.peek() == Some(&'{') {
        chars.next();
        let body: String = chars.by_ref().take_while(|&c| c != '}').collect();
        let name_len = body.find(|c: char| !is_name(c)).unwrap_or(body.len());
        let (name, modifier) = body.split_at(name_len);
        let value = lookup(name);
        let word = |w: &str| process_word(w, env);
        return match modifier {
            "" => value.unwrap_or_default(),
            m if m.starts_with(":-") => value
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| word(&m[2..])),
            m if m.starts_with(":+") => match value.filter(|v| !v.is_empty()) {
                Some(_) => word(&m[2..]),
                None => String::new(),
            },
            m if m.starts_with('-') => value.unwrap_or_else(|| word(&m[1..])),
            m if m.starts_with('+') => value.map(|_| word(&m[1..])).unwrap_or_default(),
            _ => value.unwrap_or_default(),
        };
    }
    let mut name = String::new();
    while let Some(&c) = chars.peek().filter(|c| is_name(**c)) {
        name.push(c);
        chars.next();
    }
    if name.is_empty() {
        return "$".into();
    }
    lookup(&name).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(changes: &[&str]) -> Result<ImageConfig, ChangeError> {
        let changes: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply(&ImageConfig::default(), &changes)
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn env_in_every_form() {
        let cfg = run(&[
            "ENV A=1",
            "env B 2 and more",
            r#"ENV C="x y" D='$A' E=$A F=${A}0 G="\"q\"""#,
            "ENV A=3 H=$A",
            r"ENV I=a\ b J=${NOPE:-dflt} K=${A:+set}",
        ])
        .expect("apply");
        assert_eq!(
            cfg.env,
            strings(&[
                "A=3",
                "B=2 and more",
                "C=x y",
                "D=$A",
                "E=1",
                "F=10",
                "G=\"q\"",
                "H=1",
                "I=a b",
                "J=dflt",
                "K=set",
            ])
        );
    }

    #[test]
    fn cmd_and_entrypoint_forms() {
        let cfg = run(&[r#"CMD ["/bin/sh","-c","echo $A"]"#]).expect("json");
        assert_eq!(cfg.cmd, Some(strings(&["/bin/sh", "-c", "echo $A"])));
        let cfg = run(&["cmd echo  $A b"]).expect("shell");
        assert_eq!(cfg.cmd, Some(strings(&["/bin/sh", "-c", "echo  $A b"])));
        // Not valid JSON: the shell form, as Docker does.
        let cfg = run(&[r#"CMD ["a","#]).expect("broken json");
        assert_eq!(cfg.cmd, Some(strings(&["/bin/sh", "-c", r#"["a","#])));
        let cfg = run(&["ENTRYPOINT top -b"]).expect("entrypoint");
        assert_eq!(cfg.entrypoint, Some(strings(&["/bin/sh", "-c", "top -b"])));
        assert_eq!(cfg.cmd, None);
        // An ENTRYPOINT drops the image's CMD unless the changes set one.
        let base = ImageConfig {
            cmd: Some(strings(&["old"])),
            ..ImageConfig::default()
        };
        let cfg = apply(&base, &strings(&[r#"ENTRYPOINT ["e"]"#])).expect("apply");
        assert_eq!(cfg.cmd, None);
        let cfg = apply(&base, &strings(&[r#"CMD ["c"]"#, r#"ENTRYPOINT ["e"]"#]));
        assert_eq!(cfg.expect("apply").cmd, Some(strings(&["c"])));
        assert_eq!(run(&["CMD []"]).expect("empty").cmd, Some(Vec::new()));
    }

    #[test]
    fn workdir_user_labels_stopsignal() {
        let cfg = run(&[
            "ENV D=/srv",
            "WORKDIR $D",
            "WORKDIR app/../web",
            "USER daemon:daemon",
            r#"LABEL a=1 "b c"="d e""#,
            "LABEL old style value",
            "STOPSIGNAL SIGINT",
        ])
        .expect("apply");
        assert_eq!(cfg.working_dir, "/srv/web");
        assert_eq!(cfg.user, "daemon:daemon");
        assert_eq!(cfg.labels.get("a").map(String::as_str), Some("1"));
        assert_eq!(cfg.labels.get("b c").map(String::as_str), Some("d e"));
        assert_eq!(
            cfg.labels.get("old").map(String::as_str),
            Some("style value")
        );
        assert_eq!(cfg.stop_signal, "SIGINT");
        assert_eq!(run(&["WORKDIR rel"]).expect("rel").working_dir, "/rel");
    }

    #[test]
    fn dockerfile_lines_comments_continuations_and_ignored() {
        let cfg = run(&["# note\nENV A=1 \\\n  B=2\n\n", "EXPOSE 80", "VOLUME /data"]);
        assert_eq!(cfg.expect("apply").env, strings(&["A=1", "B=2"]));
        let cfg = run(&[
            "HEALTHCHECK --interval=2s CMD true",
            "HEALTHCHECK --retries=1 \\\n CMD x",
        ]);
        assert_eq!(
            cfg.expect("apply").healthcheck,
            Some(serde_json::json!({"Test": ["CMD-SHELL", "x"], "Retries": 1})),
            "the last HEALTHCHECK wins, as a whole"
        );
        let err = run(&["HEALTHCHECK CMD"]).expect_err("no command");
        assert_eq!(
            err.to_string(),
            r#"Missing command after HEALTHCHECK CMD (change "HEALTHCHECK CMD")"#
        );
    }

    #[test]
    fn refusals_use_dockers_texts_and_name_the_line() {
        let err = |c: &str| run(&["ENV OK=1", c]).expect_err(c).to_string();
        assert_eq!(
            err("RUN echo hi"),
            r#"run is not a valid change command (change "RUN echo hi")"#
        );
        assert_eq!(
            err("COPY a b"),
            r#"copy is not a valid change command (change "COPY a b")"#
        );
        assert!(err("ENV").starts_with("ENV requires at least one argument"));
        assert!(err("ENV A").starts_with("ENV must have two arguments"));
        assert!(err("LABEL =x").starts_with("LABEL names can not be blank"));
        assert!(err("ENV A=1 B")
            .starts_with(r#"Syntax error - can't find = in "B". Must be of the form: name=value"#));
        assert!(err("USER").starts_with("USER requires exactly one argument"));
        assert!(err("WORKDIR").starts_with("WORKDIR requires exactly one argument"));
        assert!(err("EXPOSE").starts_with("EXPOSE requires at least one argument"));
        assert!(err(r#"CMD ["a", 1]"#)
            .starts_with("when using JSON array syntax, arrays must be comprised of strings only"));
        assert!(err("STOPSIGNAL NOPE").starts_with("Invalid signal: NOPE"));
    }

    #[test]
    fn no_changes_no_config() {
        assert!(run(&[]).expect("none").is_empty());
        assert!(run(&["", "# only a comment"]).expect("blank").is_empty());
    }
}
