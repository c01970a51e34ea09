//! Small drawing helpers the dashboard's views share (`ui` and `detail`).

use ratatui::style::{Color, Modifier, Style};

use super::state::State;

pub(super) fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

/// A latency in milliseconds, in seconds from ten seconds on (the column stays narrow).
pub(super) fn latency(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.0}s", ms / 1000.0)
    } else {
        format!("{ms:.0}")
    }
}

/// `color`, unless colours are off.
pub(super) fn fg(state: &State, color: Color) -> Style {
    if state.no_color {
        Style::default()
    } else {
        Style::default().fg(color)
    }
}

pub(super) fn error_style(state: &State) -> Style {
    fg(state, Color::Red).add_modifier(Modifier::BOLD)
}

/// `text` in at most `width` characters: a long one keeps its start and its end with `…`
/// between, so names that differ only at the end (a model's version) stay apart.
pub(super) fn elide_middle(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        return text.to_owned();
    }
    if width < 3 {
        return text.chars().take(width).collect();
    }
    let tail = (width - 1) / 2;
    let head = width - 1 - tail;
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(count - tail).collect();
    format!("{start}…{end}")
}

/// The first 8 characters of an id.
pub(super) fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Local `HH:MM:SS`.
pub(super) fn clock(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::elide_middle;

    #[test]
    fn eliding_keeps_both_ends() {
        assert_eq!(elide_middle("gpt-4o", 10), "gpt-4o");
        assert_eq!(
            elide_middle("claude-sonnet-4-5-20250929", 15),
            "claude-…0250929"
        );
        assert_eq!(
            elide_middle("claude-sonnet-4-5-20250929", 15)
                .chars()
                .count(),
            15
        );
        assert_eq!(elide_middle("abcdef", 2), "ab");
    }
}
