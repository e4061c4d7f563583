//! Signal names as Docker accepts them: `SIGTERM`, `TERM`, `term` or `15`.

use nix::sys::signal::Signal;

/// Parses a signal name or number; `None` if it is not one.
pub fn parse_signal(s: &str) -> Option<i32> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).ok().map(|sig| sig as i32);
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().ok().map(|sig| sig as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_docker_forms() {
        assert_eq!(parse_signal("SIGTERM"), Some(15));
        assert_eq!(parse_signal("TERM"), Some(15));
        assert_eq!(parse_signal("kill"), Some(9));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("SIGHUP"), Some(1));
    }

    #[test]
    fn refuses_non_signals() {
        assert_eq!(parse_signal("SIGNOPE"), None);
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("999"), None);
        assert_eq!(parse_signal(""), None);
    }
}
