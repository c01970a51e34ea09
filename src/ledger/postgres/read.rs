//! The reads `run` needs from a PostgreSQL ledger: its session's totals, per model, and its
//! budget actions, in the same types the SQLite reads return (`ledger::query`), so the closing
//! summary is computed the same way on both backends.

use tokio_postgres::Client;

use super::super::query::{BudgetActions, SessionRow, Totals};
use super::super::session_parts::{KindTotals, kind_name};

/// Everything the closing summary shows about one session (and the runs started inside it).
#[derive(Debug, Clone, Default)]
pub struct SessionSummary {
    pub total: Totals,
    pub by_model: Vec<Totals>,
    pub session: Option<SessionRow>,
    pub actions: BudgetActions,
}

/// The session and every session started inside it, however deep, as interned string ids.
const TREE: &str = "WITH RECURSIVE tree(id) AS (
        SELECT $1::text UNION ALL SELECT s.id FROM sessions s JOIN tree ON s.parent_id = tree.id
    ), ids AS (SELECT st.id FROM strings st JOIN tree ON st.text = tree.id)";

/// Reads the summary of session `id` (its rows, not a running tally).
pub async fn session_summary(
    client: &Client,
    id: &str,
) -> Result<SessionSummary, tokio_postgres::Error> {
    let grouped = client
        .query(
            &format!(
                "{TREE}
                SELECT COALESCE(k.served_model, k.requested_model, '(none)'),
                    count(*), count(*) FILTER (WHERE k.outcome = 'ok'),
                    COALESCE(sum(r.prompt_tokens), 0)::bigint,
                    COALESCE(sum(r.completion_tokens), 0)::bigint,
                    COALESCE(sum(r.cached_tokens), 0)::bigint,
                    COALESCE(sum(r.cache_write_tokens), 0)::bigint,
                    sum(r.cost_nusd)::bigint,
                    count(*) FILTER (WHERE r.cost_nusd IS NULL AND k.outcome = 'ok'),
                    count(*) FILTER (WHERE r.tokens_estimated),
                    (sum(r.cost_nusd) FILTER (WHERE k.billing = 'subscription'))::bigint,
                    (sum(r.cost_nusd) FILTER (WHERE k.billing = 'simulated'))::bigint
                FROM requests r JOIN request_shapes k ON k.id = r.shape
                WHERE r.session IN (SELECT id FROM ids)
                GROUP BY 1 ORDER BY sum(r.cost_nusd) DESC NULLS LAST, count(*) DESC, 1"
            ),
            &[&id],
        )
        .await?;
    let dollars = |n: Option<i64>| n.map(|n| n as f64 / 1e9);
    let by_model: Vec<Totals> = grouped
        .iter()
        .map(|row| {
            let requests = row.get::<_, i64>(1) as u64;
            let ok = row.get::<_, i64>(2) as u64;
            let simulated_usd = dollars(row.get(11));
            // What was spent leaves the simulated part out, as `query::totals` does.
            let cost_usd = dollars(row.get(7)).map(|cost| {
                let real = cost - simulated_usd.unwrap_or(0.0);
                if real.abs() < 1e-12 { 0.0 } else { real }
            });
            Totals {
                key: row.get(0),
                requests,
                ok,
                failed: requests - ok,
                prompt_tokens: row.get::<_, i64>(3) as u64,
                completion_tokens: row.get::<_, i64>(4) as u64,
                cached_tokens: row.get::<_, i64>(5) as u64,
                cache_write_tokens: row.get::<_, i64>(6) as u64,
                cost_usd,
                unpriced: row.get::<_, i64>(8) as u64,
                estimated: row.get::<_, i64>(9) as u64,
                subscription_usd: dollars(row.get(10)),
                simulated_usd,
            }
        })
        .collect();
    let total = Totals::sum("total", &by_model);
    let actions = client
        .query_one(
            &format!(
                "{TREE}
                SELECT count(*) FILTER (WHERE r.budget_action LIKE '%refused:%'
                        AND r.budget_action NOT LIKE 'loop refused:%'),
                    count(*) FILTER (WHERE r.budget_action LIKE '%fit: max_tokens%'),
                    count(*) FILTER (WHERE r.budget_action LIKE 'downgrade:%'),
                    count(*) FILTER (WHERE r.budget_action LIKE 'loop refused:%')
                FROM requests r
                WHERE r.session IN (SELECT id FROM ids) AND r.budget_action IS NOT NULL"
            ),
            &[&id],
        )
        .await?;
    let actions = BudgetActions {
        refused: actions.get::<_, i64>(0) as u64,
        fitted: actions.get::<_, i64>(1) as u64,
        downgraded: actions.get::<_, i64>(2) as u64,
        loop_refused: actions.get::<_, i64>(3) as u64,
    };
    let session = client
        .query_opt(
            "SELECT id, parent_id, kind, tag, program, cwd, pid, started_ms, ended_ms, exit_code,
                 budget_usd
             FROM sessions WHERE id = $1",
            &[&id],
        )
        .await?
        // Its figures are the tree's (what the summary shows), not the session's own alone.
        .map(|row| SessionRow {
            id: row.get(0),
            parent_id: row.get(1),
            kind: row.get(2),
            tag: row.get(3),
            program: row.get(4),
            cwd: row.get(5),
            pid: row.get(6),
            started_ms: row.get(7),
            ended_ms: row.get(8),
            exit_code: row.get::<_, Option<i32>>(9).map(i64::from),
            budget_usd: row.get(10),
            requests: total.requests,
            cost_usd: total.cost_usd,
            unpriced: total.unpriced,
            simulated_usd: total.simulated_usd,
            lost: false,
            ..SessionRow::default()
        });
    Ok(SessionSummary {
        total,
        by_model,
        session,
        actions,
    })
}

/// The session's requests (the runs inside it included) by kind, as `session_parts::kinds`.
pub async fn kinds(client: &Client, id: &str) -> Result<Vec<KindTotals>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!(
                "{TREE}
                SELECT k.endpoint, r.stream, count(*),
                    COALESCE(sum(r.prompt_tokens), 0)::bigint,
                    COALESCE(sum(r.completion_tokens), 0)::bigint,
                    COALESCE(sum(r.cost_nusd), 0)::bigint
                FROM requests r JOIN request_shapes k ON k.id = r.shape
                WHERE r.session IN (SELECT id FROM ids)
                GROUP BY 1, 2 ORDER BY 6 DESC, 3 DESC, k.endpoint COLLATE \"C\", 2"
            ),
            &[&id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| KindTotals {
            kind: kind_name(row.get(0), row.get(1)),
            requests: row.get::<_, i64>(2) as u64,
            prompt_tokens: row.get::<_, i64>(3) as u64,
            completion_tokens: row.get::<_, i64>(4) as u64,
            spent_usd: row.get::<_, i64>(5) as f64 / 1e9,
        })
        .collect())
}

/// The runs started directly inside session `id`, oldest first, each with its own tree's
/// figures, as `session_parts::children`.
pub async fn children(client: &Client, id: &str) -> Result<Vec<SessionRow>, tokio_postgres::Error> {
    let ids: Vec<String> = client
        .query(
            "SELECT id FROM sessions WHERE parent_id = $1 ORDER BY started_ms, id COLLATE \"C\"",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::with_capacity(ids.len());
    for child in ids {
        if let Some(row) = Box::pin(session_summary(client, &child)).await?.session {
            out.push(row);
        }
    }
    Ok(out)
}
