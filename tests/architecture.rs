//! Data flows one way (DESIGN §1, §9): every module of `src/` imports only modules on a lower
//! floor of [`FLOORS`], and no two files import each other, directly or round a circle.
//!
//! The test reads the source as text: every `crate::…` path and every `super::…` path outside
//! comments and `#[cfg(test)]` blocks is an arrow from the file it stands in to the module it
//! names. Adding a top-level module means adding it to [`FLOORS`]; the test says so when it
//! meets one it does not know.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The floors of `src/`, from the ground up. A module may import any module on a floor below
/// its own, never one on its own floor or above.
const FLOORS: &[&[&str]] = &[
    // Ground: time, durations, retry policy and the embedded defaults import nothing.
    &["clock", "duration", "retry", "shipped"],
    // The vocabulary: records, events, deliveries, datasets; cron slots in a zone.
    &["model", "cron"],
    // What the user wrote.
    &["config"],
    // Storage, the HTTP layer, and the simulated Partner Center (which shares no guesses).
    &["store", "http", "sim"],
    &["auth"],
    &["sources"],
    &["detect"],
    &["notify"],
    &["templates"],
    &["rules"],
    &["digest", "health", "samples"],
    &["actions"],
    &["pipeline"],
    &["scheduler"],
    &["cli"],
];

/// Modules that only the named ones may import, whatever their floors. The simulator is the
/// test oracle: what the product shares with it proves nothing, so only the command line (the
/// `demo` and `simulate` commands) starts it.
const ONLY_FROM: &[(&str, &[&str])] = &[("sim", &["cli"])];

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|floor| floor.contains(&module))
}

/// `src/notify/teams/card.rs` → `["notify", "teams", "card"]`; `mod.rs` names its folder.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" && stem != "main" {
        parts.push(stem.to_string());
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file with comments, string literals and `#[cfg(test)]` items blanked out,
/// line numbers kept.
fn code_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block_comment = 0usize;
    for line in text.lines() {
        let mut code = String::new();
        let mut chars = line.chars().peekable();
        let mut in_string = false;
        while let Some(c) = chars.next() {
            if in_block_comment > 0 {
                if c == '*' && chars.peek() == Some(&'/') {
                    chars.next();
                    in_block_comment -= 1;
                } else if c == '/' && chars.peek() == Some(&'*') {
                    chars.next();
                    in_block_comment += 1;
                }
                continue;
            }
            if in_string {
                if c == '\\' {
                    chars.next();
                } else if c == '"' {
                    in_string = false;
                    code.push('"');
                }
                continue;
            }
            match c {
                '/' if chars.peek() == Some(&'/') => break,
                '/' if chars.peek() == Some(&'*') => {
                    chars.next();
                    in_block_comment += 1;
                }
                '"' => {
                    in_string = true;
                    code.push('"');
                }
                // A char literal such as '{' must not count as a brace; a lifetime stays.
                '\'' => {
                    let mut ahead = chars.clone();
                    match (ahead.next(), ahead.next()) {
                        (Some('\\'), Some(_)) => {
                            chars.next();
                            chars.next();
                            for c in chars.by_ref() {
                                if c == '\'' {
                                    break;
                                }
                            }
                        }
                        (Some(_), Some('\'')) => {
                            chars.next();
                            chars.next();
                        }
                        _ => code.push(c),
                    }
                }
                _ => code.push(c),
            }
        }
        out.push(code);
    }
    // Blank every item that follows `#[cfg(test)]`, by brace depth.
    let mut i = 0;
    while i < out.len() {
        if out[i].trim() == "#[cfg(test)]" {
            let mut depth = 0i64;
            let mut opened = false;
            let mut j = i;
            while j < out.len() {
                for c in out[j].chars() {
                    match c {
                        '{' => {
                            depth += 1;
                            opened = true;
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                }
                let ends_without_body = !opened && out[j].trim_end().ends_with(';');
                out[j].clear();
                if (opened && depth <= 0) || ends_without_body {
                    break;
                }
                j += 1;
            }
            i = j;
        }
        i += 1;
    }
    out
}

/// Every path a line names through `crate::` or `super::`, made absolute (segments of
/// lowercase words; a `{…}` group expands to each of its members).
fn paths_in(line: &str, here: &[String]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < line.len() {
        if !line.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let rest = &line[i..];
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let is_path_start =
            boundary && (rest.starts_with("crate::") || rest.starts_with("super::"));
        if !is_path_start {
            i += 1;
            continue;
        }
        let (mut base, mut pos) = if rest.starts_with("crate::") {
            (Vec::new(), i + "crate::".len())
        } else {
            let mut base = here.to_vec();
            let mut pos = i;
            while line[pos..].starts_with("super::") {
                base.pop();
                pos += "super::".len();
            }
            (base, pos)
        };
        if line[pos..].starts_with('{') {
            let close = line[pos..].find('}').map_or(line.len(), |c| pos + c);
            for member in line[pos + 1..close].split(',') {
                let segs = segments(member.trim());
                if !segs.is_empty() {
                    let mut p = base.clone();
                    p.extend(segs);
                    found.push(p);
                }
            }
            i = close;
            continue;
        }
        let segs = segments(&line[pos..]);
        pos += segs.iter().map(|s| s.len()).sum::<usize>();
        base.extend(segs);
        found.push(base);
        i = pos.max(i + 1);
    }
    found
}

/// Who imports whom: for each file's module, the modules it names and the first place it does.
type Graph = BTreeMap<Vec<String>, BTreeMap<Vec<String>, (String, usize)>>;

/// `notify::teams::Card` → `["notify", "teams", "Card"]` stops at `Card`: module names are
/// lowercase, and a segment followed by anything but `::` ends the path.
fn segments(text: &str) -> Vec<String> {
    let mut segs = Vec::new();
    for seg in text.split("::") {
        let name: String = seg
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            break;
        }
        let whole = name.len() == seg.len();
        segs.push(name);
        if !whole {
            break;
        }
    }
    segs
}

struct Arrow {
    file: String,
    line: usize,
    from: Vec<String>,
    to: Vec<String>,
}

fn arrows() -> (Vec<Arrow>, BTreeSet<Vec<String>>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_path(&src, f)).collect();
    let mut arrows = Vec::new();
    for file in &files {
        let here = module_path(&src, file);
        let text = std::fs::read_to_string(file).unwrap();
        let name = format!("src/{}", file.strip_prefix(&src).unwrap().display());
        for (n, line) in code_lines(&text).iter().enumerate() {
            for path in paths_in(line, &here) {
                // The longest prefix that is a module of its own file.
                let to = (1..=path.len())
                    .rev()
                    .map(|k| path[..k].to_vec())
                    .find(|p| modules.contains(p))
                    .unwrap_or_else(|| path[..path.len().min(1)].to_vec());
                if to.is_empty() || to == here {
                    continue;
                }
                arrows.push(Arrow {
                    file: name.clone(),
                    line: n + 1,
                    from: here.clone(),
                    to,
                });
            }
        }
    }
    (arrows, modules)
}

#[test]
fn every_import_runs_down_the_declared_floors() {
    let (arrows, modules) = arrows();
    let mut wrong = Vec::new();
    let tops: BTreeSet<&str> = modules
        .iter()
        .filter_map(|m| m.first().map(String::as_str))
        .collect();
    for top in &tops {
        if floor_of(top).is_none() {
            wrong.push(format!(
                "src/{top}: a module that is on no floor: add it to FLOORS in tests/architecture.rs"
            ));
        }
    }
    for a in &arrows {
        let (from, to) = (a.from[0].as_str(), a.to[0].as_str());
        if from == to {
            continue;
        }
        if let Some((_, allowed)) = ONLY_FROM.iter().find(|(m, _)| *m == to) {
            if !allowed.contains(&from) {
                wrong.push(format!(
                    "{}:{}: {} -> {}: only {} may import {to}",
                    a.file,
                    a.line,
                    a.from.join("::"),
                    a.to.join("::"),
                    allowed.join(", ")
                ));
            }
        }
        match (floor_of(from), floor_of(to)) {
            (Some(f), Some(t)) if t < f => {}
            (Some(f), Some(t)) => wrong.push(format!(
                "{}:{}: {} -> {} runs {} (floor {f} imports floor {t})",
                a.file,
                a.line,
                a.from.join("::"),
                a.to.join("::"),
                if t == f { "sideways" } else { "up" }
            )),
            _ => {}
        }
    }
    assert!(
        wrong.is_empty(),
        "{} imports go against the floors:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn no_two_files_import_each_other_round_a_circle() {
    let (arrows, _) = arrows();
    // A folder's mod.rs may name its own children; the arrow that counts is child → parent.
    let mut graph: Graph = BTreeMap::new();
    for a in &arrows {
        if a.to.starts_with(&a.from) {
            continue;
        }
        graph
            .entry(a.from.clone())
            .or_default()
            .entry(a.to.clone())
            .or_insert((a.file.clone(), a.line));
    }
    // Tarjan's strongly connected components.
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<Vec<String>, usize>,
        low: BTreeMap<Vec<String>, usize>,
        stack: Vec<Vec<String>>,
        on_stack: BTreeSet<Vec<String>>,
        circles: Vec<Vec<Vec<String>>>,
    }
    fn visit(s: &mut State, v: &Vec<String>) {
        let i = s.index.len();
        s.index.insert(v.clone(), i);
        s.low.insert(v.clone(), i);
        s.stack.push(v.clone());
        s.on_stack.insert(v.clone());
        let next: Vec<Vec<String>> = s
            .graph
            .get(v)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for w in next {
            if !s.index.contains_key(&w) {
                visit(s, &w);
                let lw = s.low[&w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(&w) {
                let iw = s.index[&w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut circle = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(&w);
                let done = &w == v;
                circle.push(w);
                if done {
                    break;
                }
            }
            if circle.len() > 1 {
                s.circles.push(circle);
            }
        }
    }
    let mut s = State {
        graph: &graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        circles: Vec::new(),
    };
    let nodes: Vec<Vec<String>> = graph.keys().cloned().collect();
    for v in &nodes {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    let report: Vec<String> = s
        .circles
        .iter()
        .map(|circle| {
            let members: BTreeSet<&Vec<String>> = circle.iter().collect();
            let mut lines = vec![format!(
                "circle of {}:",
                circle
                    .iter()
                    .map(|m| m.join("::"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )];
            for from in circle {
                for (to, (file, line)) in &graph[from] {
                    if members.contains(to) {
                        lines.push(format!(
                            "  {file}:{line}: {} -> {}",
                            from.join("::"),
                            to.join("::")
                        ));
                    }
                }
            }
            lines.join("\n")
        })
        .collect();
    assert!(
        report.is_empty(),
        "{} import circles:\n{}",
        report.len(),
        report.join("\n")
    );
}

#[test]
fn the_reader_sees_paths_as_the_compiler_does() {
    // The floors test is only as good as its reader: check it on lines it must get right.
    let here = vec!["notify".to_string(), "teams".to_string()];
    assert_eq!(
        paths_in("use crate::config::{Secret, Every};", &here),
        vec![vec!["config".to_string()]]
    );
    assert_eq!(
        paths_in("use crate::{model::Event, clock};", &here),
        vec![vec!["model".to_string()], vec!["clock".to_string()]]
    );
    assert_eq!(
        paths_in(
            "let x = super::classify(r); super::super::store::Store::open()",
            &here
        ),
        vec![
            vec!["notify".to_string(), "classify".to_string()],
            vec!["store".to_string()]
        ]
    );
    assert!(code_lines("let s = \"crate::store\"; // crate::rules")
        .iter()
        .all(|l| paths_in(l, &here).is_empty()));
    let blanked = code_lines(
        "use crate::a;\n// use crate::b;\n#[cfg(test)]\nmod tests {\n    use crate::c;\n}\nfn f() { crate::d::x() }\n",
    );
    let seen: Vec<Vec<String>> = blanked.iter().flat_map(|l| paths_in(l, &here)).collect();
    assert_eq!(
        seen,
        vec![
            vec!["a".to_string()],
            vec!["d".to_string(), "x".to_string()]
        ]
    );
    // Braces inside char literals do not end a test module early; lifetimes are code.
    let blanked = code_lines(
        "#[cfg(test)]\nmod tests {\n    let c = '{'; let q = '\\'';\n    use crate::c;\n}\nfn f<'a>(x: &'a str) { crate::e::y() }\n",
    );
    let seen: Vec<Vec<String>> = blanked.iter().flat_map(|l| paths_in(l, &here)).collect();
    assert_eq!(seen, vec![vec!["e".to_string(), "y".to_string()]]);
}
