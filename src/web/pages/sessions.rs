//! `/sessions`: every session, 50 a page (keyset paging: `after=` is the last row's sort value
//! and id), filtered by tag, program, project, status, start day and cost, sorted by start, cost or
//! requests; the filter form, and downloads of every matching session.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::ledger::query::SessionRow;
use crate::ledger::session_list::{SessionList, SessionQuery, SessionSort, SessionStatus};
use crate::web::download;
use crate::web::html::{self, Nav, esc};
use crate::web::range::{self, Range};

/// Sessions on a page.
pub const PAGE: usize = 50;

/// The filters as the query string gave them (text, for the form and the links).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub tag: String,
    pub program: String,
    pub project: String,
    pub status: String,
    pub min_cost: String,
    pub sort: String,
    pub range: Option<Range>,
}

impl Filters {
    /// The query as the ledger takes it (without range bounds or cursor), or a sentence for a 400.
    pub fn query(&self) -> Result<SessionQuery, String> {
        let text = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
        let status = match self.status.as_str() {
            "" => None,
            "running" => Some(SessionStatus::Running),
            "ok" => Some(SessionStatus::Ok),
            "failed" => Some(SessionStatus::Failed),
            other => {
                return Err(format!(
                    "status={other} is not a status: use running, ok or failed"
                ));
            }
        };
        let sort = match self.sort.as_str() {
            "" | "started" => SessionSort::Started,
            "cost" => SessionSort::Cost,
            "requests" => SessionSort::Requests,
            other => {
                return Err(format!(
                    "sort={other} is not a sort: use started, cost or requests"
                ));
            }
        };
        let min_cost_usd = match self.min_cost.as_str() {
            "" => None,
            text => match text.parse::<f64>() {
                Ok(usd) if usd.is_finite() && usd >= 0.0 => Some(usd),
                _ => {
                    return Err(format!(
                        "min_cost={text} is not an amount: give dollars, like 0.50"
                    ));
                }
            },
        };
        Ok(SessionQuery {
            tag: text(&self.tag),
            program: text(&self.program),
            project: text(&self.project),
            status,
            min_cost_usd,
            sort,
            limit: PAGE,
            ..SessionQuery::default()
        })
    }

    /// The page's parameters (not the cursor), as a query string.
    pub fn query_string(&self) -> String {
        let mut parts: Vec<String> = [
            ("tag", &self.tag),
            ("program", &self.program),
            ("project", &self.project),
            ("status", &self.status),
            ("min_cost", &self.min_cost),
            ("sort", &self.sort),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", html::url_segment(v)))
        .collect();
        parts.extend(self.range.as_ref().map(Range::query));
        parts.join("&")
    }

    fn keep(&self) -> Vec<(&'static str, String)> {
        vec![
            ("tag", self.tag.clone()),
            ("program", self.program.clone()),
            ("project", self.project.clone()),
            ("status", self.status.clone()),
            ("min_cost", self.min_cost.clone()),
            ("sort", self.sort.clone()),
        ]
    }
}

/// The columns of a download, in order.
const COLUMNS: [&str; 13] = [
    "id",
    "parent_id",
    "kind",
    "tag",
    "program",
    "started_ms",
    "ended_ms",
    "status",
    "exit_code",
    "requests",
    "cost_usd",
    "unpriced",
    "simulated_usd",
];

/// Every matching session as a download.
pub fn file(rows: &[SessionRow], format: download::Format) -> download::File {
    let rows: Vec<Value> = rows
        .iter()
        .map(|s| {
            json!({
                "id": s.id, "parent_id": s.parent_id, "kind": s.kind, "tag": s.tag,
                "program": s.program, "started_ms": s.started_ms, "ended_ms": s.ended_ms,
                "status": s.status_text(), "exit_code": s.exit_code, "requests": s.requests,
                "cost_usd": s.cost_usd, "unpriced": s.unpriced, "simulated_usd": s.simulated_usd,
            })
        })
        .collect();
    download::file("sessions", format, &COLUMNS, &rows)
}

pub fn render(list: &SessionList, filters: &Filters) -> String {
    let mut body = String::from("<h1>Sessions</h1>\n");
    body.push_str(&range::picker(
        "/sessions",
        filters.range.as_ref(),
        &filters.keep(),
    ));
    body.push_str(&form(filters));
    let query = filters.query_string();
    body.push_str(&download::links("/sessions", &query));
    let rows: Vec<(usize, SessionRow)> = list.sessions.iter().map(|s| (0, s.clone())).collect();
    body.push_str(r#"<section id="session-list">"#);
    body.push_str(&super::overview::sessions_table(&rows));
    body.push_str("</section>\n");
    if let Some(after) = &list.next_after {
        let sep = if query.is_empty() { "" } else { "&" };
        let _ = write!(
            body,
            r#"<p><a id="next-page" href="/sessions?{}">Next {PAGE} sessions</a></p>"#,
            esc(&format!("{query}{sep}after={}", html::url_segment(after))),
        );
    }
    html::page("Sessions", Nav::Sessions, &body)
}

/// The filter form: tag, program, project, status, minimum cost, sort; the range rides along hidden.
fn form(f: &Filters) -> String {
    let select = |name: &str, current: &str, options: &[(&str, &str)]| {
        let mut out = format!(r#"<select name="{name}">"#);
        for (value, label) in options {
            let selected = if *value == current { " selected" } else { "" };
            let _ = write!(out, r#"<option value="{value}"{selected}>{label}</option>"#);
        }
        out.push_str("</select>");
        out
    };
    let hidden = f.range.as_ref().map_or_else(String::new, |r| match r.preset {
        Some(name) => format!(r#"<input type="hidden" name="range" value="{name}">"#),
        None => format!(
            r#"<input type="hidden" name="from" value="{}"><input type="hidden" name="to" value="{}">"#,
            r.from, r.to
        ),
    });
    format!(
        r#"<form method="get" action="/sessions" class="filters" id="session-filters">{hidden}<label>Tag <input name="tag" value="{tag}"></label> <label>Program <input name="program" value="{program}"></label> <label>Project <input name="project" value="{project}"></label> <label>Status {status}</label> <label>Min cost $ <input name="min_cost" inputmode="decimal" size="6" value="{min}"></label> <label>Sort by {sort}</label> <button type="submit">Filter</button> <a href="/sessions">Clear</a></form>
"#,
        tag = esc(&f.tag),
        program = esc(&f.program),
        project = esc(&f.project),
        min = esc(&f.min_cost),
        status = select(
            "status",
            &f.status,
            &[
                ("", "any"),
                ("running", "running"),
                ("ok", "exit 0"),
                ("failed", "failed exit")
            ]
        ),
        sort = select(
            "sort",
            &f.sort,
            &[("", "newest"), ("cost", "cost"), ("requests", "requests")]
        ),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_carry_along() {
        let f = Filters {
            tag: "a b".to_owned(),
            project: "web".to_owned(),
            status: "failed".to_owned(),
            min_cost: "0.5".to_owned(),
            sort: "cost".to_owned(),
            ..Filters::default()
        };
        let q = f.query().unwrap();
        assert_eq!(q.status, Some(SessionStatus::Failed));
        assert_eq!(q.sort, SessionSort::Cost);
        assert_eq!(q.min_cost_usd, Some(0.5));
        assert_eq!(q.project.as_deref(), Some("web"));
        assert_eq!(
            f.query_string(),
            "tag=a%20b&project=web&status=failed&min_cost=0.5&sort=cost"
        );
        let bad = |f: Filters| f.query().unwrap_err();
        assert!(
            bad(Filters {
                status: "x".into(),
                ..Filters::default()
            })
            .contains("running, ok or failed")
        );
        assert!(
            bad(Filters {
                min_cost: "-1".into(),
                ..Filters::default()
            })
            .contains("dollars")
        );
        assert!(
            bad(Filters {
                sort: "x".into(),
                ..Filters::default()
            })
            .contains("started, cost")
        );
        let list = SessionList {
            sessions: vec![SessionRow {
                id: "<s>".into(),
                ..SessionRow::default()
            }],
            next_after: Some("5~<s>".into()),
        };
        let page = render(&list, &f);
        assert!(page.contains("after=5~%3Cs%3E"), "{page}");
        assert!(page.contains(r#"<option value="cost" selected>"#), "{page}");
        let csv = file(&list.sessions, download::Format::Csv);
        assert!(csv.body.starts_with("id,parent_id,kind"), "{}", csv.body);
    }
}
