//! The maps of the code stay true: ARCHITECTURE.md names only paths and modules that exist, and
//! every crate's layout section (its lib.rs or main.rs header) names every module it declares.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The spans between backticks.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

fn is_module_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Whether any file or folder under `dir`, at any depth, satisfies `hit`.
fn any_below(dir: &Path, hit: &dyn Fn(&Path) -> bool) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let p = e.path();
            hit(&p) || (p.is_dir() && any_below(&p, hit))
        })
}

fn file_name(p: &Path) -> &str {
    p.file_name().and_then(|f| f.to_str()).unwrap_or("")
}

/// Whether `name` is a module file or folder anywhere under `dir`.
fn has_module(dir: &Path, name: &str) -> bool {
    any_below(dir, &|p| {
        file_name(p) == format!("{name}.rs") || (p.is_dir() && file_name(p) == name)
    })
}

/// Whether a function `name` is defined anywhere under `dir`.
fn has_function(dir: &Path, name: &str) -> bool {
    any_below(dir, &|p| {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        text.contains(&format!("fn {name}(")) || text.contains(&format!("fn {name}<"))
    })
}

/// Whether a folder `name` exists anywhere under `dir`.
fn has_folder(dir: &Path, name: &str) -> bool {
    any_below(dir, &|p| p.is_dir() && file_name(p) == name)
}

/// Words in backticks the maps use for things other than modules: commands, arguments, a
/// PostgreSQL setting, the binary's name.
const NOT_MODULES: &[&str] = &["serve", "migrate", "now", "synchronous_commit", "sessiond"];

#[test]
fn architecture_md_names_only_what_exists() {
    let root = root();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap_or_default();
    assert!(text.contains("## Codemap"), "ARCHITECTURE.md has a codemap");
    let mut missing = Vec::new();
    for span in code_spans(&text) {
        let path_like = ["crates/", "tests/", "scripts/", "bench/", "docs/", ".ci/"]
            .iter()
            .any(|p| span.starts_with(p));
        let rel = span.trim_end_matches('/');
        // A path is from the repository root, or from the crate the sentence is about.
        let found = root.join(rel).exists()
            || std::fs::read_dir(root.join("crates"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|c| c.path().join(rel).exists());
        if path_like && !span.contains(' ') && !found {
            missing.push(span.to_owned());
        }
    }
    // In each crate's bullet, every lowercase word in backticks is one of its modules.
    for bullet in text.split("\n- ").filter(|b| b.starts_with("`crates/")) {
        let krate = code_spans(bullet)[0];
        if krate.contains("/tests") || krate.ends_with(".rs") {
            continue;
        }
        let dir = root.join(krate);
        for word in code_spans(bullet).into_iter().skip(1) {
            let rel = word.trim_end_matches('/');
            let exists = if word.ends_with('/') {
                dir.join(rel).exists() || has_folder(&dir, rel)
            } else if is_module_name(word) && !NOT_MODULES.contains(&word) {
                has_module(&dir.join("src"), word) || has_function(&dir.join("src"), word)
            } else {
                true
            };
            if !exists {
                missing.push(format!("{krate}: `{word}`"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names what does not exist: {missing:?}"
    );
}

#[test]
fn every_crate_layout_section_names_its_modules() {
    let root = root();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root.join("crates"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let src = entry.path().join("src");
        let top = ["lib.rs", "main.rs"]
            .iter()
            .map(|f| src.join(f))
            .find(|p| p.exists());
        let Some(top) = top else { continue };
        let text = std::fs::read_to_string(&top).unwrap_or_default();
        let header: String = text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        let named = code_spans(&header);
        for line in text.lines() {
            let decl = line
                .trim()
                .strip_prefix("pub mod ")
                .or_else(|| line.trim().strip_prefix("mod "))
                .and_then(|r| r.strip_suffix(';'));
            if let Some(module) = decl
                && !named.contains(&module)
            {
                missing.push(format!("{}: {module}", top.display()));
            }
        }
        // And what the section names exists.
        for word in named.iter().filter(|w| is_module_name(w)) {
            if !has_module(&src, word) && !NOT_MODULES.contains(word) {
                missing.push(format!("{} names `{word}`", top.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "layout sections out of date: {missing:?}"
    );
}
