//! Budget decisions, pure: given a limit, what is spent, what is reserved by requests in flight
//! and what a new request is expected to cost, may it go?

/// What a refused request is told.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refusal {
    pub limit_usd: f64,
    pub spent_usd: f64,
    pub reserved_usd: f64,
    pub estimate_usd: f64,
}

/// Allows a request when the spent amount, everything reserved and its own estimate fit the
/// limit. A request is never refused because of an unknown price (estimate 0) unless the budget
/// is already used up.
pub fn decide(
    limit_usd: Option<f64>,
    spent_usd: f64,
    reserved_usd: f64,
    estimate_usd: f64,
) -> Result<(), Refusal> {
    let Some(limit_usd) = limit_usd else {
        return Ok(());
    };
    let committed = spent_usd + reserved_usd;
    if committed >= limit_usd || committed + estimate_usd > limit_usd {
        return Err(Refusal {
            limit_usd,
            spent_usd,
            reserved_usd,
            estimate_usd,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        // (limit, spent, reserved, estimate, allowed)
        let cases = [
            (None, 100.0, 100.0, 100.0, true),
            (Some(1.0), 0.0, 0.0, 0.5, true),
            (Some(1.0), 0.5, 0.0, 0.5, true),
            (Some(1.0), 0.5, 0.2, 0.5, false),
            (Some(1.0), 1.0, 0.0, 0.0, false),
            (Some(1.0), 0.9, 0.0, 0.0, true),
            (Some(1.0), 1.2, 0.0, 0.0, false),
            (Some(1.0), 0.0, 0.0, 2.0, false),
        ];
        for (limit, spent, reserved, estimate, allowed) in cases {
            assert_eq!(
                decide(limit, spent, reserved, estimate).is_ok(),
                allowed,
                "{limit:?} {spent} {reserved} {estimate}"
            );
        }
    }
}
