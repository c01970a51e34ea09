//! Finds the line of a key path (`providers[1].base_url`) in block-style YAML text, so that errors
//! found after parsing can still name the line. Flow style and anchors fall back to no line.

/// One step of a key path.
#[derive(Debug, Clone, PartialEq)]
pub enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Parses `a.b[2].c` into steps.
pub fn parse_path(path: &str) -> Vec<Step<'_>> {
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            steps.push(Step::Key(key));
        }
        while let Some(close) = rest.find(']') {
            if let Ok(n) = rest[1..close].parse() {
                steps.push(Step::Index(n));
            }
            rest = &rest[close + 1..];
        }
    }
    steps
}

/// Returns the 1-based line where `path` is written in `text`, or the deepest ancestor found.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = None;
    // The region [start, end) of lines that belong to the current node, and its indentation floor.
    let (mut start, mut end, mut min_indent) = (0usize, lines.len(), 0usize);
    for step in parse_path(path) {
        let hit = match step {
            Step::Key(key) => find_key(&lines, start, end, min_indent, key),
            Step::Index(n) => find_item(&lines, start, end, min_indent, n),
        };
        let Some((line, indent, child_indent)) = hit else {
            return found.map(|l: usize| l + 1);
        };
        found = Some(line);
        start = if matches!(step, Step::Index(_)) {
            line
        } else {
            line + 1
        };
        end = block_end(
            &lines,
            line + 1,
            end,
            indent,
            matches!(step, Step::Index(_)),
        );
        min_indent = child_indent;
    }
    found.map(|l| l + 1)
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// Finds `key:` at the shallowest indentation at or above `min_indent` within the region. A key
/// on a `- ` item line (`- name: x`) counts at the indentation after the dash.
fn find_key(
    lines: &[&str],
    start: usize,
    end: usize,
    min_indent: usize,
    key: &str,
) -> Option<(usize, usize, usize)> {
    let mut level: Option<usize> = None;
    for (i, line) in lines.iter().enumerate().take(end).skip(start) {
        if is_blank(line) {
            continue;
        }
        let (indent, body) = key_position(line);
        if indent < min_indent {
            break;
        }
        let level = *level.get_or_insert(indent);
        if indent != level {
            continue;
        }
        let body = body.trim_start_matches(['"', '\'']);
        if let Some(after) = body.strip_prefix(key) {
            let after = after.trim_start_matches(['"', '\'']);
            if after.starts_with(':') {
                return Some((i, indent, indent + 1));
            }
        }
    }
    None
}

/// The indentation and text of a line's key, looking past a leading `- `.
fn key_position(line: &str) -> (usize, &str) {
    let indent = indent_of(line);
    let body = &line[indent..];
    match body.strip_prefix("- ") {
        Some(rest) => {
            let extra = rest.len() - rest.trim_start().len();
            (indent + 2 + extra, rest.trim_start())
        }
        None => (indent, body),
    }
}

/// Finds the `n`th `- ` item in the region.
fn find_item(
    lines: &[&str],
    start: usize,
    end: usize,
    min_indent: usize,
    n: usize,
) -> Option<(usize, usize, usize)> {
    let mut seen = 0;
    let mut level: Option<usize> = None;
    for (i, line) in lines.iter().enumerate().take(end).skip(start) {
        if is_blank(line) {
            continue;
        }
        let indent = indent_of(line);
        if indent < min_indent.saturating_sub(1) {
            break;
        }
        let trimmed = &line[indent..];
        if !(trimmed.starts_with("- ") || trimmed == "-") {
            continue;
        }
        let level = *level.get_or_insert(indent);
        if indent != level {
            continue;
        }
        if seen == n {
            return Some((i, indent, indent + 1));
        }
        seen += 1;
    }
    None
}

/// The first line after `from` where the block of a node at `indent` ends. A key's block goes on
/// through `- ` items at its own indentation (YAML allows lists flush with their key); an item's
/// block ends at the next item.
fn block_end(lines: &[&str], from: usize, end: usize, indent: usize, is_item: bool) -> usize {
    for (i, line) in lines.iter().enumerate().take(end).skip(from) {
        if is_blank(line) {
            continue;
        }
        let this = indent_of(line);
        let is_dash = line[this..].starts_with('-');
        if this < indent || (this == indent && (is_item || !is_dash)) {
            return i;
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
# comment
listen: 127.0.0.1:4100
providers:
  - name: openai
    kind: openai
    models: [gpt-4o]
  - name: local
    kind: openai
    base_url: http://localhost:11434/v1
    timeouts:
      idle_ms: 5
budget:
  session_usd: 5
";

    #[test]
    fn finds_lines_of_nested_keys() {
        let cases = [
            ("listen", Some(2)),
            ("providers", Some(3)),
            ("providers[0]", Some(4)),
            ("providers[0].name", Some(4)),
            ("providers[0].kind", Some(5)),
            ("providers[1].name", Some(7)),
            ("providers[1].base_url", Some(9)),
            ("providers[1].timeouts.idle_ms", Some(11)),
            ("budget.session_usd", Some(13)),
            ("budget.missing", Some(12)),
            ("nothing", None),
        ];
        for (path, line) in cases {
            assert_eq!(line_of(YAML, path), line, "{path}");
        }
    }
}
