//! Between admit and route, the loop breaker (`crate::proxy::loop_breaker`): the session's
//! newest turns so far, this request's added. A warning rides on the answer (the
//! `x-smartproxy-loop-warning` header, one stderr line an episode); a stopped session's
//! request is refused with 429 `loop_detected` before anything is sent upstream, streamed or
//! not. Forwarded requests were judged by the nested session's own proxy.

use std::sync::Arc;

use super::{Admitted, RequestCtx};
use crate::proxy::error::ApiError;
use crate::proxy::loop_breaker::Verdict;

pub fn check(ctx: &mut RequestCtx, request: &mut Admitted) -> Result<(), ApiError> {
    let config = ctx.rt.config.loop_breaker;
    if ctx.fin.forwarded() {
        return Ok(());
    }
    let Some(session) = ctx.fin.record().session_id.clone() else {
        return Ok(());
    };
    let state = Arc::clone(&ctx.state);
    // By default only tool-call turns count: one question asked many times is no agent loop.
    let turn = request
        .inbound
        .turn
        .take()
        .filter(|t| config.user_messages || t.tool.is_some());
    match state
        .loops
        .check(config, &session, turn, crate::ledger::now_ms())
    {
        Verdict::Pass => Ok(()),
        Verdict::Warn { warning, first } => {
            let short = session.get(..8).unwrap_or(&session);
            if first {
                crate::printer::warn(&format!("loop breaker: session {short}: {warning}"));
            }
            // Header values are visible ASCII; a tool's name may not be.
            let header: String = warning
                .chars()
                .map(|c| {
                    if c.is_ascii_graphic() || c == ' ' {
                        c
                    } else {
                        '?'
                    }
                })
                .collect();
            ctx.trip.loop_warning = Some(header);
            Ok(())
        }
        Verdict::Stop(stop) => {
            if stop.fresh {
                crate::printer::warn(&stop.message);
                if let Some(notifier) = &state.notifier {
                    // The row's wording: kinds, hashes and counts, never a tool's name.
                    let signature = stop.row.trim_start_matches("loop refused: ").to_owned();
                    notifier.send(crate::notify::Event::LoopDetected {
                        session: session.to_string(),
                        signature,
                    });
                }
            }
            ctx.fin.record().budget_action = Some(stop.row);
            Err(ApiError::loop_detected(stop.message))
        }
    }
}
