//! The shape of the source tree: the layers of DESIGN.md (each top-level
//! module uses only the ones below it) and no import cycle between two
//! files. Paths are read from the source text: every `crate::…`,
//! `super::…` and `self::…` path (and each item of a `use …::{…}` group)
//! outside comments and `#[cfg(test)]` code is resolved to the file that
//! defines its longest module prefix.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::harness::repo;

/// What each top-level module may use (besides itself).
const ALLOWED: &[(&str, &[&str])] = &[
    ("coap", &[]),
    ("lwm2m", &["coap"]),
    ("exchange", &["coap"]),
    ("transport", &["coap"]),
    ("server", &["coap", "lwm2m", "exchange", "transport"]),
    ("fileserver", &["coap", "lwm2m", "transport"]),
    (
        "report",
        &["coap", "lwm2m", "exchange", "transport", "server"],
    ),
    (
        "script",
        &[
            "coap",
            "lwm2m",
            "exchange",
            "transport",
            "server",
            "fileserver",
            "report",
        ],
    ),
    (
        "runner",
        &[
            "coap",
            "lwm2m",
            "exchange",
            "transport",
            "server",
            "fileserver",
            "report",
            "script",
        ],
    ),
    (
        "repl",
        &[
            "coap",
            "lwm2m",
            "exchange",
            "transport",
            "server",
            "fileserver",
            "report",
            "script",
        ],
    ),
];

struct Tree {
    /// Relative path (`server/core.rs`) → source without comments and tests.
    files: BTreeMap<String, String>,
}

impl Tree {
    fn read() -> Tree {
        let mut files = BTreeMap::new();
        let src = repo().join("src");
        walk(&src, &src, &mut files);
        Tree { files }
    }

    /// The module path of a file: `server/core.rs` → [server, core].
    fn module_of(rel: &str) -> Vec<String> {
        let mut parts: Vec<String> = rel
            .trim_end_matches(".rs")
            .split('/')
            .map(str::to_string)
            .collect();
        if matches!(
            parts.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            parts.pop();
        }
        parts
    }

    /// The file defining the longest prefix of `path`.
    fn resolve(&self, path: &[String]) -> Option<String> {
        (1..=path.len()).rev().find_map(|k| {
            let stem = path[..k].join("/");
            [format!("{stem}.rs"), format!("{stem}/mod.rs")]
                .into_iter()
                .find(|c| self.files.contains_key(c))
        })
    }

    /// Files `rel` refers to.
    fn deps(&self, rel: &str) -> BTreeSet<String> {
        let me = Self::module_of(rel);
        let text = &self.files[rel];
        let mut out = BTreeSet::new();
        let absolute = |segs: &[&str]| -> Vec<String> {
            let mut base = me.clone();
            let mut i = 0;
            match segs.first() {
                Some(&"crate") => {
                    base.clear();
                    i = 1;
                }
                Some(&"self") => i = 1,
                _ => {}
            }
            while segs.get(i) == Some(&"super") {
                base.pop();
                i += 1;
            }
            base.extend(segs[i..].iter().map(|s| s.to_string()));
            base
        };
        for path in paths(text) {
            let segs: Vec<&str> = path.split("::").collect();
            if let Some(f) = self.resolve(&absolute(&segs)) {
                out.insert(f);
            }
        }
        // `use crate::a::{b, c::d}`: each item.
        for (head, items) in use_groups(text) {
            let head: Vec<&str> = head.split("::").collect();
            let base = absolute(&head);
            for item in items {
                let mut p = base.clone();
                p.extend(item.split("::").map(str::to_string));
                if let Some(f) = self.resolve(&p) {
                    out.insert(f);
                }
            }
        }
        out.remove(rel);
        out
    }
}

fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        panic!("cannot read {}", dir.display());
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, files);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&p).unwrap();
            files.insert(rel, strip(&text));
        }
    }
}

/// The text without `//` comments and without what follows the first
/// `#[cfg(test)]` (test modules sit at the end of a file).
fn strip(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b`, `super::x` and `self::y` path in the text.
fn paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(start) {
            let i = from + at;
            from = i + start.len();
            if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
                continue;
            }
            let end = text[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(text.len(), |e| i + e);
            out.push(text[i..end].trim_end_matches(':').to_string());
        }
    }
    out
}

/// `use HEAD::{ITEMS};` groups (one level of braces).
fn use_groups(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("use ") {
        let i = from + at + 4;
        from = i;
        let Some(semi) = text[i..].find(';') else {
            break;
        };
        let stmt = &text[i..i + semi];
        let Some(brace) = stmt.find("::{") else {
            continue;
        };
        let head = stmt[..brace].trim();
        if !(head.starts_with("crate") || head.starts_with("super") || head.starts_with("self")) {
            continue;
        }
        let items = stmt[brace + 3..]
            .trim_end_matches('}')
            .split(',')
            .map(|s| {
                s.split(" as ")
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_matches(|c| c == '{' || c == '}')
                    .to_string()
            })
            .filter(|s| !s.is_empty() && s != "self")
            .collect();
        out.push((head.to_string(), items));
    }
    out
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let tree = Tree::read();
    let graph: BTreeMap<String, BTreeSet<String>> = tree
        .files
        .keys()
        .filter(|f| *f != "main.rs")
        .map(|f| (f.clone(), tree.deps(f)))
        .collect();
    // A cycle exists when a file reaches itself.
    let mut cycles = Vec::new();
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((at, trail)) = stack.pop() {
            for next in graph.get(&at).into_iter().flatten() {
                if next == start {
                    cycles.push(format!("{} -> {start}", trail.join(" -> ")));
                } else if seen.insert(next.clone()) {
                    let mut t = trail.clone();
                    t.push(next.clone());
                    stack.push((next.clone(), t));
                }
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let tree = Tree::read();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for file in tree.files.keys() {
        let top = file.split('/').next().unwrap_or("").trim_end_matches(".rs");
        let Some(ok) = allowed.get(top) else {
            continue;
        };
        for dep in tree.deps(file) {
            let dep_top = dep.split('/').next().unwrap_or("").trim_end_matches(".rs");
            if dep_top != top && dep_top != "lib" && !ok.contains(&dep_top) {
                wrong.push(format!("{file} uses {dep}"));
            }
        }
    }
    assert!(wrong.is_empty(), "layer violations:\n{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_a_cycle_and_a_layer_violation() {
    // The checks above must be able to fail.
    let mut files = BTreeMap::new();
    files.insert("a/x.rs".to_string(), "use super::y::Y;".to_string());
    files.insert("a/y.rs".to_string(), "use crate::a::x::{X};".to_string());
    files.insert("a/mod.rs".to_string(), String::new());
    let tree = Tree { files };
    assert!(tree.deps("a/x.rs").contains("a/y.rs"));
    assert!(tree.deps("a/y.rs").contains("a/x.rs"));
    assert_eq!(
        paths("let v = crate::coap::udp::decode(b);"),
        ["crate::coap::udp::decode"]
    );
}
