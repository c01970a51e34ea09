//! Small drawing helpers the dashboard's views share (`ui` and `detail`).

use ratatui::style::{Modifier, Style};

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
