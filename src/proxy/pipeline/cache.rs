//! Phase 3, cache: the exact-match response cache. A hit is served here, in the client's
//! format (`reply::from_cache`), without a provider, a budget reservation or a cost; a miss
//! leaves the key for the reply phase to fill.

use bytes::Bytes;

use super::{Admitted, RequestCtx};
use crate::cache::{CachedReply, bypass_requested, cache_key, cacheable, is_complete};
use crate::proxy::context::Tokens;
use crate::routing::plan::Plan;
use crate::wire::openai::ResponseView;

/// The key this request is cached under, when the cache is on and the request may be cached;
/// records the cache status either way.
pub fn key(ctx: &mut RequestCtx, request: &Admitted, plan: &Plan) -> Option<String> {
    ctx.state.cache.as_ref()?;
    let headers = request
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)));
    if bypass_requested(headers) {
        ctx.fin.record().cache_status = "bypass";
        return None;
    }
    // A pass-through request is answered by Anthropic on the client's own account: a cached
    // reply would skip checking its credential and be another account's answer. The cache
    // holds chat replies: a request with no chat translation (every target takes it as the
    // client sent it) never gets one to store.
    let hub = &request.inbound.hub;
    if !ctx.dialect.cacheable() || request.credential.is_some() || hub.is_empty() || !cacheable(hub)
    {
        return None;
    }
    ctx.fin.record().cache_status = "miss";
    let owner = request.key_name.as_deref().unwrap_or("local");
    cache_key(owner, &plan.targets[0].model, hub).ok()
}

/// The cached reply under `key`, recorded on the row as a hit.
pub async fn lookup(ctx: &mut RequestCtx, key: Option<&str>) -> Option<CachedReply> {
    let (Some(cache), Some(key)) = (&ctx.state.cache, key) else {
        return None;
    };
    let hit = cache.get(key.to_owned()).await?;
    ctx.fin.set_cache_hit();
    ctx.fin.record().served_model = Some(hit.model.clone());
    Some(hit)
}

/// Stores a whole, complete OpenAI reply under `key`, off the request path.
pub fn fill(ctx: &mut RequestCtx, key: String, body: &Bytes) {
    let Some(cache) = &ctx.state.cache else {
        return;
    };
    if !is_complete(body) {
        return;
    }
    let parsed: ResponseView = serde_json::from_slice(body).unwrap_or_default();
    let usage = parsed.usage.unwrap_or_default();
    let record = ctx.fin.record();
    let model = record.served_model.clone().unwrap_or_default();
    let provider = record.provider.clone();
    let mut tokens = Tokens::from_usage(&usage).served_at(parsed.service_tier.as_deref());
    tokens.detail.started_ms = Some(record.started_ms);
    let cost = ctx
        .state
        .cost_usd_with(provider.as_deref(), &model, tokens.counts, tokens.detail);
    cache.put_later(
        key,
        CachedReply {
            body: body.to_vec(),
            model,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cost_usd: cost,
        },
    );
}
