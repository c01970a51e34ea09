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
    let mut text = String::with_capacity(160);
    let mut put = |value: &dyn std::fmt::Display| {
        let start = text.len();
        let _ = write!(text, "{value}");
        start..text.len()
    };
    let id = put(&record.id);
    let target = match (&record.provider, &record.served_model) {
        (Some(p), Some(m)) => {
            let provider = put(p);
            let _ = put(&'/');
            let model = put(m);
            Some((provider.start..model.end, provider, model))
        }
        _ => None,
    };
    let route = record.route.as_ref().map(|r| put(r));
    let budget = trip.budget_remaining.map(|r| put(&format_args!("{r:.6}")));
    // Milliseconds to the microsecond, in integers: float formatting costs more than the rest.
    let micros = overhead.as_nanos().saturating_add(500) / 1000;
    let overhead = put(&format_args!("{}.{:03}", micros / 1000, micros % 1000));
    let cost = record
        .cost_usd
        .filter(|_| with_cost)
        .map(|c| put(&format_args!("{c:.8}")));
    let attempts = put(&record.attempts);
    let action = record.budget_action.as_ref().map(|a| put(a));
    let warning = trip.budget_warning.as_ref().map(|w| put(w));
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
    headers.insert(
        X_FAILOVER,
        HeaderValue::from_static(if trip.failover { "true" } else { "false" }),
    );
    headers.insert(X_CACHE, HeaderValue::from_static(record.cache_status));
}
