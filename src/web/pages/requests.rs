//! `/requests`: the requests of a range of days or of one session (`?session=`), newest first,
//! 50 a page with keyset cursors both ways (`after=` older, `before=` newer), filtered by
//! model, provider, tag, outcome and HTTP status; the filter form (the session page shows it
//! too), and downloads of every matching request.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::ledger::request_list::{
    Direction, OutcomeFilter, RequestCursor, RequestList, RequestQuery,
};
use crate::ledger::request_view::RequestRow;
use crate::web::download;
use crate::web::html::{self, Nav, esc};
use crate::web::range::{self, Range};

/// Requests on a page.
pub const PAGE: usize = 50;

/// The outcomes a filter takes: `failed` (any failure) and every recorded outcome.
const OUTCOMES: [&str; 9] = [
    "ok",
    "failed",
    "upstream_error",
    "transport_error",
    "rejected",
    "budget_exceeded",
    "loop_detected",
    "client_closed",
    "proxy_stopped",
];

/// The filters as the query string gave them (text, for the form and the links).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub session: String,
    pub model: String,
    pub provider: String,
    pub tag: String,
    pub outcome: String,
    pub status: String,
    pub range: Option<Range>,
}

impl Filters {
    /// The query as the ledger takes it (without range bounds or cursor), or a sentence for a 400.
    pub fn query(&self) -> Result<RequestQuery, String> {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let outcome = match self.outcome.as_str() {
            "" => None,
            "failed" => Some(OutcomeFilter::Failed),
            known if OUTCOMES.contains(&known) => Some(OutcomeFilter::Is(known.to_owned())),
            other => {
                return Err(format!(
                    "outcome={other} is not an outcome: use one of {}",
                    OUTCOMES.join(", ")
                ));
            }
        };
        let status = match self.status.trim() {
            "" => None,
            code => match code.parse::<i64>() {
                Ok(n) if (100..=599).contains(&n) => Some(n),
                _ => {
                    return Err(format!(
                        "status={code} is not an HTTP status: give a code like 429"
                    ));
                }
            },
        };
        Ok(RequestQuery {
            session: text(&self.session),
            model: text(&self.model),
            provider: text(&self.provider),
            tag: text(&self.tag),
            outcome,
            status,
            limit: PAGE,
            ..RequestQuery::default()
        })
    }

    fn pairs(&self) -> [(&'static str, &String); 6] {
        [
            ("session", &self.session),
            ("model", &self.model),
            ("provider", &self.provider),
            ("tag", &self.tag),
            ("outcome", &self.outcome),
            ("status", &self.status),
        ]
    }

    /// The page's parameters (not the cursor), as a query string.
    pub fn query_string(&self) -> String {
        let mut parts: Vec<String> = self
            .pairs()
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", html::url_segment(v)))
            .collect();
        parts.extend(self.range.as_ref().map(Range::query));
        parts.join("&")
    }

    fn keep(&self) -> Vec<(&'static str, String)> {
        self.pairs()
            .iter()
            .map(|(k, v)| (*k, (*v).clone()))
            .collect()
    }
}

/// `after=` or `before=` as the ledger takes it, or a sentence for a 400.
pub fn direction(after: &str, before: &str) -> Result<Option<Direction>, String> {
    let parse = |name: &str, text: &str| {
        RequestCursor::parse(text)
            .ok_or_else(|| format!("{name}={text} is not a cursor: follow the page's links"))
    };
    match (after.is_empty(), before.is_empty()) {
        (true, true) => Ok(None),
        (false, true) => Ok(Some(Direction::Older(parse("after", after)?))),
        (true, false) => Ok(Some(Direction::Newer(parse("before", before)?))),
        (false, false) => Err("give after= or before=, not both".to_owned()),
    }
}

/// The columns of a download, in order.
const COLUMNS: [&str; 15] = [
    "id",
    "session_id",
    "tag",
    "started_ms",
    "model",
    "provider",
    "status",
    "outcome",
    "error_code",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_ms",
    "attempts",
    "billing",
];

/// Every matching request as a download.
pub fn file(rows: &[RequestRow], format: download::Format) -> download::File {
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "session_id": r.session_id, "tag": r.tag,
                "started_ms": r.started_ms, "model": r.model(), "provider": r.provider,
                "status": r.status, "outcome": r.outcome, "error_code": r.error_code,
                "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
                "cost_usd": r.cost_usd, "latency_ms": r.latency_ms, "attempts": r.attempts,
                "billing": r.billing,
            })
        })
        .collect();
    download::file("requests", format, &COLUMNS, &rows)
}

pub fn render(list: &RequestList, filters: &Filters) -> String {
    let mut body = String::from("<h1>Requests</h1>\n");
    if !filters.session.is_empty() {
        let _ = write!(
            body,
            r#"<p>Of session {}</p>"#,
            html::session_link(&filters.session)
        );
    }
    body.push_str(&range::picker(
        "/requests",
        filters.range.as_ref(),
        &filters.keep(),
    ));
    body.push_str(&form(filters));
    let query = filters.query_string();
    body.push_str(&download::links("/requests", &query));
    body.push_str(r#"<section id="request-list">"#);
    body.push_str(&super::requests_table(
        &list.requests,
        filters.session.is_empty(),
    ));
    body.push_str("</section>\n");
    body.push_str(&pager(list, &query));
    html::page("Requests", Nav::Requests, &body)
}

/// Newer and older page links, keeping the filters.
fn pager(list: &RequestList, query: &str) -> String {
    let sep = if query.is_empty() { "" } else { "&" };
    let link = |id: &str, name: &str, cursor: &str, label: &str| {
        format!(
            r#"<a id="{id}" href="/requests?{}">{label}</a>"#,
            esc(&format!("{query}{sep}{name}={}", html::url_segment(cursor)))
        )
    };
    let mut links = Vec::new();
    if let Some(before) = &list.prev_before {
        links.push(link("prev-page", "before", before, "← Newer"));
    }
    if let Some(after) = &list.next_after {
        links.push(link(
            "next-page",
            "after",
            after,
            &format!("Older {PAGE} →"),
        ));
    }
    if links.is_empty() {
        return String::new();
    }
    format!(r#"<p class="pager">{}</p>"#, links.join(" · "))
}

/// The filter form: model, provider, tag, outcome, status; the session and range ride along
/// hidden.
pub fn form(f: &Filters) -> String {
    let mut hidden = String::new();
    if !f.session.is_empty() {
        let _ = write!(
            hidden,
            r#"<input type="hidden" name="session" value="{}">"#,
            esc(&f.session)
        );
    }
    if let Some(r) = &f.range {
        match r.preset {
            Some(name) => {
                let _ = write!(
                    hidden,
                    r#"<input type="hidden" name="range" value="{name}">"#
                );
            }
            None => {
                let _ = write!(
                    hidden,
                    r#"<input type="hidden" name="from" value="{}"><input type="hidden" name="to" value="{}">"#,
                    r.from, r.to
                );
            }
        }
    }
    let mut outcome = String::from(r#"<select name="outcome"><option value="">any</option>"#);
    for value in OUTCOMES {
        let selected = if value == f.outcome { " selected" } else { "" };
        let _ = write!(
            outcome,
            r#"<option value="{value}"{selected}>{value}</option>"#
        );
    }
    outcome.push_str("</select>");
    let clear = if f.session.is_empty() {
        "/requests".to_owned()
    } else {
        format!("/requests?session={}", html::url_segment(&f.session))
    };
    format!(
        r#"<form method="get" action="/requests" class="filters" id="request-filters">{hidden}<label>Model <input name="model" value="{model}"></label> <label>Provider <input name="provider" value="{provider}"></label> <label>Tag <input name="tag" value="{tag}"></label> <label>Outcome {outcome}</label> <label>Status <input name="status" inputmode="numeric" size="4" value="{status}"></label> <button type="submit">Filter</button> <a href="{clear}">Clear</a></form>
"#,
        model = esc(&f.model),
        provider = esc(&f.provider),
        tag = esc(&f.tag),
        status = esc(&f.status),
        clear = esc(&clear),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_carry_along_and_page_both_ways() {
        let f = Filters {
            session: "run a".into(),
            model: "gpt-4o".into(),
            outcome: "failed".into(),
            status: "502".into(),
            ..Filters::default()
        };
        let q = f.query().unwrap();
        assert_eq!(q.outcome, Some(OutcomeFilter::Failed));
        assert_eq!((q.status, q.session.as_deref()), (Some(502), Some("run a")));
        assert_eq!(
            f.query_string(),
            "session=run%20a&model=gpt-4o&outcome=failed&status=502"
        );
        let bad = |f: Filters| f.query().unwrap_err();
        assert!(
            bad(Filters {
                outcome: "meh".into(),
                ..Filters::default()
            })
            .contains("budget_exceeded")
        );
        assert!(
            bad(Filters {
                status: "9000".into(),
                ..Filters::default()
            })
            .contains("HTTP status")
        );
        assert!(direction("1~a", "2~b").is_err());
        assert!(direction("x", "").is_err());
        assert!(matches!(
            direction("", "5~req_1"),
            Ok(Some(Direction::Newer(_)))
        ));
        let list = RequestList {
            requests: vec![RequestRow {
                id: "req_1".into(),
                outcome: "ok".into(),
                ..RequestRow::default()
            }],
            next_after: Some("5~req_1".into()),
            prev_before: Some("9~req_2".into()),
        };
        let page = render(&list, &f);
        assert!(page.contains("status=502&amp;after=5~req_1"), "{page}");
        assert!(page.contains("before=9~req_2"), "{page}");
        assert!(page.contains(r#"name="session" value="run a""#), "{page}");
        assert!(
            page.contains(r#"<option value="failed" selected>"#),
            "{page}"
        );
        let csv = file(&list.requests, download::Format::Csv);
        assert!(csv.body.starts_with("id,session_id,tag,"), "{}", csv.body);
    }
}
