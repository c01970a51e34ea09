//! A `--since`/`--until` range cut into the whole roll-up units inside it (SQLite's hours,
//! PostgreSQL's UTC days) and the partial ends, read request by request.

/// A range `[since, until)` (either end open) as roll-up units and partial ends.
#[derive(Debug, PartialEq)]
pub struct Split {
    /// The roll-up's units from this start on (none when `None`).
    pub whole_from: Option<i64>,
    /// ... up to this start, exclusive.
    pub whole_to: Option<i64>,
    /// Request ranges `[from, to)` outside the whole units.
    pub partial: Vec<(Option<i64>, Option<i64>)>,
}

/// Cuts `[since, until)` into whole units of `width` ms (aligned on the epoch) and the rest.
pub fn split(since: Option<i64>, until: Option<i64>, width: i64) -> Split {
    let floor = |ms: i64| ms - ms.rem_euclid(width);
    let ceil = |ms: i64| {
        if floor(ms) == ms {
            ms
        } else {
            floor(ms) + width
        }
    };
    let whole_from = since.map(ceil);
    let whole_to = until.map(floor);
    let mut partial = Vec::new();
    match (whole_from, whole_to) {
        // Both ends inside one unit: no whole unit (the roll-up's range is empty), one range.
        (Some(from), Some(to)) if from > to => partial.push((since, until)),
        _ => {
            if since != whole_from {
                partial.push((since, whole_from));
            }
            if until != whole_to {
                partial.push((whole_to, until));
            }
        }
    }
    Split {
        whole_from,
        whole_to,
        partial,
    }
}

/// The partial ends as one condition on `r.started_ms`, `((a AND b) OR ...)`, each bound
/// written by `bound` (column, operator, ms; it adds the parameter in its backend's syntax);
/// `None` when there are no partial ends.
pub(crate) fn partial_clause(
    partial: &[(Option<i64>, Option<i64>)],
    mut bound: impl FnMut(&str, &str, Option<i64>) -> Option<String>,
) -> Option<String> {
    let ranges: Vec<String> = partial
        .iter()
        .map(|&(from, to)| {
            let parts: Vec<String> = bound("r.started_ms", ">=", from)
                .into_iter()
                .chain(bound("r.started_ms", "<", to))
                .collect();
            format!("({})", parts.join(" AND "))
        })
        .collect();
    (!ranges.is_empty()).then(|| format!("({})", ranges.join(" OR ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn a_range_splits_into_whole_units_and_partial_ends() {
        assert_eq!(
            split(Some(H + 5), Some(4 * H + 7), H),
            Split {
                whole_from: Some(2 * H),
                whole_to: Some(4 * H),
                partial: vec![(Some(H + 5), Some(2 * H)), (Some(4 * H), Some(4 * H + 7))],
            }
        );
        assert_eq!(
            split(Some(2 * H), None, H),
            Split {
                whole_from: Some(2 * H),
                whole_to: None,
                partial: vec![],
            }
        );
        // Both ends in one hour: the roll-up selects nothing, the requests between them all.
        let inside = split(Some(H + 5), Some(H + 9), H);
        assert_eq!(inside.partial, vec![(Some(H + 5), Some(H + 9))]);
        assert!(inside.whole_from > inside.whole_to);
    }
}
