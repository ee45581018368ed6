//! Every file and section the repository's text points to is one a clone has: no mention of the
//! design notes that live outside the repository, every relative link in the Markdown pages
//! resolves — to the file, and to the heading its `#anchor` names — and every `docs/*.md` page a
//! source file or script names exists.

use std::path::{Path, PathBuf};

/// Names of documents that exist only outside the repository (spelled in two halves so this
/// file does not match itself): the design notes, by file name or as "DESIGN \"section\"".
const OUTSIDE: [[&str; 2]; 6] = [
    ["DESIGN", ".md"],
    ["DESIGN", "'s"],
    ["DESIGN", " \""],
    ["STYLE", ".md"],
    ["REAL-NODE", ".md"],
    [".readme", "-parts"],
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Source, build and documentation files, skipping build output and VCS data.
fn text_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if !matches!(name, "target" | ".git" | "corpus" | "artifacts") {
                text_files(&path, out);
            }
        } else if name.starts_with("Dockerfile")
            || name.starts_with('.')
            || [".rs", ".md", ".toml", ".yaml", ".yml", ".sh", ".json"]
                .iter()
                .any(|ext| name.ends_with(ext))
        {
            out.push(path);
        }
    }
}

#[test]
fn no_reference_to_files_a_clone_does_not_have() {
    let mut files = Vec::new();
    text_files(&root(), &mut files);
    assert!(files.len() > 50, "walked too few files: {}", files.len());
    let mut found = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            for [a, b] in OUTSIDE {
                if line.contains(&format!("{a}{b}")) {
                    found.push(format!("{}:{}: {line}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "references to files outside the repository:\n{}",
        found.join("\n")
    );
}

#[test]
fn relative_markdown_links_resolve() {
    let mut files = Vec::new();
    text_files(&root(), &mut files);
    let mut broken = Vec::new();
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "md"))
    {
        let text = std::fs::read_to_string(file).expect("read");
        for (n, line) in text.lines().enumerate() {
            for target in line
                .split("](")
                .skip(1)
                .filter_map(|rest| rest.split(')').next())
            {
                let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
                let path = path.trim();
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let dir = file.parent().expect("a file has a directory");
                let linked = if path.is_empty() {
                    file.clone()
                } else {
                    dir.join(path)
                };
                if !linked.exists() {
                    broken.push(format!("{}:{}: {target}", file.display(), n + 1));
                } else if !anchor.is_empty()
                    && linked.extension().is_some_and(|e| e == "md")
                    && !anchors(&linked).contains(anchor)
                {
                    broken.push(format!(
                        "{}:{}: {target} (no such section)",
                        file.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to files or sections a clone does not have:\n{}",
        broken.join("\n")
    );
}

/// The anchors GitHub gives the headings of a Markdown file: lower case, punctuation other
/// than `-` and `_` dropped, spaces made `-`; a repeated heading gets `-1`, `-2`, ...
fn anchors(file: &Path) -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    let mut fenced = false;
    text.lines()
        .filter(|l| {
            if l.starts_with("```") {
                fenced = !fenced;
            }
            !fenced && l.starts_with('#')
        })
        .map(|l| {
            let slug: String = l
                .trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
                .map(|c| if c == ' ' { '-' } else { c })
                .collect();
            let n = seen.entry(slug.clone()).or_default();
            *n += 1;
            match *n {
                1 => slug,
                k => format!("{slug}-{}", k - 1),
            }
        })
        .collect()
}

/// A docs page (`docs/` + its name + `.md`) named in a source file or script is in the repository.
#[test]
fn docs_pages_named_in_sources_exist() {
    let mut files = Vec::new();
    text_files(&root(), &mut files);
    let mut missing = Vec::new();
    for file in files
        .iter()
        .filter(|f| f.extension().is_none_or(|e| e != "md"))
    {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            for (i, _) in line.match_indices("docs/") {
                let name: String = line[i + 5..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    .collect();
                if let Some(page) = name.strip_suffix(".md").filter(|p| !p.is_empty())
                    && !root().join("docs").join(format!("{page}.md")).exists()
                {
                    missing.push(format!("{}:{}: docs/{name}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs pages named but not in the repository:\n{}",
        missing.join("\n")
    );
}
