//! Formatting shared by the CLI and the web dashboard: money, token counts, times, durations,
//! and URLs with their secrets blanked.

/// A total's cost that says what it leaves out: `$0.0420+` when some of its requests have no
/// known price (never a silent zero), `n/a` when none has one.
pub fn cost_marked(usd: Option<f64>, unpriced: u64) -> String {
    let mut text = money(usd);
    if unpriced > 0 && usd.is_some() {
        text.push('+');
    }
    text
}

/// [`cost_marked`], followed by the simulated (mock) cost apart when there is one:
/// `$0 (+$0.0446 simulated)`.
pub fn cost_and_simulated(usd: Option<f64>, unpriced: u64, simulated: Option<f64>) -> String {
    let mut text = cost_marked(usd, unpriced);
    if let Some(simulated) = simulated {
        text.push_str(&format!(" (+{} simulated)", money(Some(simulated))));
    }
    text
}

/// `2 requests with no known price not in the cost`, or nothing.
pub fn unpriced_note(unpriced: u64) -> Option<String> {
    (unpriced > 0).then(|| {
        format!(
            "{} request{} with no known price not in the cost",
            count(unpriced),
            if unpriced == 1 { "" } else { "s" }
        )
    })
}

/// `$1.2346`, `$0.000045`, `$0.000000012`, `$0`, or `n/a` when unknown. Amounts under a cent
/// keep at least two significant digits, so a small cost or budget never shows as zero.
pub fn money(usd: Option<f64>) -> String {
    match usd {
        None => "n/a".to_owned(),
        Some(0.0) => "$0".to_owned(),
        Some(v) if v.abs() >= 0.01 => format!("${v:.4}"),
        Some(v) if v.abs() < 1e-11 => format!("${v:.1e}"),
        Some(v) => {
            // Digits to the first significant one, plus one more.
            let leading = (-v.abs().log10()).ceil() as usize;
            let decimals = (leading + 1).clamp(6, 12);
            format!("${v:.decimals$}")
        }
    }
}

/// `1234567` -> `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Local time of an epoch-millisecond timestamp, `2026-11-22 14:03`.
pub fn local_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

pub fn duration(ms: i64) -> String {
    let secs = ms as f64 / 1000.0;
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else if secs < 3600.0 {
        format!("{}m{:02}s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (secs / 3600.0) as u64,
            ((secs % 3600.0) / 60.0) as u64
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(money(None), "n/a");
        assert_eq!(money(Some(0.0)), "$0");
        assert_eq!(money(Some(0.000_045)), "$0.000045");
        assert_eq!(money(Some(0.000_000_012)), "$0.000000012");
        assert_eq!(money(Some(0.000_000_001_5)), "$0.0000000015");
        assert_eq!(money(Some(0.005)), "$0.005000");
        assert_eq!(money(Some(2e-13)), "$2.0e-13");
        assert_eq!(money(Some(1.23456)), "$1.2346");
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(123), "123");
        assert_eq!(duration(1500), "1.5s");
        assert_eq!(duration(125_000), "2m05s");
    }
}

/// `url` (or any text naming URLs, such as an error message) with what may be a secret blanked:
/// the user and password before `@`, and every query value (`?api-key=***`). Provider
/// addresses are shown to clients in errors, and in `config show`, `route explain` and
/// `/debug/status`.
pub fn redact_url(text: &str) -> std::borrow::Cow<'_, str> {
    static USERINFO: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@?#]+@").ok()
    });
    static QUERY: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"([?&][^=\s&#?]+)=[^&\s#)\]'`\x22]*").ok());
    // The patterns are constants (a unit test compiles them); failing safe all the same.
    let (Some(userinfo), Some(query)) = (USERINFO.as_ref(), QUERY.as_ref()) else {
        return std::borrow::Cow::Borrowed("(address hidden)");
    };
    if !text.contains('@') && !text.contains('?') {
        return std::borrow::Cow::Borrowed(text);
    }
    let text = userinfo.replace_all(text, "$1***@");
    std::borrow::Cow::Owned(query.replace_all(&text, "$1=***").into_owned())
}

#[cfg(test)]
mod redact_tests {
    use super::redact_url;

    #[test]
    fn secrets_in_urls_are_blanked() {
        assert_eq!(
            redact_url("http://user:pa55@host:8080/v1/chat/completions"),
            "http://***@host:8080/v1/chat/completions"
        );
        assert_eq!(
            redact_url("error sending request for url (https://h/v1/x?api-key=sk-1&x=2): refused"),
            "error sending request for url (https://h/v1/x?api-key=***&x=***): refused"
        );
        assert_eq!(
            redact_url("https://api.openai.com/v1"),
            "https://api.openai.com/v1"
        );
        assert_eq!(redact_url("mail me at a@b.c"), "mail me at a@b.c");
    }
}
