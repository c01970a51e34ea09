//! `?format=csv` and `?format=jsonl`: what a page shows as a file, with the page's filters.
//! PURE: rows in, text out; the route adds `Content-Disposition: attachment`.

use serde_json::Value;

/// A file format a page can be downloaded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    /// `format=` of a query string: `None` for the page itself, an error sentence for a 400.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        match text {
            "" | "html" => Ok(None),
            "csv" => Ok(Some(Self::Csv)),
            "jsonl" => Ok(Some(Self::Jsonl)),
            other => Err(format!(
                "format={other} is not a download format: use csv or jsonl"
            )),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Jsonl => "application/jsonl; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
        }
    }
}

/// A file to send: its name, type and text.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub name: String,
    pub format: Format,
    pub body: String,
}

/// `rows` (JSON objects) as a file: CSV with `columns` as its header (a missing value is an
/// empty cell), or one object per line.
pub fn file(name: &str, format: Format, columns: &[&str], rows: &[Value]) -> File {
    let body = match format {
        Format::Jsonl => rows.iter().map(|row| format!("{row}\n")).collect(),
        Format::Csv => {
            let mut out = columns.join(",");
            out.push('\n');
            for row in rows {
                let cells: Vec<String> = columns.iter().map(|c| cell(&row[*c])).collect();
                out.push_str(&cells.join(","));
                out.push('\n');
            }
            out
        }
    };
    File {
        name: format!("{name}.{}", format.extension()),
        format,
        body,
    }
}

/// One CSV cell: quoted when it holds a comma, quote or line break; a leading `=`, `+`, `-`
/// or `@` in text is prefixed with `'` so a spreadsheet does not run it as a formula.
fn cell(value: &Value) -> String {
    let text = match value {
        Value::Null => return String::new(),
        Value::String(s) => {
            if s.starts_with(['=', '+', '-', '@']) && s != "-" {
                format!("'{s}")
            } else {
                s.clone()
            }
        }
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// The "Download CSV / JSON Lines" links for the page at `path` with its query `query`.
pub fn links(path: &str, query: &str) -> String {
    let sep = if query.is_empty() { "" } else { "&" };
    let href = |format: &str| crate::web::html::esc(&format!("{path}?{query}{sep}format={format}"));
    format!(
        r#"<p class="download">Download <a href="{csv}" download>CSV</a> / <a href="{jsonl}" download>JSON Lines</a></p>"#,
        csv = href("csv"),
        jsonl = href("jsonl"),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_quotes_and_defuses_cells() {
        let rows = [
            json!({"key": "a,\"b\"", "n": 3, "cost": null}),
            json!({"key": "=1+1", "n": 0, "cost": 0.5}),
        ];
        let f = file("breakdown", Format::Csv, &["key", "n", "cost"], &rows);
        assert_eq!(f.name, "breakdown.csv");
        assert_eq!(f.body, "key,n,cost\n\"a,\"\"b\"\"\",3,\n'=1+1,0,0.5\n");
        let f = file("x", Format::Jsonl, &["key"], &rows);
        assert_eq!(f.body.lines().count(), 2);
        assert_eq!(
            serde_json::from_str::<Value>(f.body.lines().next().unwrap()).unwrap(),
            rows[0]
        );
        assert_eq!(
            Format::parse("xml").unwrap_err(),
            "format=xml is not a download format: use csv or jsonl"
        );
        assert!(links("/sessions", "tag=a").contains("/sessions?tag=a&amp;format=csv"));
    }
}
