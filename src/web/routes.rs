//! The pages that answer "where did the money go": `/breakdown`, `/sessions` and `/requests` (and their
//! `/api/...` JSON and `?format=csv|jsonl` downloads). Parses the query string, reads, renders.

use super::download::{self, Format};
use super::pages;
use super::range::{self, Range};
use super::{RenderError, Rendered, query_param};
use crate::ledger::query::Filter;
use crate::ledger::reader::LedgerReader;

/// Today as the pages' local days count it.
fn today() -> chrono::NaiveDate {
    chrono::Local::now().date_naive()
}

/// The range a query string asks for (`default` when none), or its 400.
fn range_of(query: &str, default: &'static str) -> Result<Range, String> {
    range::parse(
        &query_param(query, "range"),
        &query_param(query, "from"),
        &query_param(query, "to"),
        today(),
        default,
    )
}

/// The requests that started on the range's local days.
fn filter_of(range: &Range) -> Filter {
    Filter {
        since_ms: Some(super::local_midnight(range.from)),
        until_ms: Some(super::local_midnight(range.to + chrono::Days::new(1))),
        ..Filter::default()
    }
}

/// `/breakdown`: `?by=`, the range, `format=`.
pub(super) fn breakdown(
    conn: Option<&LedgerReader>,
    api: bool,
    query: &str,
) -> Result<Rendered, RenderError> {
    let parsed = range_of(query, "7d").and_then(|range| {
        let (by, group) = pages::breakdown::group(&query_param(query, "by"))?;
        let format = Format::parse(&query_param(query, "format"))?;
        Ok((range, by, group, format))
    });
    let (range, by, group, format) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => return Ok(Rendered::BadRequest(message)),
    };
    let rows = match conn {
        Some(conn) => conn.grouped(&filter_of(&range), group)?,
        None => Vec::new(),
    };
    let breakdown = pages::breakdown::Breakdown::new(by, &range, rows);
    Ok(match format {
        Some(format) => Rendered::File(breakdown.file(format)),
        None if api => Rendered::Json(serde_json::to_value(&breakdown)?),
        None => Rendered::Html(pages::breakdown::render(&breakdown, &range)),
    })
}

/// `/trends`: `?every=hour|day|month`, the range, `format=`.
pub(super) fn trends(
    conn: Option<&LedgerReader>,
    api: bool,
    query: &str,
) -> Result<Rendered, RenderError> {
    let parsed = range_of(query, "30d").and_then(|range| {
        let every = pages::trends::every(&query_param(query, "every"), &range)?;
        let format = Format::parse(&query_param(query, "format"))?;
        Ok((range, every, format))
    });
    let (range, every, format) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => return Ok(Rendered::BadRequest(message)),
    };
    let cap = crate::ledger::pages::LATENCY_SAMPLE;
    let (rows, latencies) = match conn {
        Some(conn) => {
            let filter = filter_of(&range);
            (
                conn.grouped(&filter, every.1)?,
                conn.latencies(&filter, cap + 1)?,
            )
        }
        None => (Vec::new(), Vec::new()),
    };
    let trends = pages::trends::Trends::new(every, &range, rows, latencies, cap);
    Ok(match format {
        Some(format) => Rendered::File(trends.file(format)),
        None if api => Rendered::Json(serde_json::to_value(&trends)?),
        None => Rendered::Html(pages::trends::render(&trends, &range)),
    })
}

/// A file download's response headers: its type and `attachment` with its name.
pub(super) fn file_headers(file: &download::File) -> [(http::HeaderName, String); 2] {
    [
        (
            http::header::CONTENT_TYPE,
            file.format.content_type().to_owned(),
        ),
        (
            http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", file.name.replace('"', "")),
        ),
    ]
}

/// Rows a download holds at most (a page of the list is `pages::sessions::PAGE`).
const DOWNLOAD_MAX: usize = 100_000;

/// `/sessions`: the filters, an optional range, `sort=`, `after=`, `format=`.
pub(super) fn sessions(
    conn: Option<&LedgerReader>,
    api: bool,
    query: &str,
) -> Result<Rendered, RenderError> {
    let param = |name: &str| query_param(query, name);
    let any_range = ["range", "from", "to"].iter().any(|n| !param(n).is_empty());
    let parsed = (|| {
        let range = any_range.then(|| range_of(query, "7d")).transpose()?;
        let filters = pages::sessions::Filters {
            tag: param("tag"),
            program: param("program"),
            project: param("project"),
            status: param("status"),
            min_cost: param("min_cost"),
            sort: param("sort"),
            range,
        };
        let mut wanted = filters.query()?;
        if let Some(range) = &filters.range {
            let bounds = filter_of(range);
            (wanted.since_ms, wanted.until_ms) = (bounds.since_ms, bounds.until_ms);
        }
        let after = param("after");
        if !after.is_empty() {
            wanted.after = Some(
                crate::ledger::session_list::Cursor::parse(&after, wanted.sort).ok_or_else(
                    || format!("after={after} is not a cursor: follow the page's Next link"),
                )?,
            );
        }
        Ok::<_, String>((filters, wanted, Format::parse(&param("format"))?))
    })();
    let (filters, mut wanted, format) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => return Ok(Rendered::BadRequest(message)),
    };
    let Some(conn) = conn else {
        let empty = crate::ledger::session_list::SessionList::default();
        return Ok(match format {
            Some(format) => Rendered::File(pages::sessions::file(&[], format)),
            None if api => Rendered::Json(serde_json::to_value(&empty)?),
            None => Rendered::Html(pages::sessions::render(&empty, &filters)),
        });
    };
    let Some(format) = format else {
        let list = conn.session_list(&wanted)?;
        return Ok(if api {
            Rendered::Json(serde_json::to_value(&list)?)
        } else {
            Rendered::Html(pages::sessions::render(&list, &filters))
        });
    };
    // A download holds every matching session from the cursor on (up to `DOWNLOAD_MAX`), in
    // one read: paging would add the roll-up up again for every page.
    wanted.limit = DOWNLOAD_MAX;
    let rows = conn.session_list(&wanted)?.sessions;
    Ok(Rendered::File(pages::sessions::file(&rows, format)))
}

/// `/requests`: `session=` or a range (today by default), the filters, `after=` or `before=`,
/// `format=`.
pub(super) fn requests(
    conn: Option<&LedgerReader>,
    api: bool,
    query: &str,
) -> Result<Rendered, RenderError> {
    let param = |name: &str| query_param(query, name);
    let session = param("session");
    let any_range = ["range", "from", "to"].iter().any(|n| !param(n).is_empty());
    let parsed = (|| {
        // A session's requests are all of them unless a range is asked for; else today's.
        let range = (any_range || session.is_empty())
            .then(|| range_of(query, "today"))
            .transpose()?;
        let filters = pages::requests::Filters {
            session: session.clone(),
            model: param("model"),
            provider: param("provider"),
            tag: param("tag"),
            outcome: param("outcome"),
            status: param("status"),
            range,
        };
        let mut wanted = filters.query()?;
        if let Some(range) = &filters.range {
            let bounds = filter_of(range);
            (wanted.since_ms, wanted.until_ms) = (bounds.since_ms, bounds.until_ms);
        }
        wanted.from = pages::requests::direction(&param("after"), &param("before"))?;
        Ok::<_, String>((filters, wanted, Format::parse(&param("format"))?))
    })();
    let (filters, mut wanted, format) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => return Ok(Rendered::BadRequest(message)),
    };
    if format.is_some() {
        // A download holds every matching request from the cursor on (up to `DOWNLOAD_MAX`).
        wanted.limit = DOWNLOAD_MAX;
    }
    let list = match conn {
        Some(conn) => conn.request_list(&wanted)?,
        None => crate::ledger::request_list::RequestList::default(),
    };
    Ok(match format {
        Some(format) => Rendered::File(pages::requests::file(&list.requests, format)),
        None if api => Rendered::Json(serde_json::to_value(&list)?),
        None => Rendered::Html(pages::requests::render(&list, &filters)),
    })
}
