//! The login form (`GET`/`POST /login`) and `POST /logout`: a pasted admin key or dashboard
//! token becomes an HttpOnly cookie, wrong keys are throttled per client address.

use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt;

use super::{LOGIN_TTL, Web, html, html_response, now_s, query_param, redirect, security};

/// The largest login form read.
const FORM_LIMIT: usize = 8 * 1024;
/// The login form is a few hundred bytes: it arrives within this or not at all.
const FORM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A local path to return to after login; anything else (another host) is `/`.
pub(super) fn safe_next(next: &str) -> &str {
    if next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.starts_with("/login")
    {
        next
    } else {
        "/"
    }
}

pub(super) fn login_page(
    web: &Web,
    error: Option<&str>,
    status: StatusCode,
    next: &str,
) -> Response<Bytes> {
    let how = match (
        web.security.login_with_admin_key(),
        web.security.secret_configured,
    ) {
        (true, true) => {
            "Paste the admin key (<code>SMARTPROXY_ADMIN_KEY</code>) or a token from <code>smartproxy ui token</code>."
        }
        (true, false) => "Paste the admin key (<code>SMARTPROXY_ADMIN_KEY</code>).",
        (false, true) => {
            "Paste a token from <code>smartproxy ui token</code> (signed with this server's <code>JWT_SECRET</code>)."
        }
        (false, false) => {
            "No way to sign in is set up: start smartproxy with <code>JWT_SECRET</code> (then run <code>smartproxy ui token</code>) or <code>SMARTPROXY_ADMIN_KEY</code>."
        }
    };
    let error = error
        .map(|e| format!(r#"<p class="bad">{}</p>"#, html::esc(e)))
        .unwrap_or_default();
    let body = format!(
        r#"<section class="notice login"><h1>Sign in</h1><p>This dashboard asks for a token here ({mode}).</p><p>{how}</p>{error}
<form method="post" action="/login"><input type="hidden" name="next" value="{next}">
<label>Key or token <input type="password" name="key" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form></section>"#,
        mode = html::esc(web.security.mode.name()),
        next = html::esc(safe_next(next)),
    );
    html_response(status, html::page("Sign in", html::Nav::Bare, &body))
}

pub(super) async fn login<B>(web: &Web, peer: std::net::IpAddr, req: Request<B>) -> Response<Bytes>
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let secure = req
        .headers()
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let read = http_body_util::Limited::new(req.into_body(), FORM_LIMIT).collect();
    // A form that does not arrive in time (a stalled client) is not waited for.
    let form = match tokio::time::timeout(FORM_TIMEOUT, read).await {
        Ok(Ok(collected)) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        _ => {
            return login_page(
                web,
                Some("The form could not be read."),
                StatusCode::BAD_REQUEST,
                "/",
            );
        }
    };
    let key = query_param(&form, "key");
    let next = query_param(&form, "next");
    if let Err(wait) = web.login_throttle.admit(peer, Instant::now()) {
        let seconds = wait.as_secs() + 1;
        let mut response = login_page(
            web,
            Some(&format!(
                "Too many wrong keys: try again in {seconds} s (or use `smartproxy ui token`)."
            )),
            StatusCode::TOO_MANY_REQUESTS,
            &next,
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return response;
    }
    let now = now_s();
    let token = if web.security.is_admin_key(key.trim()) {
        web.security.issue(now, LOGIN_TTL)
    } else if web.security.verify(&key, now) {
        key.trim().to_owned()
    } else {
        web.login_throttle.failed(peer, Instant::now());
        return login_page(
            web,
            Some("That key or token is not valid here."),
            StatusCode::UNAUTHORIZED,
            &next,
        );
    };
    let mut response = redirect(safe_next(&next));
    let cookie = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        security::COOKIE,
        LOGIN_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

pub(super) fn logout() -> Response<Bytes> {
    let mut response = redirect("/login");
    let cookie = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        security::COOKIE
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
