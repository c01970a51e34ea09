//! The `x-smartproxy-*` response headers: where a request went, what it cost, how long
//! smartproxy itself took.

use std::fmt::Write as _;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::context::{Finalizer, Trip};
use super::state::AppState;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-smartproxy-request-id");

pub fn set_request_id(headers: &mut HeaderMap, request_id: &str) {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(X_REQUEST_ID, value);
    }
}

/// Header names, built once at compile time rather than parsed per response.
const X_ROUTE: HeaderName = HeaderName::from_static("x-smartproxy-route");
const X_TARGET: HeaderName = HeaderName::from_static("x-smartproxy-target");
const X_PROVIDER: HeaderName = HeaderName::from_static("x-smartproxy-provider");
const X_MODEL: HeaderName = HeaderName::from_static("x-smartproxy-model");
const X_ATTEMPTS: HeaderName = HeaderName::from_static("x-smartproxy-attempts");
const X_FAILOVER: HeaderName = HeaderName::from_static("x-smartproxy-failover");
const X_CACHE: HeaderName = HeaderName::from_static("x-smartproxy-cache");
const X_BUDGET: HeaderName = HeaderName::from_static("x-smartproxy-budget-remaining");
const X_OVERHEAD: HeaderName = HeaderName::from_static("x-smartproxy-overhead-ms");
const X_COST: HeaderName = HeaderName::from_static("x-smartproxy-cost");
const X_BUDGET_ACTION: HeaderName = HeaderName::from_static("x-smartproxy-budget-action");
const X_BUDGET_WARNING: HeaderName = HeaderName::from_static("x-smartproxy-budget-warning");
const X_LOOP_WARNING: HeaderName = HeaderName::from_static("x-smartproxy-loop-warning");

pub(super) fn routing_headers(
    state: &AppState,
    headers: &mut HeaderMap,
    fin: &mut Finalizer,
    trip: &Trip,
    with_cost: bool,
) {
    if !state.runtime().config.response_headers {
        set_request_id(headers, fin.id());
        return;
    }
    let overhead = fin.started().elapsed().saturating_sub(trip.upstream);
    let record = fin.record();
    // Every value is written into one buffer and handed out as slices of it: one allocation for
    // the lot instead of two per header, on every response.
    // Text is copied in as it is (`write!` runs the formatter for every piece).
    let mut text = String::with_capacity(160);
    let mut put = |value: &str| {
        let start = text.len();
        text.push_str(value);
        start..text.len()
    };
    let id = put(&record.id);
    let target = match (&record.provider, &record.served_model) {
        (Some(p), Some(m)) => {
            let provider = put(p);
            let _ = put("/");
            let model = put(m);
            Some((provider.start..model.end, provider, model))
        }
        _ => None,
    };
    let route = record.route.as_deref().map(&mut put);
    let action = record.budget_action.as_deref().map(&mut put);
    let warning = trip.budget_warning.as_deref().map(&mut put);
    let loop_warning = trip.loop_warning.as_deref().map(&mut put);
    let mut put_fmt = |value: std::fmt::Arguments<'_>| {
        let start = text.len();
        let _ = text.write_fmt(value);
        start..text.len()
    };
    let budget = trip
        .budget_remaining
        .map(|r| put_fmt(format_args!("{r:.6}")));
    // Milliseconds to the microsecond, in integers: float formatting costs more than the rest.
    let micros = overhead.as_nanos().saturating_add(500) / 1000;
    let overhead = put_fmt(format_args!("{}.{:03}", micros / 1000, micros % 1000));
    let attempts = put_fmt(format_args!("{}", record.attempts));
    let cost = record.cost_usd.filter(|_| with_cost).map(|c| {
        let start = text.len();
        push_usd(&mut text, c);
        start..text.len()
    });
    let text = Bytes::from(text);
    let mut insert = |name: HeaderName, range: Option<std::ops::Range<usize>>| {
        if let Some(value) = range.and_then(|r| HeaderValue::from_maybe_shared(text.slice(r)).ok())
        {
            headers.insert(name, value);
        }
    };
    insert(X_REQUEST_ID, Some(id));
    if let Some((target, provider, model)) = target {
        insert(X_TARGET, Some(target));
        insert(X_PROVIDER, Some(provider));
        insert(X_MODEL, Some(model));
    }
    insert(X_ROUTE, route);
    insert(X_BUDGET, budget);
    insert(X_OVERHEAD, Some(overhead));
    insert(X_COST, cost);
    insert(X_ATTEMPTS, Some(attempts));
    insert(X_BUDGET_ACTION, action);
    insert(X_BUDGET_WARNING, warning);
    insert(X_LOOP_WARNING, loop_warning);
    headers.insert(
        X_FAILOVER,
        HeaderValue::from_static(if trip.failover { "true" } else { "false" }),
    );
    headers.insert(X_CACHE, HeaderValue::from_static(record.cache_status));
}

/// `{usd:.8}`, the same digits, from integers where they are certain: float formatting is most
/// of what the header costs. Near a tie (and for sums no request reaches) it formats as before.
fn push_usd(text: &mut String, usd: f64) {
    let scaled = usd.abs() * 1e8;
    let whole = scaled.floor();
    // The product is within 1e-5 of the exact one below 1e11, so a fraction this far from a
    // half rounds the way the exact decimal expansion does.
    if scaled.is_nan() || scaled >= 1e11 || ((scaled - whole) - 0.5).abs() < 1e-4 {
        let _ = write!(text, "{usd:.8}");
        return;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "non-negative and below 1e11, checked above"
    )]
    let units = scaled.round() as u64;
    if usd.is_sign_negative() {
        text.push('-');
    }
    let _ = write!(text, "{}.{:08}", units / 100_000_000, units % 100_000_000);
}

#[cfg(test)]
mod tests {
    use super::push_usd;

    #[test]
    fn usd_has_the_formatters_digits() {
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            0.5,
            0.000_000_005,
            0.000_000_015,
            0.000_012_345,
            0.001_275,
            3.999_999_999,
            12_345.678_901_234_5,
            999.999_999_995,
            -0.25,
            1e20,
            -1e-12,
            f64::NAN,
            f64::INFINITY,
        ];
        // Prices times token counts, as rows carry them.
        for tokens in [1u32, 7, 41, 38, 79, 1_000, 123_457] {
            for per_million in [0.15, 0.6, 2.5, 3.0, 10.0, 15.0, 0.075] {
                values.push(f64::from(tokens) * per_million / 1e6);
            }
        }
        for v in values {
            let mut text = String::new();
            push_usd(&mut text, v);
            assert_eq!(text, format!("{v:.8}"), "{v:e}");
        }
    }
}
