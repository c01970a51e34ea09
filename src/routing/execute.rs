//! Carrying out a plan: try each target in order, retry transient failures with backoff or the
//! provider's `Retry-After`, skip targets whose circuit is open, and fail over to the next
//! target. Nothing here runs after the first byte reaches the client: a streamed 2xx reply is
//! handed back at once and is never retried (pingora's rule).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tracing::Instrument;

use super::health::{Health, Transition};
use super::plan::{Candidate, Plan};
use super::retry::{self, Wait};
use crate::config::Config;
use crate::ledger::AttemptRow;
use crate::providers::{Provider, ProviderError, UpstreamRequest, UpstreamResponse, collect};

/// What the attempts produced.
pub enum Reply {
    /// A complete reply, success or the provider's error, read to the end.
    Whole {
        status: u16,
        content_type: Option<String>,
        retry_after: Option<String>,
        /// The provider said not to retry (see `UpstreamResponse::final_refusal`).
        final_refusal: bool,
        body: Bytes,
    },
    /// A successful streamed reply, not read yet.
    Stream(UpstreamResponse),
}

pub struct Executed {
    pub result: Result<Reply, ProviderError>,
    /// The target that produced `result`.
    pub served: Option<Candidate>,
    pub attempts: Vec<AttemptRow>,
}

impl Executed {
    /// True when another target than the first planned one produced the reply.
    pub fn failed_over(&self, plan: &Plan) -> bool {
        self.served
            .as_ref()
            .is_some_and(|s| plan.targets.first() != Some(s))
    }
}

/// What execution needs besides the plan.
pub struct Executor<'a> {
    pub config: &'a Config,
    pub providers: &'a [Arc<dyn Provider>],
    pub health: &'a Health,
    /// Called on every breaker transition (to record it in the ledger).
    pub on_transition: &'a (dyn Fn(&str, &str, Transition) + Sync),
}

enum Verdict {
    Done,
    /// Worth another try.
    Transient,
}

impl Executor<'_> {
    /// Tries the plan's targets in order. `request_for` builds the upstream request for a target.
    pub async fn run(
        &self,
        plan: &Plan,
        stream: bool,
        request_for: &(dyn Fn(&Candidate) -> Result<UpstreamRequest, ProviderError> + Sync),
    ) -> Executed {
        let policy = self.config.resilience;
        let mut attempts = Vec::new();
        let mut last: Option<(Result<Reply, ProviderError>, Candidate)> = None;
        let mut waited = Duration::ZERO;
        // Every attempt, wait and failover together: a silent provider holds the client this
        // long at most, however many targets and retries the plan has.
        let began = Instant::now();
        let deadline = began + policy.deadline;
        'targets: for candidate in &plan.targets {
            let name = self.config.providers[candidate.provider].name.as_str();
            for n in 1..=policy.max_attempts {
                if Instant::now() >= deadline {
                    break 'targets;
                }
                if !self
                    .health
                    .try_acquire(name, &candidate.model, Instant::now())
                {
                    attempts.push(AttemptRow {
                        provider: name.to_owned(),
                        model: candidate.model.clone(),
                        status: None,
                        error_class: Some("circuit_open".to_owned()),
                        latency_ms: 0.0,
                        waited_ms: 0.0,
                    });
                    continue 'targets;
                }
                let started = Instant::now();
                let span = tracing::info_span!(
                    "attempt",
                    provider = %name,
                    model = %candidate.model,
                    n = attempts.len() + 1
                );
                let result = match request_for(candidate) {
                    Ok(request) => tokio::time::timeout_at(
                        deadline.into(),
                        self.attempt(candidate, request, stream)
                            .instrument(span.clone()),
                    )
                    .await
                    .unwrap_or_else(|_| {
                        Err(ProviderError::Deadline {
                            provider: name.to_owned(),
                            seconds: began.elapsed().as_secs_f64(),
                        })
                    }),
                    Err(err) => Err(err),
                };
                let (verdict, status, class, retry_after) = judge(&result);
                if let Some(class) = &class {
                    span.in_scope(|| tracing::debug!(status, class, "attempt failed"));
                }
                attempts.push(AttemptRow {
                    provider: name.to_owned(),
                    model: candidate.model.clone(),
                    status,
                    error_class: class,
                    latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                    waited_ms: waited.as_secs_f64() * 1000.0,
                });
                waited = Duration::ZERO;
                match verdict {
                    Verdict::Done => {
                        if status.is_some_and(|s| (200..300).contains(&s))
                            && let Some(t) = self.health.record_success(name, &candidate.model)
                        {
                            (self.on_transition)(name, &candidate.model, t);
                        }
                        return Executed {
                            result,
                            served: Some(candidate.clone()),
                            attempts,
                        };
                    }
                    Verdict::Transient => {
                        if let Some(t) =
                            self.health
                                .record_failure(name, &candidate.model, Instant::now())
                        {
                            (self.on_transition)(name, &candidate.model, t);
                        }
                        // A provider silent until the first-byte timeout is not asked again:
                        // the next target is.
                        let silent = matches!(&result, Err(ProviderError::FirstByteTimeout { .. }));
                        last = Some((result, candidate.clone()));
                        if n == policy.max_attempts || silent {
                            break;
                        }
                        let backoff = retry::backoff(
                            n + 1,
                            policy.backoff,
                            policy.max_backoff,
                            rand::random_range(0.5..=1.0),
                        );
                        let hinted = retry_after
                            .as_deref()
                            .and_then(|v| retry::retry_after(v, SystemTime::now()));
                        match retry::wait_before_retry(hinted, backoff, policy.retry_after_cap) {
                            Wait::Retry(wait) if Instant::now() + wait >= deadline => {
                                break 'targets;
                            }
                            Wait::Retry(wait) => {
                                tokio::time::sleep(wait).await;
                                waited = wait;
                            }
                            Wait::FailOver => break,
                        }
                    }
                }
            }
        }
        match last {
            Some((result, served)) => Executed {
                result,
                served: Some(served),
                attempts,
            },
            None => Executed {
                result: Err(ProviderError::Unavailable(
                    "every target's circuit is open; try again after the cooldown".to_owned(),
                )),
                served: None,
                attempts,
            },
        }
    }

    /// One request to one target. Whole replies are read here, so a body that breaks before
    /// the client has seen anything can still be retried.
    async fn attempt(
        &self,
        candidate: &Candidate,
        request: UpstreamRequest,
        stream: bool,
    ) -> Result<Reply, ProviderError> {
        let request_limit = request.max_reply_bytes;
        let response = self.providers[candidate.provider].send(request).await?;
        if stream && (200..300).contains(&response.status) {
            return Ok(Reply::Stream(response));
        }
        let body = collect(
            response.body,
            request_limit,
            &self.config.providers[candidate.provider].name,
        )
        .await?;
        Ok(Reply::Whole {
            status: response.status,
            content_type: response.content_type,
            retry_after: response.retry_after,
            final_refusal: response.final_refusal,
            body,
        })
    }
}

/// Whether an attempt is final, and what to record of it.
fn judge(
    result: &Result<Reply, ProviderError>,
) -> (Verdict, Option<u16>, Option<String>, Option<String>) {
    match result {
        Ok(Reply::Stream(response)) => (Verdict::Done, Some(response.status), None, None),
        Ok(Reply::Whole {
            status,
            retry_after,
            final_refusal,
            ..
        }) => {
            let class = (!(200..300).contains(status)).then(|| format!("upstream_{status}"));
            let verdict = if retry::retryable_status(*status) && !final_refusal {
                Verdict::Transient
            } else {
                Verdict::Done
            };
            (verdict, Some(*status), class, retry_after.clone())
        }
        Err(err) => {
            let verdict = if err.retryable() {
                Verdict::Transient
            } else {
                Verdict::Done
            };
            (verdict, None, Some(err.code().to_owned()), None)
        }
    }
}
