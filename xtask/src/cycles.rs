//! The module-cycle check of `cargo xtask lint`: no module may import, directly or through
//! others, from a module that imports it (house rule: a module imports only from its own
//! layer or below).
//!
//! For each crate root (every target of every workspace package, from `cargo metadata`) it
//! follows `mod name;` to the module files, reads every path that names a module of the same
//! crate (`crate::a::b`, `super::`, `self::`, a child module's name; `use` groups expanded) and
//! draws an edge from the file's module to the deepest module file the path reaches. Inline
//! modules (`mod tests { use super::*; }`) belong to their file. A strongly connected component
//! of two or more modules is a cycle, reported with one loop through it.
//!
//! A reading of the source text, not of the compiler's resolution: macros and `#[path]` are
//! not followed. Enough for a layering rule, in a few milliseconds.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// One module file of a crate.
#[derive(Debug)]
struct Module {
    file: PathBuf,
    /// `net::listen`; the root is `crate`.
    path: String,
}

/// The import graph of one crate: module path → module paths it imports from.
pub type Graph = BTreeMap<String, BTreeSet<String>>;

/// Reads the crate whose root file is `root` and returns its module import graph.
pub fn crate_graph(root: &Path) -> Result<Graph> {
    let mut modules = Vec::new();
    collect(root, &[], true, &mut modules)?;
    let known: BTreeSet<Vec<String>> = modules.iter().map(|m| segments(&m.path)).collect();
    let mut graph = Graph::new();
    for m in &modules {
        let text =
            fs::read_to_string(&m.file).with_context(|| format!("reading {}", m.file.display()))?;
        let here = segments(&m.path);
        let edges = graph.entry(m.path.clone()).or_default();
        for target in imports(&strip(&text), &here) {
            let Some(to) = deepest_known(&target, &known) else {
                continue;
            };
            if to != here {
                edges.insert(join(&to));
            }
        }
    }
    Ok(graph)
}

/// Every cycle of `graph`, each as a loop of module paths (`a -> b -> a`).
pub fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for component in components(graph) {
        if component.len() > 1 {
            out.push(one_loop(graph, &component));
        }
    }
    out
}

/// Finds the module files of the crate: `file` is module `path`.
fn collect(file: &Path, path: &[String], is_root: bool, out: &mut Vec<Module>) -> Result<()> {
    let text = fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    out.push(Module {
        file: file.to_owned(),
        path: join(path),
    });
    let dir = match file.parent() {
        Some(d) if is_root || file.file_name().is_some_and(|n| n == "mod.rs") => d.to_owned(),
        Some(d) => d.join(file.file_stem().unwrap_or_default()),
        None => return Ok(()),
    };
    for name in declared_mods(&strip(&text)) {
        let flat = dir.join(format!("{name}.rs"));
        let nested = dir.join(&name).join("mod.rs");
        let child = if flat.is_file() { flat } else { nested };
        if child.is_file() {
            let mut p = path.to_vec();
            p.push(name);
            collect(&child, &p, false, out)?;
        }
    }
    Ok(())
}

fn segments(path: &str) -> Vec<String> {
    if path == "crate" {
        Vec::new()
    } else {
        path.split("::").map(str::to_owned).collect()
    }
}

fn join(segs: &[String]) -> String {
    if segs.is_empty() {
        "crate".to_owned()
    } else {
        segs.join("::")
    }
}

/// The longest prefix of `path` that is a module file.
fn deepest_known(path: &[String], known: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| known.contains(p))
}

/// Source text with comments, string and char literals blanked out (kept the same length in
/// lines), so braces and paths in them do not count.
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &src[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').map_or(b.len(), |n| i + n);
            i = end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(b.len(), |n| i + n + 2);
            out.extend(src[i..end].chars().filter(|c| *c == '\n'));
            i = end;
        } else if let Some(len) = raw_string_len(rest) {
            out.push_str("\"\"");
            i += len;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i = (j + 1).min(b.len());
        } else if let Some(len) = char_literal_len(rest) {
            out.push_str("' '");
            i += len;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `r"…"`, `r#"…"#`, `br"…"`: its length, when `s` starts with one.
fn raw_string_len(s: &str) -> Option<usize> {
    let body = s.strip_prefix("br").or_else(|| s.strip_prefix('r'))?;
    let hashes = body.len() - body.trim_start_matches('#').len();
    let open = body[hashes..].strip_prefix('"')?;
    let close = format!("\"{}", "#".repeat(hashes));
    let end = open.find(&close)?;
    Some(s.len() - open.len() + end + close.len())
}

/// `'x'`, `'\n'`, `'\u{1F600}'`: its length; `None` for a lifetime.
fn char_literal_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix('\'')?;
    if let Some(esc) = rest.strip_prefix('\\') {
        return esc.find('\'').map(|n| n + 3);
    }
    let c = rest.chars().next()?;
    rest[c.len_utf8()..]
        .starts_with('\'')
        .then(|| c.len_utf8() + 2)
}

/// The tokens that matter here: identifiers, `::`, and single punctuation.
fn tokens(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if !(d.is_alphanumeric() || d == '_') {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            out.push(src[i..end].to_owned());
        } else if c == ':' && chars.peek().is_some_and(|&(_, d)| d == ':') {
            chars.next();
            out.push("::".to_owned());
        } else if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    out
}

/// The names of `mod name;` declarations at the top level of a file.
fn declared_mods(src: &str) -> Vec<String> {
    let t = tokens(src);
    let mut depth = 0usize;
    let mut out = Vec::new();
    for (i, tok) in t.iter().enumerate() {
        match tok.as_str() {
            "{" => depth += 1,
            "}" => depth = depth.saturating_sub(1),
            "mod" if depth == 0 && t.get(i + 2).is_some_and(|s| s == ";") => {
                if let Some(name) = t.get(i + 1) {
                    out.push(name.clone());
                }
            }
            _ => {}
        }
    }
    out
}

/// Every crate-local path in a file of module `here`, resolved to absolute segments.
fn imports(src: &str, here: &[String]) -> Vec<Vec<String>> {
    let t = tokens(src);
    let children: BTreeSet<String> = declared_mods(src).into_iter().collect();
    // Inline modules: (name, brace depth inside it).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        let tok = t[i].as_str();
        match tok {
            "{" => depth += 1,
            "}" => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            "mod" if t.get(i + 2).is_some_and(|s| s == "{") => {
                inline.push((t[i + 1].clone(), depth + 1));
                depth += 1;
                i += 3;
                continue;
            }
            _ => {}
        }
        let at_path_start = i == 0 || t[i - 1] != "::";
        let mut scope = here.to_vec();
        scope.extend(inline.iter().map(|(n, _)| n.clone()));
        if tok == "use" {
            let end = t[i..]
                .iter()
                .position(|s| s == ";")
                .map_or(t.len(), |n| i + n);
            for path in expand(&t[i + 1..end]) {
                out.extend(resolve(&path, &scope, &children, inline.is_empty()));
            }
            i = end;
            continue;
        }
        if at_path_start && t.get(i + 1).is_some_and(|s| s == "::") {
            let mut path = vec![t[i].clone()];
            let mut j = i + 1;
            while t.get(j).is_some_and(|s| s == "::") && t.get(j + 1).is_some_and(|s| is_ident(s)) {
                path.push(t[j + 1].clone());
                j += 2;
            }
            out.extend(resolve(&path, &scope, &children, inline.is_empty()));
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

fn is_ident(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// A path's segments made absolute, if it names something of this crate.
fn resolve(
    path: &[String],
    scope: &[String],
    children: &BTreeSet<String>,
    at_file_level: bool,
) -> Option<Vec<String>> {
    let first = path.first()?.as_str();
    let (mut base, rest) = match first {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (scope.to_vec(), &path[1..]),
        "super" => {
            let supers = path.iter().take_while(|s| *s == "super").count();
            let keep = scope.len().checked_sub(supers)?;
            (scope[..keep].to_vec(), &path[supers..])
        }
        name if at_file_level && children.contains(name) => (scope.to_vec(), path),
        _ => return None,
    };
    base.extend(rest.iter().filter(|s| *s != "self" && *s != "*").cloned());
    Some(base)
}

/// The paths of a `use` tree (`a::{b, c::{d, e as f}}` → `a::b`, `a::c::d`, `a::c::e`).
fn expand(t: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut pos = 0;
    tree(t, &mut pos, &[], &mut out);
    out
}

fn tree(t: &[String], pos: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    while let Some(tok) = t.get(*pos) {
        match tok.as_str() {
            "::" => *pos += 1,
            "{" => {
                *pos += 1;
                loop {
                    tree(t, pos, &path, out);
                    match t.get(*pos).map(String::as_str) {
                        Some(",") => *pos += 1,
                        Some("}") => {
                            *pos += 1;
                            return;
                        }
                        _ => return,
                    }
                    if t.get(*pos).is_some_and(|s| s == "}") {
                        *pos += 1;
                        return;
                    }
                }
            }
            "," | "}" => break,
            "as" => *pos += 2,
            "pub" | "(" | ")" => *pos += 1,
            _ => {
                path.push(tok.clone());
                *pos += 1;
            }
        }
    }
    out.push(path);
}

/// Strongly connected components (Tarjan), each sorted.
fn components(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                if let Some(l) = s.low.get_mut(v) {
                    *l = (*l).min(lw);
                }
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                if let Some(l) = s.low.get_mut(v) {
                    *l = (*l).min(iw);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                comp.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            comp.sort();
            s.out.push(comp);
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// A shortest loop from the component's first module back to it (breadth first).
fn one_loop(graph: &Graph, component: &[String]) -> Vec<String> {
    let inside: BTreeSet<&str> = component.iter().map(String::as_str).collect();
    let start = component[0].as_str();
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in graph.get(v).into_iter().flatten().map(String::as_str) {
            if !inside.contains(w) {
                continue;
            }
            if w == start {
                // start -> … -> v -> start, read backwards from v.
                let mut chain = vec![v];
                while let Some(&prev) = chain.last().and_then(|at| came_from.get(at)) {
                    chain.push(prev);
                }
                chain.reverse();
                chain.push(start);
                return chain.into_iter().map(str::to_owned).collect();
            }
            if !came_from.contains_key(w) && w != start {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    component.to_vec()
}

/// Every target root of every workspace package (`cargo metadata`), as (package, root file).
pub fn workspace_roots(metadata: &serde_json::Value) -> Vec<(String, PathBuf)> {
    let mut roots = BTreeSet::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or("?");
        for target in package["targets"].as_array().into_iter().flatten() {
            if let Some(src) = target["src_path"].as_str() {
                roots.insert((name.to_owned(), PathBuf::from(src)));
            }
        }
    }
    roots.into_iter().collect()
}

/// Cycles known and being removed, as `package: a -> b -> a`. Each must still exist (a stale
/// entry fails the check too), so the list only shrinks.
pub const ALLOWED: &[&str] = &[];

/// Checks every crate root; returns one line per cycle found that is not in `allowed`, and
/// one per `allowed` entry no longer found (empty: all is well).
pub fn check(roots: &[(String, PathBuf)], allowed: &[&str]) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    for (package, root) in roots {
        let graph = crate_graph(root)?;
        for cycle in cycles(&graph) {
            let name = format!("{package}: {}", cycle.join(" -> "));
            if allowed.contains(&name.as_str()) {
                seen.insert(name);
            } else {
                found.push(format!("{name} (in {})", root.display()));
            }
        }
    }
    for stale in allowed.iter().filter(|a| !seen.contains(**a)) {
        found.push(format!(
            "{stale}: gone, remove it from xtask/src/cycles.rs's ALLOWED"
        ));
    }
    Ok(found)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A crate of `files` (path, text) in a fresh directory; returns its `lib.rs`.
    fn fixture(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-cycles-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for (path, text) in files {
            let file = dir.join(path);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(file, text).unwrap();
        }
        dir.join("lib.rs")
    }

    #[test]
    fn a_two_module_cycle_is_found_and_named() {
        let root = fixture(
            "two",
            &[
                ("lib.rs", "mod a;\nmod b;\nmod c;\n"),
                ("a.rs", "use crate::b::B;\npub struct A;\n"),
                (
                    "b.rs",
                    "pub struct B;\nfn f() -> crate::a::A { crate::a::A }\n",
                ),
                ("c.rs", "use crate::{a::A, b};\n"),
            ],
        );
        let graph = crate_graph(&root).unwrap();
        assert_eq!(cycles(&graph), vec![vec!["a", "b", "a"]]);
    }

    #[test]
    fn a_layered_crate_with_folders_and_tests_has_none() {
        let root = fixture(
            "layered",
            &[
                ("lib.rs", "mod net;\nmod state;\nuse net::listen::serve;\n"),
                ("state.rs", "/// Not [`crate::net`]\npub struct S;\n"),
                ("net/mod.rs", "pub mod listen;\npub use listen::serve;\n"),
                (
                    "net/listen.rs",
                    "use crate::state::S;\nconst X: &str = \"crate::lib\";\npub fn serve() {}\n\
                     #[cfg(test)]\nmod tests {\n    use super::*;\n    fn t() { let _ = '{'; }\n}\n",
                ),
            ],
        );
        let graph = crate_graph(&root).unwrap();
        assert!(cycles(&graph).is_empty(), "{graph:?}");
        assert!(graph["crate"].contains("net::listen"));
        assert!(graph["net::listen"].contains("state"));
        assert!(!graph["net::listen"].contains("net"));
    }

    #[test]
    fn a_child_that_imports_its_parent_back_is_a_cycle() {
        let root = fixture(
            "parent",
            &[
                ("lib.rs", "mod ws;\n"),
                (
                    "ws.rs",
                    "mod bridge;\npub use self::bridge::run;\npub const N: u8 = 1;\n",
                ),
                ("ws/bridge.rs", "use super::N;\npub fn run() {}\n"),
            ],
        );
        let graph = crate_graph(&root).unwrap();
        assert_eq!(cycles(&graph), vec![vec!["ws", "ws::bridge", "ws"]]);
    }

    #[test]
    fn allowed_cycles_pass_and_stale_ones_fail() {
        let root = fixture(
            "allowed",
            &[
                ("lib.rs", "mod a;\nmod b;\n"),
                ("a.rs", "use crate::b::B;\npub struct A;\n"),
                ("b.rs", "use crate::a::A;\npub struct B;\n"),
            ],
        );
        let roots = [("demo".to_owned(), root)];
        assert_eq!(check(&roots, &[]).unwrap().len(), 1);
        assert!(check(&roots, &["demo: a -> b -> a"]).unwrap().is_empty());
        let stale = check(&roots, &["demo: a -> b -> a", "demo: x -> y -> x"]).unwrap();
        assert_eq!(stale.len(), 1);
        assert!(stale[0].starts_with("demo: x -> y -> x: gone"), "{stale:?}");
    }

    #[test]
    fn use_trees_expand() {
        let t = tokens("crate::{a::{B, c as d}, e, f::*}");
        let paths: Vec<String> = expand(&t).iter().map(|p| p.join("::")).collect();
        assert_eq!(
            paths,
            ["crate::a::B", "crate::a::c", "crate::e", "crate::f::*"]
        );
    }

    #[test]
    fn the_workspace_has_no_module_cycle() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let roots: Vec<(String, PathBuf)> = [
            "server/src/lib.rs",
            "protocol/src/lib.rs",
            "web/src/main.rs",
            "xtask/src/main.rs",
            "tests/src/lib.rs",
        ]
        .iter()
        .map(|p| (p.to_string(), root.join(p)))
        .filter(|(_, p)| p.is_file())
        .collect();
        assert!(roots.len() >= 4);
        let roots: Vec<(String, PathBuf)> = roots
            .into_iter()
            .map(|(p, f)| (p.split('/').next().unwrap().to_owned(), f))
            .collect();
        assert_eq!(check(&roots, ALLOWED).unwrap(), Vec::<String>::new());
    }
}
