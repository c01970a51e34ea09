//! `/sessions/{id}`: a session, where it sits in its tree (parents above, nested runs below),
//! totals over the tree, and its own requests newest first, a page at a time.

use std::fmt::Write as _;

use crate::ledger::pages::SessionPage;
use crate::web::html::{self, Nav, esc};

pub fn render(p: &SessionPage) -> String {
    let s = &p.session;
    let mut body = String::new();
    if !p.ancestors.is_empty() {
        body.push_str(r#"<nav class="crumbs">"#);
        for a in p.ancestors.iter().rev() {
            let _ = write!(body, "{} › ", html::session_link(&a.id));
        }
        let _ = write!(body, "{}</nav>", esc(&s.id));
    }
    let _ = write!(body, r#"<h1>Session <code>{}</code></h1>"#, esc(&s.id));
    // A running session's page updates itself (live.js) until the session ends.
    if s.ended_ms.is_none() && !s.lost {
        body.push_str(html::LIVE);
    }
    let status = match (s.ended_ms, s.exit_code) {
        (None, _) if s.lost => r#"<span class="badge bad">ended (lost)</span>"#.to_owned(),
        (None, _) => r#"<span class="badge run">running</span>"#.to_owned(),
        (Some(_), Some(0)) => r#"<span class="badge ok">exit 0</span>"#.to_owned(),
        (Some(_), Some(code)) => format!(r#"<span class="badge bad">exit {code}</span>"#),
        (Some(_), None) => "ended".to_owned(),
    };
    let ended = s.ended_ms.map_or_else(|| "–".to_owned(), html::time_cell);
    let took = s.ended_ms.map_or_else(
        || "–".to_owned(),
        |e| crate::format::duration(e - s.started_ms),
    );
    let _ = write!(
        body,
        r#"<dl class="fields">
<dt>kind</dt><dd>{kind}</dd><dt>tag</dt><dd>{tag}</dd><dt>program</dt><dd>{program}</dd>
<dt>directory</dt><dd>{cwd}</dd><dt>pid</dt><dd>{pid}</dd><dt>status</dt><dd>{status}</dd>
<dt>started</dt><dd>{started}</dd><dt>ended</dt><dd>{ended}</dd><dt>duration</dt><dd>{took}</dd>
<dt>budget</dt><dd>{budget}</dd><dt>parent</dt><dd>{parent}</dd>
<dt>project</dt><dd>{project}</dd><dt>repository</dt><dd>{repo}</dd>
<dt>git at start</dt><dd>{git_start}</dd><dt>git at end</dt><dd>{git_end}</dd>
</dl>"#,
        project = html::opt_text(s.project.as_deref()),
        repo = html::opt_text(s.repo.as_deref()),
        git_start = git_position(s.branch.as_deref(), s.head.as_deref()),
        git_end = git_position(s.end_branch.as_deref(), s.end_head.as_deref()),
        kind = esc(&s.kind),
        tag = html::opt_text(s.tag.as_deref()),
        program = html::opt_text(s.program.as_deref()),
        cwd = html::opt_text(s.cwd.as_deref()),
        pid = s.pid.map_or_else(|| "–".to_owned(), |p| p.to_string()),
        started = html::time_cell(s.started_ms),
        budget = s
            .budget_usd
            .map_or_else(|| "none".to_owned(), |b| html::money(Some(b))),
        parent = s
            .parent_id
            .as_deref()
            .map_or_else(|| "–".to_owned(), html::session_link),
    );
    let t = &p.totals;
    let _ = write!(
        body,
        r#"<section class="cards"><div class="card" id="totals"><h2>Total{scope}</h2><p class="big">{cost}</p>{details}</div></section>"#,
        scope = if p.tree.len() > 1 {
            ", nested runs included"
        } else {
            ""
        },
        cost = html::esc(&crate::format::cost_marked(t.known_cost(), t.unpriced)),
        details = super::totals_lines(t),
    );
    if p.tree.len() > 1 {
        body.push_str(r#"<section><h2>Session tree</h2>"#);
        body.push_str(&super::overview::sessions_table(&p.tree));
        body.push_str("</section>");
    }
    let _ = write!(
        body,
        r#"<section><h2>Requests of this session{}</h2>"#,
        if p.tree.len() > 1 {
            " (nested runs' requests are on their own pages)"
        } else {
            ""
        }
    );
    // Searching and paging both ways is `/requests`' job: the same form leads there.
    body.push_str(&super::requests::form(&super::requests::Filters {
        session: s.id.clone(),
        ..Default::default()
    }));
    let _ = write!(
        body,
        r#"<p><a id="all-requests" href="/requests?session={}">All {} requests of this session, searchable →</a></p>"#,
        html::url_segment(&s.id),
        s.requests
    );
    body.push_str(&super::requests_table(&p.requests, false));
    if let Some(before) = &p.next_before {
        let _ = write!(
            body,
            r#"<p><a class="more" href="/sessions/{}?before={}">Older requests →</a></p>"#,
            html::url_segment(&s.id),
            html::url_segment(before)
        );
    }
    body.push_str("</section>");
    html::page(&format!("Session {}", s.id), Nav::None, &body)
}

/// `branch @ 1a2b3c4d5e6f`, `detached @ ...`, or `–` when the session was in no repository.
fn git_position(branch: Option<&str>, head: Option<&str>) -> String {
    if branch.is_none() && head.is_none() {
        return "–".to_owned();
    }
    let commit = head.map_or("(no commit)", |h| h.get(..12).unwrap_or(h));
    format!(
        "<code>{} @ {}</code>",
        esc(branch.unwrap_or("detached")),
        esc(commit)
    )
}
