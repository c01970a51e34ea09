//! A rolling window's length in the config (`budget.windows[].every`): `5h`, `90m`, `1h30m`,
//! `7d`, read and printed back. Pure.

/// The shortest and longest window `budget.windows` accepts.
pub const MIN_EVERY_MS: i64 = 60_000;
pub const MAX_EVERY_MS: i64 = 31 * 86_400_000;

/// A window's length as people write it: `5h`, `90m`, `7d`, `1d12h`.
pub fn every_text(every_ms: i64) -> String {
    let minutes = every_ms / 60_000;
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    let mut out = String::new();
    for (n, unit) in [(days, "d"), (hours, "h"), (mins, "m")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if out.is_empty() {
        out = format!("{}s", every_ms / 1000);
    }
    out
}

/// `every` parsed: a whole number with `m`, `h` or `d`, several added up (`1h30m`), or `None`.
pub fn parse_every(text: &str) -> Option<i64> {
    let text = text.trim();
    let (mut total, mut digits) = (0_i64, String::new());
    if text.is_empty() {
        return None;
    }
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            'w' => 7 * 86_400_000,
            _ => return None,
        };
        let n: i64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        digits.clear();
    }
    digits.is_empty().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reads_and_prints() {
        assert_eq!(parse_every("5h"), Some(5 * 3_600_000));
        assert_eq!(parse_every("1h30m"), Some(90 * 60_000));
        assert_eq!(parse_every("7d"), Some(7 * 86_400_000));
        assert_eq!(parse_every("1w"), Some(7 * 86_400_000));
        for bad in ["", "5", "h", "5x", "-5h", "5.5h"] {
            assert_eq!(parse_every(bad), None, "{bad}");
        }
        assert_eq!(every_text(5 * 3_600_000), "5h");
        assert_eq!(every_text(90 * 60_000), "1h30m");
        assert_eq!(every_text(36 * 3_600_000), "1d12h");
    }
}
