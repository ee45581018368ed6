//! Label and field selectors for LIST and WATCH.

use serde_json::Value;

use crate::status::ApiError;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
}

/// Which objects a LIST or WATCH sees: namespace plus label and field requirements (ANDed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Selector {
    namespace: Option<String>,
    labels: Vec<Requirement>,
    fields: Vec<Requirement>,
}

impl Selector {
    /// Parses `labelSelector` / `fieldSelector` query values (already percent-decoded).
    pub(crate) fn parse(
        namespace: Option<String>,
        labels: Option<&str>,
        fields: Option<&str>,
    ) -> Result<Selector, ApiError> {
        let labels = match labels {
            Some(s) => parse_terms(s, true).map_err(|e| {
                ApiError::BadRequest(format!(
                    "unable to parse requirement in labelSelector {s:?}: {e}"
                ))
            })?,
            None => Vec::new(),
        };
        let fields = match fields {
            Some(s) => parse_terms(s, false)
                .map_err(|e| ApiError::BadRequest(format!("invalid fieldSelector {s:?}: {e}")))?,
            None => Vec::new(),
        };
        Ok(Selector {
            namespace,
            labels,
            fields,
        })
    }

    /// Whether `object` (in `namespace`) is selected.
    pub(crate) fn matches(&self, namespace: &str, object: &Value) -> bool {
        if self.namespace.as_deref().is_some_and(|ns| ns != namespace) {
            return false;
        }
        let labels = object.pointer("/metadata/labels");
        self.labels.iter().all(|r| {
            let value = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            r.op.accepts(value)
        }) && self
            .fields
            .iter()
            .all(|r| r.op.accepts(Some(&field_value(object, &r.key))))
    }
}

impl Op {
    fn accepts(&self, value: Option<&str>) -> bool {
        match self {
            Op::Eq(v) => value == Some(v.as_str()),
            Op::NotEq(v) => value != Some(v.as_str()),
            Op::In(vs) => value.is_some_and(|x| vs.iter().any(|v| v == x)),
            Op::NotIn(vs) => value.is_none_or(|x| vs.iter().all(|v| v != x)),
            Op::Exists => value.is_some(),
            Op::NotExists => value.is_none(),
        }
    }
}

/// A field selector's value of a dotted path (`metadata.name`, `status.phase`); "" if absent,
/// which is how the real server compares missing fields.
fn field_value(object: &Value, path: &str) -> String {
    let pointer = format!("/{}", path.replace('.', "/"));
    match object.pointer(&pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Splits on commas outside parentheses.
fn split_terms(s: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&s[start..]);
    terms
}

fn parse_set(rest: &str) -> Result<Vec<String>, String> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesised set like (a,b), got {rest:?}"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect())
}

fn parse_terms(s: &str, set_based: bool) -> Result<Vec<Requirement>, String> {
    let mut out = Vec::new();
    for term in split_terms(s) {
        let term = term.trim();
        if term.is_empty() {
            continue;
        }
        let req = if let Some((k, v)) = term.split_once("!=") {
            Requirement {
                key: k.trim().to_owned(),
                op: Op::NotEq(v.trim().to_owned()),
            }
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            Requirement {
                key: k.trim().to_owned(),
                op: Op::Eq(v.trim().to_owned()),
            }
        } else if !set_based {
            return Err(format!(
                "{term:?}: accepted forms are key=value, key==value, key!=value"
            ));
        } else if let Some(k) = term.strip_prefix('!') {
            Requirement {
                key: k.trim().to_owned(),
                op: Op::NotExists,
            }
        } else if let Some((k, rest)) = term.split_once(" notin ") {
            Requirement {
                key: k.trim().to_owned(),
                op: Op::NotIn(parse_set(rest)?),
            }
        } else if let Some((k, rest)) = term.split_once(" in ") {
            Requirement {
                key: k.trim().to_owned(),
                op: Op::In(parse_set(rest)?),
            }
        } else if term.contains(|c: char| c.is_whitespace() || "()<>".contains(c)) {
            return Err(format!(
                "{term:?}: accepted forms are key=value, key!=value, key in (a,b), key notin (a,b), key, !key"
            ));
        } else {
            Requirement {
                key: term.to_owned(),
                op: Op::Exists,
            }
        };
        if req.key.is_empty() {
            return Err(format!("{term:?}: the key is empty"));
        }
        out.push(req);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"metadata": {"name": "p1", "namespace": "ns", "labels": {"app": "x", "tier": "web"}},
               "status": {"phase": "Running"}})
    }

    #[test]
    fn field_selectors_on_name_and_status() {
        let sel = |f| Selector::parse(None, None, Some(f)).unwrap();
        assert!(sel("metadata.name=p1").matches("ns", &pod()));
        assert!(!sel("metadata.name=p2").matches("ns", &pod()));
        assert!(sel("metadata.name==p1,status.phase!=Failed").matches("ns", &pod()));
        assert!(sel("spec.nodeName=").matches("ns", &pod()));
        assert!(Selector::parse(None, None, Some("a in (b)")).is_err());
    }

    #[test]
    fn label_selectors_all_forms() {
        let sel = |l| Selector::parse(None, Some(l), None).unwrap();
        assert!(sel("app=x").matches("ns", &pod()));
        assert!(sel("app=x,tier in (web,db)").matches("ns", &pod()));
        assert!(!sel("tier notin (web)").matches("ns", &pod()));
        assert!(sel("app,!missing").matches("ns", &pod()));
        assert!(!sel("app!=x").matches("ns", &pod()));
        assert!(Selector::parse(None, Some("a b"), None).is_err());
    }

    #[test]
    fn namespace_restricts() {
        let sel = Selector::parse(Some("other".into()), None, None).unwrap();
        assert!(!sel.matches("ns", &pod()));
        assert!(Selector::default().matches("ns", &pod()));
    }
}
