//! Every file the repository's text points to is one a clone has: no mention of the design
//! notes or the README parts that live outside the repository, and every relative link in the
//! Markdown pages resolves.

use std::path::{Path, PathBuf};

/// Names of files that exist only outside the repository (spelled in two halves so this file
/// does not match itself).
const OUTSIDE: [[&str; 2]; 2] = [["DESIGN", ".md"], [".readme", "-parts"]];

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
                let target = target.split('#').next().unwrap_or_default().trim();
                if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let dir = file.parent().expect("a file has a directory");
                if !dir.join(target).exists() {
                    broken.push(format!("{}:{}: {target}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to files a clone does not have:\n{}",
        broken.join("\n")
    );
}
