//! A webhook: the event as a JSON POST, retried with backoff a few times when the receiver
//! cannot be reached or answers with an error, each try bounded by a timeout.

use std::time::Duration;

use super::Event;

/// Tries per event (the first and the retries).
const ATTEMPTS: u32 = 4;
/// Each try's limit: connecting, sending and the answer together.
const TIMEOUT: Duration = Duration::from_secs(3);
/// The wait before the first retry; doubled for each one after.
const BACKOFF: Duration = Duration::from_millis(250);

pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap_or_default()
}

pub(super) async fn post(client: &reqwest::Client, url: &str, event: &Event) {
    let body = event.json(crate::ledger::now_ms()).to_string();
    let shown = crate::format::redact_url(url).into_owned();
    let mut wait = BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let sent = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        let problem = match sent {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => format!("answered {}", response.status().as_u16()),
            Err(err) if err.is_timeout() => format!("did not answer within {TIMEOUT:?}"),
            Err(_) => "could not be reached".to_owned(),
        };
        if attempt == ATTEMPTS {
            tracing::warn!(
                "the notification webhook {shown} {problem}; gave up after {ATTEMPTS} tries"
            );
            return;
        }
        tracing::debug!("the notification webhook {shown} {problem}; retrying");
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}
