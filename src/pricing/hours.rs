//! When time-of-day prices apply (DeepSeek's off-peak hours, LiteLLM `off_peak_pricing`), pure:
//! the moment is a parameter, never read from a clock here.
//!
//! LiteLLM's rules (`_is_off_peak`, litellm 1.109.1): a window `HH:MM-HH:MM` is in UTC, starts
//! inclusive and ends exclusive, wraps past midnight when its end is not after its start, and
//! covers the whole day when both are equal. A window with weekdays applies only on those days,
//! read on the UTC calendar at the moment itself (so a window that wraps past midnight is judged
//! by the weekday after midnight).

/// Most windows a schedule holds (DeepSeek's has four).
pub const MAX_WINDOWS: usize = 8;

/// Monday to Sunday, as bits 0 to 6.
pub const EVERY_DAY: u8 = 0b111_1111;

/// One window of a weekly schedule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// Days it applies on: bit 0 is Monday, bit 6 Sunday; 0 marks an unused slot.
    pub weekdays: u8,
    /// Minutes after 00:00 UTC.
    pub start: u16,
    pub end: u16,
}

impl Window {
    /// An unused slot.
    pub const NONE: Window = Window::new(0, 0, 0);

    pub const fn new(weekdays: u8, start: u16, end: u16) -> Self {
        Self {
            weekdays,
            start,
            end,
        }
    }

    fn contains(&self, weekday: u8, minute: u16) -> bool {
        if self.weekdays & (1 << weekday) == 0 {
            return false;
        }
        if self.start < self.end {
            self.start <= minute && minute < self.end
        } else {
            minute >= self.start || minute < self.end
        }
    }
}

/// A weekly schedule in UTC: a fixed number of windows, so that prices stay `Copy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hours {
    windows: [Window; MAX_WINDOWS],
}

impl Hours {
    /// The schedule of all its slots at once (unused ones [`Window::NONE`]): the generated
    /// table's form.
    pub const fn new(windows: [Window; MAX_WINDOWS]) -> Self {
        Self { windows }
    }

    /// The schedule of `windows`; `None` when there are more than [`MAX_WINDOWS`].
    pub const fn of(windows: &[Window]) -> Option<Self> {
        if windows.len() > MAX_WINDOWS {
            return None;
        }
        let mut all = [Window::NONE; MAX_WINDOWS];
        let mut i = 0;
        while i < windows.len() {
            all[i] = windows[i];
            i += 1;
        }
        Some(Self { windows: all })
    }

    /// The windows in use.
    pub fn windows(&self) -> impl Iterator<Item = &Window> {
        self.windows.iter().filter(|w| w.weekdays != 0)
    }

    /// Whether the moment `at_ms` (milliseconds since the Unix epoch) is inside the schedule.
    pub fn contains(&self, at_ms: i64) -> bool {
        let minutes = at_ms.div_euclid(60_000);
        let minute = u16::try_from(minutes.rem_euclid(1440)).unwrap_or(0);
        // 1970-01-01 was a Thursday (weekday 3, counting Monday as 0).
        let weekday = u8::try_from((minutes.div_euclid(1440) + 3).rem_euclid(7)).unwrap_or(0);
        self.windows().any(|w| w.contains(weekday, minute))
    }
}

/// `HH:MM` as minutes after midnight.
pub fn parse_clock(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// `HH:MM-HH:MM` as (start, end) minutes.
pub fn parse_window(text: &str) -> Option<(u16, u16)> {
    let (start, end) = text.split_once('-')?;
    Some((parse_clock(start)?, parse_clock(end)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// 2026-12-07 was a Monday.
    fn at(day: i64, hh: i64, mm: i64) -> i64 {
        let monday = chrono::NaiveDate::from_ymd_opt(2026, 12, 7)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis();
        monday + ((day * 24 + hh) * 60 + mm) * 60_000
    }

    /// DeepSeek's schedule in LiteLLM 1.109.1.
    fn deepseek() -> Hours {
        let weekdays = 0b001_1111;
        let weekend = 0b110_0000;
        Hours::of(&[
            Window::new(weekdays, 0, 60),
            Window::new(weekdays, 240, 360),
            Window::new(weekdays, 600, 0),
            Window::new(weekend, 0, 0),
        ])
        .unwrap()
    }

    #[test]
    fn deepseek_schedule_both_sides_of_each_boundary() {
        let h = deepseek();
        let cases = [
            // Monday
            (at(0, 0, 0), true),
            (at(0, 0, 59), true),
            (at(0, 1, 0), false),
            (at(0, 3, 59), false),
            (at(0, 4, 0), true),
            (at(0, 5, 59), true),
            (at(0, 6, 0), false),
            (at(0, 9, 59), false),
            (at(0, 10, 0), true),
            (at(0, 23, 59), true),
            // Friday evening into Saturday, Sunday into Monday
            (at(4, 23, 59), true),
            (at(5, 2, 0), true),
            (at(5, 7, 0), true),
            (at(6, 8, 0), true),
            (at(7, 2, 0), false),
        ];
        for (ms, want) in cases {
            assert_eq!(
                h.contains(ms),
                want,
                "{}",
                chrono::DateTime::from_timestamp_millis(ms).unwrap()
            );
        }
        // About 79% of the week's hours are off-peak.
        let hours = (0..168).filter(|n| h.contains(at(0, *n, 30))).count();
        assert_eq!(hours, 5 * 17 + 2 * 24, "133 of 168");
    }

    #[test]
    fn a_millisecond_before_the_boundary_is_still_inside() {
        let h = deepseek();
        assert!(h.contains(at(0, 1, 0) - 1));
        assert!(!h.contains(at(0, 1, 0)));
        assert!(!h.contains(at(0, 10, 0) - 1));
        assert!(h.contains(at(0, 10, 0)));
    }

    #[test]
    fn windows_parse_and_overflow() {
        assert_eq!(parse_window("16:30-00:30"), Some((990, 30)));
        assert_eq!(parse_window(" 00:00 - 00:00 "), Some((0, 0)));
        assert_eq!(parse_window("24:00-01:00"), None);
        assert_eq!(parse_window("noon"), None);
        assert!(Hours::of(&[Window::new(1, 0, 1); MAX_WINDOWS + 1]).is_none());
        assert!(!Hours::default().contains(0));
        let wrap = Hours::of(&[Window::new(EVERY_DAY, 990, 30)]).unwrap();
        assert!(wrap.contains(at(2, 0, 15)));
        assert!(!wrap.contains(at(2, 0, 30)));
        assert!(wrap.contains(at(2, 16, 30)));
        assert!(!wrap.contains(at(2, 16, 29)));
    }
}
