//! The JSON Patch the injector writes: `add` operations whose values are typed and borrowed
//! from the Job and the configuration. The webhook serializes them straight to bytes; the
//! offline `inject` and the tests turn them into a [`json_patch::Patch`].
//!
//! Every value writes its keys in sorted order, as serde_json's own `Value` (a sorted map)
//! does, so both renderings of a patch are the same bytes. `tests/patch_bytes.rs` holds them
//! to that.

use std::borrow::Cow;
use std::fmt;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::core::v1::{ResourceRequirements, SecurityContext, Volume};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// One `add` operation.
#[derive(Debug, Clone)]
pub struct Add<'a> {
    /// Where, as JSON Pointer tokens (unescaped).
    pub path: Vec<&'a str>,
    /// What.
    pub value: Item<'a>,
}

impl<'a> Add<'a> {
    /// `add` of `value` at the pointer made of `path`.
    pub fn new(path: Vec<&'a str>, value: Item<'a>) -> Self {
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

/// The same operation as json-patch writes it: `{"op":"add","path":...,"value":...}`.
impl Serialize for Add<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("op", "add")?;
        map.serialize_entry("path", &Pointer(&self.path))?;
        map.serialize_entry("value", &self.value)?;
        map.end()
    }
}

/// A JSON Pointer written from its tokens (`~` as `~0`, `/` as `~1`).
struct Pointer<'p, 'a>(&'p [&'a str]);

impl fmt::Display for Pointer<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for token in self.0 {
            f.write_str("/")?;
            let mut rest = *token;
            while let Some(i) = rest.find(['~', '/']) {
                f.write_str(&rest[..i])?;
                f.write_str(if rest.as_bytes()[i] == b'~' {
                    "~0"
                } else {
                    "~1"
                })?;
                rest = &rest[i + 1..];
            }
            f.write_str(rest)?;
        }
        Ok(())
    }
}

impl Serialize for Pointer<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The patch as a [`json_patch::Patch`] (values as `serde_json::Value`).
pub fn to_patch(ops: &[Add<'_>]) -> Patch {
    Patch(ops.iter().map(Add::to_operation).collect())
}

/// Appends the patch, as JSON, to `out`.
pub fn write(ops: &[Add<'_>], out: &mut Vec<u8>) -> serde_json::Result<()> {
    serde_json::to_writer(out, ops)
}

/// A value the injector adds.
#[derive(Debug, Clone)]
pub enum Item<'a> {
    /// A new array of items.
    List(Vec<Item<'a>>),
    /// The results emptyDir.
    ResultsVolume(ResultsVolume<'a>),
    /// A volume fixed at build time (the projected token).
    Volume(&'a Volume),
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
            Item::Volume(v) => v.serialize(s),
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

/// The reporter container, its keys in sorted order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reporter<'a> {
    /// `env`.
    pub env: Vec<Env<'a>>,
    /// `image`.
    pub image: &'a str,
    /// `imagePullPolicy`.
    pub image_pull_policy: &'a str,
    /// `name`.
    pub name: &'a str,
    /// `resources`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<&'a ResourceRequirements>,
    /// `restartPolicy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<&'a str>,
    /// `securityContext`.
    pub security_context: &'a SecurityContext,
    /// `terminationMessagePolicy`.
    pub termination_message_policy: &'a str,
    /// `volumeMounts`.
    pub volume_mounts: Vec<Mount<'a>>,
}
