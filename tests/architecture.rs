//! The house plan (src/ARCHITECTURE.md, rule 1) checked against the source tree: no import
//! cycle between top-level modules nor between the files of one folder, dependencies that point
//! one way between the layers, and no I/O (files, network, processes, threads, async runtime,
//! SQLite, the clock, the environment) inside the modules the plan calls pure.
//!
//! A small scanner over the text, not a parser: comments, string and char literals and
//! `#[cfg(test)]` items (and `*_tests.rs` files) are blanked out first, then every
//! `crate::`/`super::`/`self::` path (in `use` trees too, groups expanded) is resolved to the
//! module it names. A path to a name a folder's `mod.rs` re-exports (`pub use child::Name`)
//! counts as a path to that child. A folder's own `mod.rs` is not a node of that folder's graph:
//! it declares and re-exports its children, so child -> parent -> child is its job, not a ring.

#![allow(
    clippy::unwrap_used,
    reason = "a test: a failed setup step should fail it"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Rule 1's layers, highest first: a module may import modules of its own layer or below, never
/// above. Modules the plan does not list sit where their imports put them (see ARCHITECTURE.md).
const LAYERS: &[&[&str]] = &[
    &["cli"],
    &["proxy", "session", "dash", "web"],
    &[
        "routing",
        "budget",
        "cache",
        "capture",
        "cassette",
        "ledger",
        "providers",
        "notify",
    ],
    &[
        "translate",
        "transform",
        "pricing",
        "wire",
        "config",
        "db",
        "format",
        "http_server",
        "http_guard",
        "private_files",
        "process",
        "printer",
        "telemetry",
        "seal",
        "key_throttle",
    ],
];

/// The modules ARCHITECTURE.md calls pure (each with everything below it).
const PURE: &[&str] = &[
    "wire",
    "translate",
    "transform",
    "pricing",
    "routing::plan",
    "routing::retry",
    "budget::policy",
    "budget::window",
    "cache::key",
    "session::env",
    "session::preset",
    "http_guard",
    "dash::state",
    "cache::assemble",
    "cache::replay",
    "cassette::key",
    "cassette::format",
];

/// Paths that do I/O: a pure module names none of them (`std::net`'s address types are plain
/// values and allowed; its sockets are not). `std::env::var` is I/O too (the
/// environment is read by the caller and passed in); `std::time::Instant`/`SystemTime` as
/// types are fine, only asking the clock (`::now`) is not.
const IO_PATHS: &[&str] = &[
    "std::fs",
    "std::net::TcpStream",
    "std::net::TcpListener",
    "std::net::UdpSocket",
    "std::net::ToSocketAddrs",
    "std::process",
    "std::thread",
    "std::env::var",
    "std::env::var_os",
    "std::env::vars",
    "std::env::vars_os",
    "std::env::set_var",
    "std::env::remove_var",
    "std::env::current_dir",
    "std::env::home_dir",
    "std::env::temp_dir",
    "std::io::stdin",
    "std::io::stdout",
    "std::io::stderr",
    "tokio",
    "reqwest",
    "hyper_util",
    "rusqlite",
    "directories",
];

/// `Type::function` calls that read the clock or the environment, however the type was imported.
const IO_CALLS: &[(&str, &str)] = &[
    ("SystemTime", "now"),
    ("Instant", "now"),
    ("Utc", "now"),
    ("Local", "now"),
    ("env", "var"),
    ("env", "var_os"),
    ("env", "vars"),
    ("fs", "read"),
    ("fs", "read_to_string"),
    ("fs", "write"),
];

// ---------------------------------------------------------------------------------------------
// Reading the text.

/// The source with comments and the contents of string and char literals replaced by spaces,
/// newlines kept so that offsets still give line numbers.
fn blank_comments_and_literals(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let prev_ident = i > 0 && is_ident_char(chars[i - 1]);
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if (c == 'r' || (c == 'b' && next == Some('r')))
            && !prev_ident
            && raw_string_hashes(&chars, i + if c == 'b' { 2 } else { 1 }).is_some()
        {
            let start = i + if c == 'b' { 2 } else { 1 };
            let hashes = raw_string_hashes(&chars, start).unwrap_or(0);
            let body = start + hashes + 1;
            for &ch in &chars[i..body] {
                out.push(ch);
            }
            i = body;
            loop {
                if i >= chars.len() {
                    break;
                }
                if chars[i] == '"' && (0..hashes).all(|k| chars.get(i + 1 + k) == Some(&'#')) {
                    out.push('"');
                    out.extend(std::iter::repeat_n('#', hashes));
                    i += 1 + hashes;
                    break;
                }
                out.push(blank(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a, 'static).
            if next == Some('\\') {
                out.push(' ');
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    if chars[i] == '\\' {
                        out.push(' ');
                        i += 1;
                    }
                    if i < chars.len() {
                        out.push(' ');
                        i += 1;
                    }
                }
                out.push(' ');
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                out.push_str("   ");
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// At `at`, zero or more `#` then `"`: a raw string opens with that many hashes.
fn raw_string_hashes(chars: &[char], at: usize) -> Option<usize> {
    let mut n = 0;
    while chars.get(at + n) == Some(&'#') {
        n += 1;
    }
    (chars.get(at + n) == Some(&'"')).then_some(n)
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Blanks every item under a `#[cfg(test)]`-like attribute (test modules, test-only imports and
/// helpers) and returns the names of test-only `mod name;` declarations.
fn blank_test_items(text: &str) -> (String, Vec<String>) {
    let mut bytes: Vec<u8> = text.as_bytes().to_vec();
    let mut test_mods = Vec::new();
    let mut search_from = 0;
    while let Some(found) = text[search_from..].find("#[cfg(") {
        let attr_start = search_from + found;
        let Some(attr_len) = text[attr_start..].find(']') else {
            break;
        };
        let attr = &text[attr_start..attr_start + attr_len];
        search_from = attr_start + attr_len;
        if !has_word(attr, "test") || attr.contains("not(") {
            continue;
        }
        // The item runs to the first `;` or the end of the first `{...}` block at depth 0.
        let mut i = attr_start + attr_len + 1;
        let mut depth = 0i32;
        let mut end = text.len();
        while i < text.len() {
            match bytes[i] {
                b'(' | b'[' => depth += 1,
                b')' | b']' => depth -= 1,
                b';' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                b'{' if depth == 0 => {
                    let mut braces = 0;
                    while i < text.len() {
                        match bytes[i] {
                            b'{' => braces += 1,
                            b'}' => {
                                braces -= 1;
                                if braces == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        i += 1;
                    }
                    end = (i + 1).min(text.len());
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let item = &text[attr_start..end];
        if item.trim_end().ends_with(';') {
            let words: Vec<&str> = item
                .split(|c: char| !is_ident_char(c))
                .filter(|w| !w.is_empty())
                .collect();
            if let Some(pos) = words.iter().rposition(|w| *w == "mod")
                && let Some(name) = words.get(pos + 1)
            {
                test_mods.push((*name).to_string());
            }
        }
        for b in &mut bytes[attr_start..end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
        search_from = end;
    }
    // Only ASCII bytes were replaced by ASCII spaces, so this stays valid UTF-8.
    (String::from_utf8_lossy(&bytes).into_owned(), test_mods)
}

fn has_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !is_ident_char(c)).any(|w| w == word)
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    text: String,
    line: usize,
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut line = 1;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if is_ident_char(c) {
            let start = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            tokens.push(Token {
                text: chars[start..i].iter().collect(),
                line,
            });
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push(Token {
                text: "::".into(),
                line,
            });
            i += 2;
        } else {
            tokens.push(Token {
                text: c.to_string(),
                line,
            });
            i += 1;
        }
    }
    tokens
}

/// One path the file names, with the line it is on; `reexport` for those of `pub use` items.
#[derive(Debug, Clone)]
struct NamedPath {
    segments: Vec<String>,
    line: usize,
    reexport: bool,
}

const ROOTS: &[&str] = &[
    "anyhow",
    "crate",
    "super",
    "self",
    "std",
    "tokio",
    "reqwest",
    "rusqlite",
    "chrono",
    "hyper_util",
    "directories",
];

/// Every `use` tree (groups expanded, aliases dropped) and every inline path that starts at one of
/// `ROOTS`.
fn named_paths(tokens: &[Token]) -> Vec<NamedPath> {
    let mut paths = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].text.as_str();
        let prev = if i > 0 {
            tokens[i - 1].text.as_str()
        } else {
            ""
        };
        if t == "use" && prev != "::" {
            let reexport = is_pub_before(tokens, i);
            let mut j = i + 1;
            if tokens.get(j).is_some_and(|t| t.text == "::") {
                j += 1;
            }
            let mut found = Vec::new();
            let end = parse_use_tree(tokens, j, &mut Vec::new(), &mut found);
            for (segments, line) in found {
                paths.push(NamedPath {
                    segments,
                    line,
                    reexport,
                });
            }
            i = end.max(i + 1);
            continue;
        }
        if ROOTS.contains(&t)
            && prev != "::"
            && prev != "$"
            && tokens.get(i + 1).is_some_and(|n| n.text == "::")
        {
            let line = tokens[i].line;
            let mut segments = vec![t.to_string()];
            let mut j = i + 1;
            while tokens.get(j).is_some_and(|n| n.text == "::")
                && tokens
                    .get(j + 1)
                    .is_some_and(|n| n.text.chars().next().is_some_and(is_ident_char))
            {
                segments.push(tokens[j + 1].text.clone());
                j += 2;
            }
            paths.push(NamedPath {
                segments,
                line,
                reexport: false,
            });
            i = j;
            continue;
        }
        i += 1;
    }
    paths
}

/// `pub use`, `pub(crate) use`, `pub(super) use`, `pub(in path) use`.
fn is_pub_before(tokens: &[Token], use_at: usize) -> bool {
    let mut k = use_at;
    if k >= 1 && tokens[k - 1].text == ")" {
        while k > 0 && tokens[k - 1].text != "(" {
            k -= 1;
        }
        k = k.saturating_sub(1);
    }
    k >= 1 && tokens[k - 1].text == "pub"
}

/// Parses one use tree at `i` under `prefix`; returns the index after it.
fn parse_use_tree(
    tokens: &[Token],
    mut i: usize,
    prefix: &mut Vec<String>,
    found: &mut Vec<(Vec<String>, usize)>,
) -> usize {
    let depth = prefix.len();
    while let Some(t) = tokens.get(i) {
        match t.text.as_str() {
            "{" => {
                i += 1;
                loop {
                    match tokens.get(i).map(|t| t.text.as_str()) {
                        None => break,
                        Some("}") => {
                            i += 1;
                            break;
                        }
                        Some(",") => i += 1,
                        Some(_) => i = parse_use_tree(tokens, i, prefix, found),
                    }
                }
                break;
            }
            "*" => {
                found.push((prefix.clone(), t.line));
                i += 1;
                break;
            }
            text if text.chars().next().is_some_and(is_ident_char) => {
                prefix.push(text.to_string());
                i += 1;
                if tokens.get(i).is_some_and(|n| n.text == "::") {
                    i += 1;
                    continue;
                }
                if tokens.get(i).is_some_and(|n| n.text == "as") {
                    i += 2;
                }
                // `use a::b::{self}` names `a::b`.
                let mut path = prefix.clone();
                if path.last().is_some_and(|s| s == "self") && path.len() > 1 {
                    path.pop();
                }
                found.push((path, t.line));
                break;
            }
            _ => break,
        }
    }
    prefix.truncate(depth);
    i
}

// ---------------------------------------------------------------------------------------------
// The crate's modules.

struct SourceFile {
    /// Shown in messages: `src/pricing/overlay.rs`.
    shown: String,
    /// The module this file is: `["pricing", "overlay"]`; `[]` for lib.rs.
    module: Vec<String>,
    paths: Vec<NamedPath>,
    tokens: Vec<Token>,
}

struct Crate {
    files: Vec<SourceFile>,
    /// Every module of the crate, as its path.
    modules: BTreeSet<Vec<String>>,
    /// Per module: re-exported name -> the child module it comes from.
    reexports: BTreeMap<Vec<String>, BTreeMap<String, String>>,
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if !(stem == "mod" || (parts.is_empty() && (stem == "lib" || stem == "main"))) {
        parts.push(stem.to_string());
    }
    parts
}

/// Reads src/ (lib.rs's tree; main.rs is the binary and imports the library by name).
fn read_crate(src: &Path) -> Crate {
    let mut paths = Vec::new();
    rs_files(src, &mut paths);
    let mut sources = Vec::new();
    let mut test_only: BTreeSet<Vec<String>> = BTreeSet::new();
    for path in paths {
        let rel = path.strip_prefix(src).unwrap_or(&path).to_path_buf();
        if rel == Path::new("main.rs") {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap_or_default();
        let (text, test_mods) = blank_test_items(&blank_comments_and_literals(&text));
        let module = module_of(&rel);
        let parent = if rel
            .file_name()
            .is_some_and(|n| n == "mod.rs" || n == "lib.rs")
        {
            module.clone()
        } else {
            module[..module.len().saturating_sub(1)].to_vec()
        };
        for name in test_mods {
            let mut m = parent.clone();
            m.push(name);
            test_only.insert(m);
        }
        sources.push((format!("src/{}", rel.display()), module, text));
    }
    let mut files = Vec::new();
    let mut modules = BTreeSet::new();
    for (shown, module, text) in sources {
        let test_file = shown.ends_with("_tests.rs") || test_only.contains(&module);
        if test_file {
            continue;
        }
        let tokens = tokenize(&text);
        let paths = named_paths(&tokens);
        modules.insert(module.clone());
        files.push(SourceFile {
            shown,
            module,
            paths,
            tokens,
        });
    }
    let mut reexports: BTreeMap<Vec<String>, BTreeMap<String, String>> = BTreeMap::new();
    for file in &files {
        for p in file.paths.iter().filter(|p| p.reexport) {
            let Some(target) = resolve(&file.module, &p.segments, &modules) else {
                continue;
            };
            if target.len() > file.module.len() + 1 && target.starts_with(&file.module) {
                let child = target[file.module.len()].clone();
                if let Some(name) = target.last() {
                    reexports
                        .entry(file.module.clone())
                        .or_default()
                        .insert(name.clone(), child);
                }
            }
        }
    }
    Crate {
        files,
        modules,
        reexports,
    }
}

/// The absolute path a path in module `from` names, if it names something of this crate.
fn resolve(
    from: &[String],
    segments: &[String],
    modules: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let first = segments.first()?;
    let mut base: Vec<String> = match first.as_str() {
        "crate" => Vec::new(),
        "self" => from.to_vec(),
        "super" => from.to_vec(),
        _ => {
            // `use child::...` in a module names its child module (2018 paths).
            let mut m = from.to_vec();
            m.push(first.clone());
            if !modules.contains(&m) {
                return None;
            }
            from.to_vec()
        }
    };
    let mut rest = segments;
    match first.as_str() {
        "crate" | "self" => rest = &segments[1..],
        "super" => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        _ => {}
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// An edge between two siblings of `parent`, with where it comes from.
#[derive(Debug, Clone)]
struct Edge {
    parent: Vec<String>,
    from: String,
    to: String,
    at: String,
}

/// Every import between two different children of a module (the two levels of the check are
/// the crate root's children and each folder's children).
fn sibling_edges(krate: &Crate) -> Vec<Edge> {
    let mut edges = Vec::new();
    for file in &krate.files {
        for p in &file.paths {
            let Some(target) = resolve(&file.module, &p.segments, &krate.modules) else {
                continue;
            };
            let common = file
                .module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            // The file itself is the parent (a mod.rs naming its children), or the path names the
            // parent's own items: no edge between siblings.
            if common >= file.module.len() || common >= target.len() {
                continue;
            }
            let parent = file.module[..common].to_vec();
            let from = file.module[common].clone();
            let mut to = target[common].clone();
            let mut child = parent.clone();
            child.push(to.clone());
            if !krate.modules.contains(&child) {
                // A name the parent re-exports from one of its children.
                match krate.reexports.get(&parent).and_then(|r| r.get(&to)) {
                    Some(c) => to = c.clone(),
                    None => continue,
                }
            }
            if to != from {
                edges.push(Edge {
                    parent,
                    from,
                    to,
                    at: format!("{}:{}", file.shown, p.line),
                });
            }
        }
    }
    edges
}

/// The import rings of one graph, each as `a -> b -> a` with where each step is imported.
fn cycles(edges: &[Edge]) -> Vec<String> {
    let mut graph: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for e in edges {
        graph
            .entry(e.from.as_str())
            .or_default()
            .entry(e.to.as_str())
            .or_insert(e.at.as_str());
    }
    let mut reported: BTreeSet<BTreeSet<&str>> = BTreeSet::new();
    let mut out = Vec::new();
    let nodes: Vec<&str> = graph.keys().copied().collect();
    for &start in &nodes {
        // The shortest way back to `start` (breadth first), if any.
        let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut closed = None;
        while let Some(node) = queue.pop_front() {
            for &next in graph.get(node).map(|m| m.keys()).into_iter().flatten() {
                if next == start {
                    closed = Some(node);
                    queue.clear();
                    break;
                }
                if !came_from.contains_key(next) {
                    came_from.insert(next, node);
                    queue.push_back(next);
                }
            }
        }
        let Some(last) = closed else { continue };
        let mut ring = vec![last];
        while let Some(&prev) = came_from.get(ring[ring.len() - 1]) {
            if prev == start {
                break;
            }
            ring.push(prev);
        }
        ring.push(start);
        ring.reverse();
        let members: BTreeSet<&str> = ring.iter().copied().collect();
        if !reported.insert(members) {
            continue;
        }
        let mut steps = Vec::new();
        let mut names = Vec::new();
        for (k, &node) in ring.iter().enumerate() {
            let next = ring[(k + 1) % ring.len()];
            names.push(node);
            steps.push(format!(
                "{node} -> {next} at {}",
                graph.get(node).and_then(|m| m.get(next)).unwrap_or(&"?")
            ));
        }
        names.push(start);
        out.push(format!("{} ({})", names.join(" -> "), steps.join("; ")));
    }
    out
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn is_pure(module: &[String]) -> bool {
    let joined = module.join("::");
    PURE.iter()
        .any(|p| joined == *p || joined.starts_with(&format!("{p}::")))
}

/// `file:line what` for every I/O a file names.
fn io_uses(file: &SourceFile) -> Vec<String> {
    let mut found = Vec::new();
    for p in &file.paths {
        let joined = p.segments.join("::");
        if let Some(io) = IO_PATHS
            .iter()
            .find(|io| joined == **io || joined.starts_with(&format!("{io}::")))
        {
            found.push(format!("{}:{} {io} ({joined})", file.shown, p.line));
        }
    }
    let t = &file.tokens;
    for k in 0..t.len().saturating_sub(2) {
        if t[k + 1].text != "::" {
            continue;
        }
        if let Some((ty, f)) = IO_CALLS
            .iter()
            .find(|(ty, f)| t[k].text == *ty && t[k + 2].text == *f)
        {
            let line = format!("{}:{} {ty}::{f}", file.shown, t[k].line);
            let place = format!("{}:{} ", file.shown, t[k].line);
            if !found.iter().any(|l| l.starts_with(&place)) {
                found.push(line);
            }
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// The checks on the real tree.

#[test]
fn no_import_cycle_between_top_level_modules() {
    let krate = read_crate(&src_dir());
    let edges: Vec<Edge> = sibling_edges(&krate)
        .into_iter()
        .filter(|e| e.parent.is_empty())
        .collect();
    assert!(
        edges.len() > 20,
        "the scanner found too few imports: {edges:?}"
    );
    let found = cycles(&edges);
    assert!(
        found.is_empty(),
        "import cycles between top-level modules:\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn no_import_cycle_between_files_of_a_folder() {
    let krate = read_crate(&src_dir());
    let mut by_folder: BTreeMap<Vec<String>, Vec<Edge>> = BTreeMap::new();
    for e in sibling_edges(&krate) {
        if !e.parent.is_empty() {
            by_folder.entry(e.parent.clone()).or_default().push(e);
        }
    }
    assert!(
        by_folder.len() > 5,
        "the scanner found too few folders with imports"
    );
    let mut found = Vec::new();
    for (folder, edges) in &by_folder {
        for ring in cycles(edges) {
            found.push(format!("src/{}/: {ring}", folder.join("/")));
        }
    }
    assert!(
        found.is_empty(),
        "import cycles between files of one folder:\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn dependencies_point_one_way() {
    let krate = read_crate(&src_dir());
    let mut wrong = Vec::new();
    let mut unlisted = BTreeSet::new();
    for module in krate.modules.iter().filter(|m| m.len() == 1) {
        if layer_of(&module[0]).is_none() {
            unlisted.insert(module[0].clone());
        }
    }
    assert!(
        unlisted.is_empty(),
        "top-level modules with no layer in ARCHITECTURE.md rule 1 (add them there and to LAYERS): {unlisted:?}"
    );
    for e in sibling_edges(&krate).iter().filter(|e| e.parent.is_empty()) {
        if let (Some(from), Some(to)) = (layer_of(&e.from), layer_of(&e.to))
            && to < from
        {
            wrong.push(format!(
                "{} imports {}, a layer above it, at {}",
                e.from, e.to, e.at
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies pointing up (ARCHITECTURE.md rule 1):\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn pure_modules_do_no_io() {
    let krate = read_crate(&src_dir());
    let pure: Vec<&SourceFile> = krate.files.iter().filter(|f| is_pure(&f.module)).collect();
    for p in PURE {
        let path: Vec<String> = p.split("::").map(String::from).collect();
        assert!(
            krate.modules.contains(&path),
            "ARCHITECTURE.md calls {p} pure but there is no such module"
        );
    }
    let found: Vec<String> = pure.iter().flat_map(|f| io_uses(f)).collect();
    assert!(
        found.is_empty(),
        "I/O inside modules ARCHITECTURE.md calls pure (move it to the caller):\n  {}",
        found.join("\n  ")
    );
}

/// Rule 3: `anyhow` only in `cli/` (and main.rs, which is not scanned).
#[test]
fn anyhow_only_in_cli() {
    let krate = read_crate(&src_dir());
    let names_anyhow = |f: &SourceFile| f.paths.iter().any(|p| p.segments[0] == "anyhow");
    assert!(
        krate.files.iter().any(names_anyhow),
        "the scanner sees no anyhow even in cli/"
    );
    let found: Vec<String> = krate
        .files
        .iter()
        .filter(|f| f.module.first().is_none_or(|m| m != "cli"))
        .flat_map(|f| {
            f.paths
                .iter()
                .filter(|p| p.segments.first().is_some_and(|s| s == "anyhow"))
                .map(move |p| format!("{}:{}", f.shown, p.line))
        })
        .collect();
    assert!(
        found.is_empty(),
        "anyhow outside cli/ (ARCHITECTURE.md rule 3: a thiserror enum instead):\n  {}",
        found.join("\n  ")
    );
}

/// Rule 5: every store opens SQLite through `db.rs`, so every process sharing a file uses the
/// same WAL and busy settings.
#[test]
fn sqlite_is_opened_through_db_only() {
    let krate = read_crate(&src_dir());
    let mut found = Vec::new();
    for file in krate.files.iter().filter(|f| f.module != ["db"]) {
        let t = &file.tokens;
        for k in 0..t.len().saturating_sub(2) {
            if t[k].text == "Connection"
                && t[k + 1].text == "::"
                && t[k + 2].text.starts_with("open")
            {
                found.push(format!("{}:{}", file.shown, t[k].line));
            }
        }
    }
    assert!(
        found.is_empty(),
        "SQLite opened outside db.rs (ARCHITECTURE.md rule 5: use db::open or db::open_read_only):\n  {}",
        found.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// The scanner itself, on small made-up trees: each check can fail.

fn made_up_crate(name: &str, files: &[(&str, &str)]) -> Crate {
    let dir = std::env::temp_dir().join(format!(
        "smartproxy-architecture-{}-{name}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    for (path, text) in files {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&full, text).unwrap();
    }
    let krate = read_crate(&dir);
    fs::remove_dir_all(&dir).unwrap();
    krate
}

#[test]
fn scanner_names_a_ring_through_use_groups_super_and_reexports() {
    let krate = made_up_crate(
        "ring",
        &[
            ("lib.rs", "pub mod a;\npub mod b;\n"),
            ("a/mod.rs", "mod x;\nmod y;\npub use y::Thing;\n"),
            (
                "a/x.rs",
                "// use crate::b::Nothing;\nuse super::Thing;\nconst S: &str = \"crate::b::X\";\n",
            ),
            ("a/y.rs", "pub struct Thing;\nfn f() { super::x::g() }\n"),
            (
                "b.rs",
                "use crate::{a::{self, Thing as T}, c};\n#[cfg(test)]\nmod tests { use crate::b; }\n",
            ),
        ],
    );
    let edges = sibling_edges(&krate);
    let top: Vec<Edge> = edges
        .iter()
        .filter(|e| e.parent.is_empty())
        .cloned()
        .collect();
    assert_eq!(top.len(), 2, "{top:?}");
    assert!(top.iter().all(|e| e.from == "b" && e.to == "a"));
    assert!(cycles(&top).is_empty());
    let folder: Vec<Edge> = edges
        .iter()
        .filter(|e| e.parent == ["a"])
        .cloned()
        .collect();
    let rings = cycles(&folder);
    assert_eq!(rings.len(), 1, "{rings:?}");
    assert!(
        rings[0].starts_with("x -> y -> x (x -> y at src/a/x.rs:2; y -> x at src/a/y.rs:2)"),
        "{}",
        rings[0]
    );
}

#[test]
fn scanner_finds_io_by_path_group_and_clock_call_but_not_in_tests_or_text() {
    let krate = made_up_crate(
        "io",
        &[(
            "p.rs",
            "use std::{collections::HashMap, fs};\nuse std::time::Instant;\n\
         fn now() -> Instant { Instant::now() }\n// std::net::TcpStream\n\
         const T: &str = \"tokio::spawn\"; const C: char = '\"';\n\
         fn e() { let _ = std::env::var(\"X\"); }\n\
         #[cfg(test)]\nmod tests { fn t() { std::fs::read(\"x\"); } }\n",
        )],
    );
    let found = io_uses(&krate.files[0]);
    assert_eq!(
        found,
        [
            "src/p.rs:1 std::fs (std::fs)",
            "src/p.rs:6 std::env::var (std::env::var)",
            "src/p.rs:3 Instant::now",
        ],
        "{found:?}"
    );
}
