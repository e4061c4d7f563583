//! Output formatting shared by commands: docker's human durations, its tables, Go's
//! `strconv.Quote` and `json.Indent`.

pub use crate::humanize::human_duration;

/// Docker's `units.HumanSizeWithPrecision(size, 3)`: decimal units.
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    let text = format!("{value:.3}");
    let digits = if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        text[..text.len().min(4)].to_string()
    };
    let digits = if digits.contains('.') {
        digits
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        digits
    };
    format!("{digits}{}", units[unit])
}

/// Docker's `units.BytesSize`: binary units, Go's `%.4g` (four significant digits).
pub fn binary_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    let decimals = match value {
        v if v >= 1000.0 => 0,
        v if v >= 100.0 => 1,
        v if v >= 10.0 => 2,
        _ => 3,
    };
    let digits = format!("{value:.decimals$}");
    let digits = match digits.contains('.') {
        true => digits.trim_end_matches('0').trim_end_matches('.'),
        false => &digits,
    };
    format!("{digits}{}", units[unit])
}

/// Docker's `Ellipsis`: at most `max` characters, the last one `…` when cut.
pub fn ellipsis(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Go's `strconv.Quote` for the characters a command line holds.
pub fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A table as docker's tabwriter lays it out (minimum width 10, padding 3); the last
/// column is not padded.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            let widest = rows
                .iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0);
            (widest + 3).max(10)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if column + 1 < row.len() {
                let pad = widths[column] - cell.chars().count();
                line.extend(std::iter::repeat(' ').take(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Go's `json.Indent` with no prefix: re-indents valid JSON text keeping its key order;
/// empty arrays and objects stay `[]` and `{}`.
pub fn indent_json(json: &str, indent: &str) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut need_newline = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        if need_newline && c != ']' && c != '}' {
            need_newline = false;
            depth += 1;
            newline(&mut out, indent, depth);
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                need_newline = true;
            }
            ',' => {
                out.push(c);
                newline(&mut out, indent, depth);
            }
            ':' => out.push_str(": "),
            ']' | '}' => {
                if need_newline {
                    need_newline = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, indent, depth);
                }
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A newline and `depth` indents.
fn newline(out: &mut String, indent: &str, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str(indent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipsis_and_quote() {
        assert_eq!(go_quote(&ellipsis("sleep 1000", 20)), "\"sleep 1000\"");
        let long = "sh -c 'while true; do sleep 1; done'";
        assert_eq!(ellipsis(long, 20), "sh -c 'while true; …");
        assert_eq!(ellipsis(long, 20).chars().count(), 20);
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    }

    #[test]
    fn binary_sizes_have_four_significant_digits() {
        assert_eq!(binary_size(64 << 20), "64MiB");
        assert_eq!(binary_size(1536), "1.5KiB");
        assert_eq!(binary_size(12_939_428), "12.34MiB");
        assert_eq!(binary_size(512), "512B");
        assert_eq!(binary_size(7_960_000_000), "7.413GiB");
    }

    #[test]
    fn table_pads_like_tabwriter() {
        let rows = vec![
            vec![
                "CONTAINER ID".to_string(),
                "IMAGE".to_string(),
                "NAMES".to_string(),
            ],
            vec![
                "0123456789ab".to_string(),
                "host".to_string(),
                "web".to_string(),
            ],
        ];
        assert_eq!(
            table(&rows),
            "CONTAINER ID   IMAGE     NAMES\n0123456789ab   host      web\n"
        );
    }

    #[test]
    fn indent_keeps_order_and_empty_containers() {
        let json = r#"[{"Id":"x","Args":[],"State":{"Pid":12,"Ok":true},"L":{},"S":"a,{[\"]"}]"#;
        let expected = "[\n    {\n        \"Id\": \"x\",\n        \"Args\": [],\n        \"State\": {\n            \"Pid\": 12,\n            \"Ok\": true\n        },\n        \"L\": {},\n        \"S\": \"a,{[\\\"]\"\n    }\n]";
        assert_eq!(indent_json(json, "    "), expected);
    }
}
