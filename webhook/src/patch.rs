//! The JSON Patch the injector writes: `add` operations whose values are typed and borrowed
//! from the Job and the configuration. The webhook serializes them straight to bytes; the
//! offline `inject` and the tests turn them into a [`json_patch::Patch`].
//!
//! [`write`] lays the JSON out by hand: constant keys and punctuation are copied, and only the
//! strings that come from the Job or the configuration are escaped (serde_json's escaping).
//! Keys are in sorted order, as serde_json's own `Value` (a sorted map) writes them, so both
//! renderings of a patch are the same bytes; `tests/review_paths.rs` holds them to that.

use std::borrow::Cow;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use smallvec::SmallVec;

use crate::json_strings::needs_escape;

/// A JSON Pointer as its tokens (unescaped). The injector's deepest has seven
/// (`spec/template/spec/containers/N/volumeMounts/-`), so they stay inline.
pub type Path<'a> = SmallVec<[&'a str; 7]>;

/// The pointer made of `parts`, one after another.
pub fn path<'a>(parts: &[&[&'a str]]) -> Path<'a> {
    let mut path = Path::new();
    for part in parts {
        path.extend_from_slice(part);
    }
    path
}

/// One `add` operation.
#[derive(Debug, Clone)]
pub struct Add<'a> {
    /// Where.
    pub path: Path<'a>,
    /// What.
    pub value: Item<'a>,
}

impl<'a> Add<'a> {
    /// `add` of `value` at `path`.
    pub fn new(path: Path<'a>, value: Item<'a>) -> Self {
        Add { path, value }
    }

    fn to_operation(&self) -> PatchOperation {
        PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(self.path.iter().copied()),
            // Every item serializes (string keys only); see `write`.
            value: serde_json::to_value(&self.value).unwrap_or(serde_json::Value::Null),
        })
    }
}

/// The patch as a [`json_patch::Patch`] (values as `serde_json::Value`).
pub fn to_patch(ops: &[Add<'_>]) -> Patch {
    Patch(ops.iter().map(Add::to_operation).collect())
}

/// Appends the patch, as JSON, to `out`: the bytes `serde_json` writes for [`to_patch`].
pub fn write(ops: &[Add<'_>], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"op":"add","path":""#);
        pointer(out, &op.path);
        out.extend_from_slice(br#"","value":"#);
        op.value.write(out);
        out.push(b'}');
    }
    out.push(b']');
}

/// The JSON Pointer of `tokens` (`~` as `~0`, `/` as `~1`), escaped for a JSON string. The
/// tokens are the injector's own names and an index: they are copied, then checked once.
fn pointer(out: &mut Vec<u8>, tokens: &[&str]) {
    let start = out.len();
    for token in tokens {
        out.push(b'/');
        if token.bytes().any(|b| b == b'~' || b == b'/') {
            out.extend_from_slice(token.replace('~', "~0").replace('/', "~1").as_bytes());
        } else {
            out.extend_from_slice(token.as_bytes());
        }
    }
    if needs_escape(&out[start..]) {
        let written = String::from_utf8_lossy(&out[start..]).into_owned();
        out.truncate(start);
        string_contents(out, &written);
    }
}

/// `s` as a JSON string.
pub fn string(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        out.push(b'"');
        string_contents(out, s);
        out.push(b'"');
    } else {
        // The plain case in one reservation: nearly every string.
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// `s` escaped for a JSON string, without the quotes.
fn string_contents(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(escaped(s).as_bytes());
}

/// `s` escaped for the inside of a JSON string, as serde_json escapes it: `"`, `\` and control
/// characters. A string without them (nearly every one) is borrowed as it is; others go
/// through serde_json.
pub(crate) fn escaped(s: &str) -> Cow<'_, str> {
    if !needs_escape(s.as_bytes()) {
        return Cow::Borrowed(s);
    }
    // A string always serializes.
    let quoted = serde_json::to_string(s).unwrap_or_default();
    Cow::Owned(
        quoted
            .get(1..quoted.len().saturating_sub(1))
            .unwrap_or_default()
            .to_owned(),
    )
}

/// A value fixed before any review (the securityContext, the token volume, the downward-API
/// env vars, the configured resources), rendered once both ways.
#[derive(Debug, Clone, PartialEq)]
pub struct Fixed {
    value: serde_json::Value,
    json: Vec<u8>,
}

impl Fixed {
    /// Renders `value` (through `serde_json::Value`, so its keys are sorted).
    pub fn new<T: Serialize>(value: &T) -> Fixed {
        // k8s-openapi types always serialize (string keys only).
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        let json = serde_json::to_vec(&value).unwrap_or_default();
        Fixed { value, json }
    }

    /// The value as JSON.
    pub fn json(&self) -> &[u8] {
        &self.json
    }
}

impl Serialize for Fixed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

fn list<T>(out: &mut Vec<u8>, items: &[T], write: impl Fn(&T, &mut Vec<u8>)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(item, out);
    }
    out.push(b']');
}

impl Item<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Item::List(items) => list(out, items, Item::write),
            Item::ResultsVolume(v) => {
                out.extend_from_slice(br#"{"emptyDir":{"sizeLimit":"#);
                string(out, &v.empty_dir.size_limit.0);
                out.extend_from_slice(br#"},"name":"#);
                string(out, v.name);
                out.push(b'}');
            }
            Item::Fixed(fixed) => out.extend_from_slice(&fixed.json),
            Item::Mount(m) => m.write(out),
            Item::Env(e) => e.write(out),
            Item::Container(c) => c.write(out),
            Item::Text(t) => string(out, t),
            Item::Entry(key, value) => {
                out.push(b'{');
                string(out, key);
                out.push(b':');
                string(out, value);
                out.push(b'}');
            }
            Item::Annotations(key, value) => {
                out.extend_from_slice(br#"{"annotations":"#);
                Item::Entry(key, value).write(out);
                out.push(b'}');
            }
        }
    }
}

impl Mount<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"mountPath":"#);
        string(out, self.mount_path);
        out.extend_from_slice(br#","name":"#);
        string(out, self.name);
        if let Some(read_only) = self.read_only {
            out.extend_from_slice(if read_only {
                br#","readOnly":true"#
            } else {
                br#","readOnly":false"#
            });
        }
        if let Some(sub_path) = self.sub_path {
            out.extend_from_slice(br#","subPath":"#);
            string(out, sub_path);
        }
        out.push(b'}');
    }
}

impl Env<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"name":"#);
        string(out, self.name);
        if let Some(value) = &self.value {
            out.extend_from_slice(br#","value":"#);
            string(out, value);
        }
        if let Some(from) = &self.value_from {
            out.extend_from_slice(br#","valueFrom":{"fieldRef":{"apiVersion":"#);
            string(out, from.field_ref.api_version);
            out.extend_from_slice(br#","fieldPath":"#);
            string(out, &from.field_ref.field_path);
            out.extend_from_slice(b"}}");
        }
        out.push(b'}');
    }
}

impl Reporter<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"env":"#);
        self.env.write(out);
        out.extend_from_slice(br#","image":"#);
        string(out, self.image);
        out.extend_from_slice(br#","imagePullPolicy":"#);
        string(out, self.image_pull_policy);
        out.extend_from_slice(br#","name":"#);
        string(out, self.name);
        if let Some(resources) = self.resources {
            out.extend_from_slice(br#","resources":"#);
            out.extend_from_slice(&resources.json);
        }
        if let Some(policy) = self.restart_policy {
            out.extend_from_slice(br#","restartPolicy":"#);
            string(out, policy);
        }
        out.extend_from_slice(br#","securityContext":"#);
        out.extend_from_slice(&self.security_context.json);
        out.extend_from_slice(br#","terminationMessagePolicy":"#);
        string(out, self.termination_message_policy);
        out.extend_from_slice(br#","volumeMounts":"#);
        list(out, &self.volume_mounts, Mount::write);
        out.push(b'}');
    }
}

/// A value the injector adds.
#[derive(Debug, Clone)]
pub enum Item<'a> {
    /// A new array of items.
    List(Vec<Item<'a>>),
    /// The results emptyDir.
    ResultsVolume(ResultsVolume<'a>),
    /// A value fixed at build time (the projected token volume).
    Fixed(&'a Fixed),
    /// A volume mount.
    Mount(Mount<'a>),
    /// An env var.
    Env(Env<'a>),
    /// The reporter container.
    Container(Box<Reporter<'a>>),
    /// A string.
    Text(&'a str),
    /// A map of one string entry (`{key: value}`).
    Entry(&'a str, &'a str),
    /// `{"annotations": {key: value}}`.
    Annotations(&'a str, &'a str),
}

impl Serialize for Item<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Item::List(items) => items.serialize(s),
            Item::ResultsVolume(v) => v.serialize(s),
            Item::Fixed(v) => v.serialize(s),
            Item::Mount(m) => m.serialize(s),
            Item::Env(e) => e.serialize(s),
            Item::Container(c) => c.serialize(s),
            Item::Text(t) => s.serialize_str(t),
            Item::Entry(key, value) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry(key, value)?;
                map.end()
            }
            Item::Annotations(key, value) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("annotations", &Item::Entry(key, value))?;
                map.end()
            }
        }
    }
}

/// `{"emptyDir":{"sizeLimit":...},"name":...}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultsVolume<'a> {
    /// `emptyDir`.
    pub empty_dir: SizeLimit<'a>,
    /// `name`.
    pub name: &'a str,
}

/// An emptyDir with a size limit.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SizeLimit<'a> {
    /// `sizeLimit`.
    pub size_limit: &'a Quantity,
}

/// A volume mount.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount<'a> {
    /// `mountPath`.
    pub mount_path: &'a str,
    /// `name`.
    pub name: &'a str,
    /// `readOnly`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// `subPath`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<&'a str>,
}

/// An env var: a literal value, or a field of the pod (downward API).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Env<'a> {
    /// `name`.
    pub name: &'a str,
    /// `value`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Cow<'a, str>>,
    /// `valueFrom`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<FieldRef<'a>>,
}

/// `{"fieldRef":{"apiVersion":"v1","fieldPath":...}}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldRef<'a> {
    /// `fieldRef`.
    pub field_ref: FieldSelector<'a>,
}

/// `{"apiVersion":"v1","fieldPath":...}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldSelector<'a> {
    /// `apiVersion`.
    pub api_version: &'a str,
    /// `fieldPath`.
    pub field_path: Cow<'a, str>,
}

/// The reporter's env: the vars fixed before any review (the downward-API ones, copied as
/// rendered), then the ones written for this Job.
#[derive(Debug, Clone)]
pub struct EnvList<'a> {
    /// Fixed vars, first.
    pub fixed: &'a [Fixed],
    /// This Job's vars.
    pub written: Vec<Env<'a>>,
}

impl EnvList<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, env) in self.fixed.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&env.json);
        }
        for (i, env) in self.written.iter().enumerate() {
            if i > 0 || !self.fixed.is_empty() {
                out.push(b',');
            }
            env.write(out);
        }
        out.push(b']');
    }
}

impl Serialize for EnvList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.fixed.len() + self.written.len()))?;
        for env in self.fixed {
            seq.serialize_element(env)?;
        }
        for env in &self.written {
            seq.serialize_element(env)?;
        }
        seq.end()
    }
}

/// The reporter container, its keys in sorted order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reporter<'a> {
    /// `env`.
    pub env: EnvList<'a>,
    /// `image`.
    pub image: &'a str,
    /// `imagePullPolicy`.
    pub image_pull_policy: &'a str,
    /// `name`.
    pub name: &'a str,
    /// `resources`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<&'a Fixed>,
    /// `restartPolicy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<&'a str>,
    /// `securityContext`.
    pub security_context: &'a Fixed,
    /// `terminationMessagePolicy`.
    pub termination_message_policy: &'a str,
    /// `volumeMounts`.
    pub volume_mounts: Vec<Mount<'a>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for s in [
            "",
            "plain",
            "a\"b",
            "back\\slash",
            "tab\there",
            "\u{1}\u{1f}\u{7f}",
            "é/ü ~0",
        ] {
            let mut out = Vec::new();
            string(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }
}
