//! `smartproxy cost`'s question: what the sessions attributed to some commits or a branch cost.
//! A session is selected by where its HEAD was at its start or its end (exact, no time window):
//! for commits, its start or end HEAD is one of them; for a branch, its start or end branch is
//! that branch in one of the repository's working trees. Its figures are its own requests'
//! (not its nested runs', which are sessions of their own and selected on their own).

use rusqlite::{Connection, params_from_iter};
use serde::Serialize;

use super::query::{SUM_COLUMNS, Totals, totals_from_row};

/// Which sessions to add up; every part given must hold.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Full commit ids; a session whose HEAD at its start or end is one of them.
    pub commits: Option<Vec<String>>,
    /// A branch name; a session whose branch at its start or end is this one.
    pub branch: Option<String>,
    /// With `branch`: only sessions in these working trees (a branch name means something
    /// only in its repository).
    pub repos: Vec<String>,
}

/// One selected session and what its own requests cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributedSession {
    pub id: String,
    pub started_ms: i64,
    pub project: Option<String>,
    pub branch: Option<String>,
    pub head: Option<String>,
    pub end_branch: Option<String>,
    pub end_head: Option<String>,
    pub totals: Totals,
}

/// `WHERE` conditions on sessions `s` for `sel`, with placeholders `{mark}N` from `first`
/// (`?` for SQLite, `$` for PostgreSQL), and their values in order. PostgreSQL's variant passes
/// lists as arrays (`= ANY`), SQLite's one placeholder per value.
pub(crate) fn conditions(sel: &Selection, mark: char, first: usize) -> (Vec<String>, Vec<Value>) {
    let mut parts = Vec::new();
    let mut values = Vec::new();
    let mut n = first;
    let mut list = |values: &mut Vec<Value>, items: &[String]| -> String {
        if mark == '$' {
            values.push(Value::List(items.to_vec()));
            n += 1;
            format!("= ANY(${}::text[])", n - 1)
        } else {
            let marks: Vec<String> = items
                .iter()
                .map(|item| {
                    values.push(Value::Text(item.clone()));
                    n += 1;
                    format!("?{}", n - 1)
                })
                .collect();
            format!("IN ({})", marks.join(", "))
        }
    };
    if let Some(commits) = &sel.commits {
        if commits.is_empty() {
            parts.push("1 = 0".to_owned());
        } else {
            let head = list(&mut values, commits);
            let end = list(&mut values, commits);
            parts.push(format!("(s.head {head} OR s.end_head {end})"));
        }
    }
    if let Some(branch) = &sel.branch {
        let one = std::slice::from_ref(branch);
        let start = list(&mut values, one);
        let end = list(&mut values, one);
        parts.push(format!("(s.branch {start} OR s.end_branch {end})"));
        if !sel.repos.is_empty() {
            let repos = list(&mut values, &sel.repos);
            parts.push(format!("s.repo {repos}"));
        }
    }
    (parts, values)
}

/// A value bound to a placeholder of [`conditions`].
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Text(String),
    List(Vec<String>),
}

/// The sessions `sel` selects, oldest first, each with its own requests' totals.
pub fn sessions(conn: &Connection, sel: &Selection) -> rusqlite::Result<Vec<AttributedSession>> {
    let (parts, values) = conditions(sel, '?', 1);
    let clause = if parts.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", parts.join(" AND "))
    };
    let sql = format!(
        "SELECT sid, MIN(started), MIN(project), MIN(branch), MIN(head), MIN(end_branch),
             MIN(end_head), {SUM_COLUMNS}
         FROM (SELECT s.id AS sid, s.started_ms AS started, s.project AS project,
                 s.branch AS branch, s.head AS head, s.end_branch AS end_branch,
                 s.end_head AS end_head, u.requests AS n, u.ok AS ok,
                 u.prompt_tokens AS prompt, u.completion_tokens AS completion,
                 u.cached_tokens AS cached, u.cost_usd AS cost, u.unpriced AS unpriced,
                 u.estimated AS estimated, u.cache_write_tokens AS cache_write,
                 u.subscription_usd AS subscription, u.simulated_usd AS simulated
             FROM sessions s LEFT JOIN usage u ON u.session_id = s.id {clause})
         GROUP BY sid ORDER BY MIN(started), sid"
    );
    let args = values.into_iter().map(|v| match v {
        Value::Text(t) => t,
        // SQLite's variant binds one value per placeholder, never a list.
        Value::List(items) => items.join(","),
    });
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |row| {
        let id: String = row.get(0)?;
        Ok(AttributedSession {
            totals: totals_from_row(id.clone(), row, 7)?,
            id,
            started_ms: row.get(1)?,
            project: row.get(2)?,
            branch: row.get(3)?,
            head: row.get(4)?,
            end_branch: row.get(5)?,
            end_head: row.get(6)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_in_each_dialect() {
        let sel = Selection {
            commits: Some(vec!["a".into(), "b".into()]),
            branch: Some("main".into()),
            repos: vec!["/r".into()],
        };
        let (sqlite, values) = conditions(&sel, '?', 1);
        assert_eq!(
            sqlite,
            [
                "(s.head IN (?1, ?2) OR s.end_head IN (?3, ?4))",
                "(s.branch IN (?5) OR s.end_branch IN (?6))",
                "s.repo IN (?7)"
            ]
        );
        assert_eq!(values.len(), 7);
        let (pg, values) = conditions(&sel, '$', 1);
        assert_eq!(
            pg[0],
            "(s.head = ANY($1::text[]) OR s.end_head = ANY($2::text[]))"
        );
        assert_eq!(pg[2], "s.repo = ANY($5::text[])");
        assert_eq!(values.len(), 5);
        // No commits in a range: nothing matches (never everything).
        let empty = Selection {
            commits: Some(Vec::new()),
            ..Selection::default()
        };
        assert_eq!(conditions(&empty, '?', 1).0, ["1 = 0"]);
    }
}
