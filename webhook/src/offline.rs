//! `inject -f FILE|-`: the webhook's injection applied to manifests on disk, like
//! `istioctl kube-inject`. Jobs and CronJobs (their jobTemplate) that opt in are patched
//! with the very patch the webhook would return; every other document is written back
//! byte for byte.

use std::io::Read;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use crate::config::{InjectConfig, InjectorArgs};
use crate::error::{Error, Result};
use crate::inject::{Injection, OptIn, apply, inject_as};

/// Flags of `inject`.
#[derive(Debug, Clone, clap::Args)]
pub struct InjectArgs {
    /// Manifest to read (YAML or JSON, several documents allowed); `-` reads stdin.
    #[arg(short = 'f', long = "filename", value_name = "FILE|-")]
    pub filename: PathBuf,

    /// Inject every Job (and CronJob template) not annotated `inject: "false"`, as the
    /// webhook does in a namespace labelled `status-reporter.hyperfleet.io/inject=enabled`.
    #[arg(long, env = "NAMESPACE_OPT_IN")]
    pub namespace_opt_in: bool,

    /// How the reporter container is built.
    #[command(flatten)]
    pub injector: InjectorArgs,
}

/// Output of [`inject_manifests`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The manifests, as YAML documents separated by `---`.
    pub yaml: String,
    /// Admission warnings, prefixed with the object they concern.
    pub warnings: Vec<String>,
    /// How many Jobs (including CronJob templates) were injected.
    pub injected: usize,
}

/// Runs the `inject` subcommand: reads, injects, writes YAML to `out`.
pub fn run(args: &InjectArgs, out: &mut dyn std::io::Write) -> Result<Vec<String>> {
    let config = args.injector.to_config()?;
    let source_name = args.filename.display().to_string();
    let input = if source_name == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| input_error("-", e.to_string()))?;
        s
    } else {
        std::fs::read_to_string(&args.filename)
            .map_err(|e| input_error(&source_name, e.to_string()))?
    };
    let opt_in = if args.namespace_opt_in {
        OptIn::Namespace
    } else {
        OptIn::Annotation
    };
    let rendered = inject_manifests_as(&input, &source_name, &config, opt_in)?;
    out.write_all(rendered.yaml.as_bytes())
        .map_err(|e| Error::Output(e.to_string()))?;
    Ok(rendered.warnings)
}

fn input_error(source_name: &str, message: String) -> Error {
    Error::Input {
        source_name: source_name.to_owned(),
        message,
    }
}

/// Injects every Job and CronJob in `input` (YAML or JSON, multi-document) that opts in by
/// annotation.
pub fn inject_manifests(input: &str, source_name: &str, config: &InjectConfig) -> Result<Rendered> {
    inject_manifests_as(input, source_name, config, OptIn::Annotation)
}

/// Injects every Job and CronJob in `input` that is opted in under `opt_in`
/// ([`OptIn::Namespace`]: all but those annotated `inject: "false"`).
pub fn inject_manifests_as(
    input: &str,
    source_name: &str,
    config: &InjectConfig,
    opt_in: OptIn,
) -> Result<Rendered> {
    let mut docs_out = Vec::new();
    let mut warnings = Vec::new();
    let mut injected = 0;
    for (index, chunk) in split_documents(input).into_iter().enumerate() {
        let value = check_nesting(chunk)
            .and_then(|()| parse_document(chunk))
            .map_err(|message| {
                input_error(source_name, format!("document {}: {message}", index + 1))
            })?;
        if value.is_null() {
            continue; // empty document (comments only, or a stray `---`)
        }
        let mut doc = value.clone();
        let count = process(&mut doc, config, opt_in, &mut warnings).map_err(|e| {
            input_error(
                source_name,
                format!("document {} ({}): {e}", index + 1, describe(&value)),
            )
        })?;
        injected += count;
        if count == 0 {
            let mut text = chunk.trim_matches('\n').to_owned();
            text.push('\n');
            docs_out.push(text);
        } else {
            docs_out
                .push(serde_yaml_ng::to_string(&doc).map_err(|e| Error::Output(e.to_string()))?);
        }
    }
    Ok(Rendered {
        yaml: docs_out.join("---\n"),
        warnings,
        injected,
    })
}

/// Splits a YAML stream at document markers (`---` at the start of a line), keeping each
/// document's text so untouched documents are written back unchanged.
fn split_documents(input: &str) -> Vec<&str> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in input.split_inclusive('\n') {
        let bare = line.trim_end();
        if bare == "---" || bare.starts_with("--- ") || bare == "..." {
            docs.push(&input[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    docs.push(&input[start..]);
    docs.into_iter().filter(|d| !d.trim().is_empty()).collect()
}

/// Deepest nesting of collections `inject` reads (the YAML parser's own limit).
pub const MAX_NESTING: usize = 128;

/// Refuses a document whose flow collections (`[…]`, `{…}`, so all of JSON) nest deeper than
/// [`MAX_NESTING`], before the YAML parser sees it: the parser's time grows with the square
/// of that depth (100,000 levels took 15 s) before its own limit applies. Block nesting costs
/// the parser nothing extra and meets its limit quickly.
///
/// A light scan, not a parser: brackets count where a YAML token can start (and anywhere
/// inside a flow collection); quoted scalars, comments and block scalars (`|`, `>`) are
/// skipped.
fn check_nesting(text: &str) -> std::result::Result<(), String> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut depth = 0usize;
    let mut quote = Quote::None;
    // Indentation of the line that opened a block scalar: more-indented lines are its text.
    let mut block_scalar_of: Option<usize> = None;
    for (number, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if let Some(parent) = block_scalar_of {
            if line.trim().is_empty() || indent > parent {
                continue;
            }
            block_scalar_of = None;
        }
        // The character before (a line starts as after a blank), and the last non-blank one
        // outside quotes: `|`/`>` open a block scalar only right after `:`, `-`, `?`.
        let mut prev = ' ';
        let mut last = None;
        let mut opens_block_scalar = false;
        let mut chars = line.char_indices().peekable();
        while let Some((column, c)) = chars.next() {
            match quote {
                Quote::Double => {
                    if c == '\\' {
                        chars.next();
                    } else if c == '"' {
                        quote = Quote::None;
                    }
                    prev = c;
                    continue;
                }
                Quote::Single => {
                    if c == '\'' {
                        // `''` is a quote inside the scalar.
                        if chars.peek().is_some_and(|&(_, n)| n == '\'') {
                            chars.next();
                        } else {
                            quote = Quote::None;
                        }
                    }
                    prev = c;
                    continue;
                }
                Quote::None => {}
            }
            // Inside a flow collection, a token also starts right after an indicator.
            let token_start =
                prev.is_whitespace() || (depth > 0 && matches!(prev, '[' | '{' | ',' | ':'));
            match c {
                '#' if prev.is_whitespace() => break,
                '"' if token_start => quote = Quote::Double,
                '\'' if token_start => quote = Quote::Single,
                '[' | '{' if depth > 0 || token_start => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Err(format!(
                            "collections nest deeper than {MAX_NESTING} levels (line {}, column {}); accepted: up to {MAX_NESTING}",
                            number + 1,
                            column + 1
                        ));
                    }
                }
                ']' | '}' if depth > 0 => depth -= 1,
                '|' | '>'
                    if depth == 0
                        && token_start
                        && matches!(last, None | Some(':' | '-' | '?')) =>
                {
                    opens_block_scalar = true;
                }
                _ => {}
            }
            if !c.is_whitespace() {
                last = Some(c);
            }
            prev = c;
        }
        if opens_block_scalar {
            block_scalar_of = Some(indent);
        }
    }
    Ok(())
}

/// A document as JSON when it is JSON, read by serde_json as the webhook reads a review (YAML
/// parsers refuse some JSON, such as an emoji written as an escaped surrogate pair); else as
/// YAML.
fn parse_document(text: &str) -> std::result::Result<Value, String> {
    if text.trim_start().starts_with(['{', '['])
        && let Ok(value) = serde_json::from_str(text)
    {
        return Ok(value);
    }
    let de = serde_yaml_ng::Deserializer::from_str(text);
    Value::deserialize(de).map_err(|e| e.to_string())
}

/// Injects `doc` in place; returns how many Jobs were patched.
fn process(
    doc: &mut Value,
    config: &InjectConfig,
    opt_in: OptIn,
    warnings: &mut Vec<String>,
) -> Result<usize> {
    let api_version = doc
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
    match (api_version, kind) {
        (_, "List") | (_, "JobList") | (_, "CronJobList") => {
            let mut count = 0;
            if let Some(items) = doc.get_mut("items").and_then(Value::as_array_mut) {
                for item in items {
                    count += process(item, config, opt_in, warnings)?;
                }
            }
            Ok(count)
        }
        ("batch/v1", "Job") => inject_job(doc, None, config, opt_in, warnings),
        ("batch/v1", "CronJob") => {
            let namespace = doc
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let name = doc
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned();
            let Some(template) = doc.pointer_mut("/spec/jobTemplate") else {
                return Ok(0);
            };
            // Treat the jobTemplate as the Job the CronJob will create, so the same patch
            // paths (/spec/template/...) apply.
            let mut job = serde_json::json!({
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": template.get("metadata").cloned().unwrap_or_else(|| serde_json::json!({})),
                "spec": template.get("spec").cloned().unwrap_or(Value::Null),
            });
            if let Some(ns) = &namespace {
                job["metadata"]["namespace"] = Value::String(ns.clone());
            }
            let mut job_warnings = Vec::new();
            let count = inject_job(
                &mut job,
                Some(&format!("cronjob/{name}")),
                config,
                opt_in,
                &mut job_warnings,
            )?;
            warnings.extend(job_warnings);
            if count > 0 {
                template["spec"] = job["spec"].take();
            }
            Ok(count)
        }
        _ => Ok(0),
    }
}

fn inject_job(
    doc: &mut Value,
    label: Option<&str>,
    config: &InjectConfig,
    opt_in: OptIn,
    warnings: &mut Vec<String>,
) -> Result<usize> {
    match inject_as(&*doc, None, config, opt_in)? {
        Injection::Skipped(_) => Ok(0),
        Injection::Injected { patch, warnings: w } => {
            apply(doc, &patch)?;
            let who = label.map_or_else(|| describe(doc), str::to_owned);
            warnings.extend(w.into_iter().map(|w| format!("{who}: {w}")));
            Ok(1)
        }
    }
}

fn describe(doc: &Value) -> String {
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("object")
        .to_ascii_lowercase();
    let name = doc
        .pointer("/metadata/name")
        .or_else(|| doc.pointer("/metadata/generateName"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    format!("{kind}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_refused_past_the_limit_whatever_the_syntax() {
        let deep = |open: &str, close: &str, n: usize| open.repeat(n) + "1" + &close.repeat(n);
        for (text, accepted) in [
            (deep("[", "]", MAX_NESTING), true),
            (deep("[", "]", MAX_NESTING + 1), false),
            (deep("{\"a\":", "}", MAX_NESTING), true),
            (deep("{\"a\":", "}", MAX_NESTING + 1), false),
            (deep("{a: ", "}", MAX_NESTING + 1), false),
            (
                format!("key:\n  - {}", deep("[ ", " ]", MAX_NESTING + 1)),
                false,
            ),
            // Brackets that are not collections: in quotes, comments, block scalars and
            // plain scalars.
            (format!("a: \"{}\"", "[".repeat(500)), true),
            (
                format!("a: '{}'' {}'", "[".repeat(300), "{".repeat(300)),
                true,
            ),
            (format!("a: 1 # {}", "[".repeat(500)), true),
            (format!("a: |\n  {}\n  x\nb: 2", "[".repeat(500)), true),
            (format!("- >-\n    {}\n", "{".repeat(500)), true),
            (format!("a: x{}", "[".repeat(500)), true),
            (format!("a: it's {}", "[".repeat(5)), true),
            // Leaving a block scalar brings the counting back.
            (
                format!("a: |\n  text\nb: {}", deep("[", "]", MAX_NESTING + 1)),
                false,
            ),
            // A stray quote inside a plain scalar does not hide what follows.
            (
                format!("a: it's\nb: {}", deep("{", "}", MAX_NESTING + 1)),
                false,
            ),
        ] {
            let shown = &text[..text.len().min(60)];
            assert_eq!(check_nesting(&text).is_ok(), accepted, "{shown}");
        }
        let err = check_nesting(&deep("[", "]", 100_000)).unwrap_err();
        assert!(
            err.contains("deeper than 128 levels (line 1, column 129)"),
            "{err}"
        );
    }

    #[test]
    fn deeply_nested_input_fails_early_with_the_limit_in_the_message() {
        let config = InjectConfig::default();
        for text in [
            "{\"a\": ".repeat(100_000) + &"}".repeat(100_000),
            "a: ".to_owned() + &"{b: ".repeat(100_000) + &"}".repeat(100_000),
        ] {
            let started = std::time::Instant::now();
            let err = inject_manifests(&text, "deep.yaml", &config)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(
                    "cannot read deep.yaml: document 1: collections nest deeper than 128 levels"
                ),
                "{err}"
            );
            // A linear scan: microseconds for this input, where the parser took 15 s.
            assert!(started.elapsed() < std::time::Duration::from_secs(2));
        }
    }

    #[test]
    fn splits_on_document_markers_only_at_line_start() {
        let docs = split_documents("---\na: 1\n---\nb: \"--- x\"\n--- \nc: 3\n...\n");
        assert_eq!(docs, vec!["a: 1\n", "b: \"--- x\"\n", "c: 3\n"]);
    }
}
