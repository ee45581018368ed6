//! The JSON Patch the injector writes: `add` operations whose values are typed and borrowed
//! from the Job and the configuration, serialized by serde. The webhook writes them into its
//! answer; the offline `inject` reads them back as a [`json_patch::Patch`] to apply them.
//!
//! Every object's keys are declared in sorted order, the order a `serde_json::Value` (a sorted
//! map) writes them in, so the bytes stay those of the goldens under `tests/data/golden/`.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::value::RawValue;

/// One `add` operation.
#[derive(Debug, Clone, Serialize)]
pub struct Add<'a> {
    op: &'static str,
    /// Where: a JSON Pointer.
    pub path: String,
    /// What.
    pub value: Item<'a>,
}

impl<'a> Add<'a> {
    /// `add` of `value` at `path` (a JSON Pointer).
    pub fn new(path: String, value: Item<'a>) -> Self {
        Add {
            op: "add",
            path,
            value,
        }
    }
}

/// The patch as JSON.
pub fn to_json(ops: &[Add<'_>]) -> serde_json::Result<Vec<u8>> {
    // Room for a typical patch (about 2.5 KB), so the buffer rarely grows.
    let mut out = Vec::with_capacity(4096);
    serde_json::to_writer(&mut out, ops).map(|()| out)
}

/// The patch as a [`json_patch::Patch`], read back from its JSON: one writer for both uses.
pub fn to_patch(ops: &[Add<'_>]) -> serde_json::Result<json_patch::Patch> {
    serde_json::from_slice(&to_json(ops)?)
}

/// A value fixed before any review (the securityContext, the token volume, the downward-API
/// env vars, the configured resources), rendered to JSON once: every patch copies it.
#[derive(Debug, Clone)]
pub struct Fixed(Box<RawValue>);

impl Fixed {
    /// Renders `value` (through `serde_json::Value`, so its keys are sorted).
    pub fn new<T: Serialize>(value: &T) -> Fixed {
        // k8s-openapi types always serialize (string keys only), and a Value always renders.
        let json = serde_json::to_value(value)
            .and_then(|v| serde_json::value::to_raw_value(&v))
            .unwrap_or_else(|_| RawValue::NULL.to_owned());
        Fixed(json)
    }

    /// The value as JSON.
    pub fn json(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for Fixed {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl Serialize for Fixed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// A value the injector adds.
#[derive(Debug, Clone)]
pub enum Item<'a> {
    /// A new array of items.
    List(Vec<Item<'a>>),
    /// The results emptyDir.
    ResultsVolume(ResultsVolume<'a>),
    /// A value fixed before any review.
    Fixed(&'a Fixed),
    /// A volume mount.
    Mount(Mount<'a>),
    /// A plain env var.
    Env(Env<'a>),
    /// The reporter container.
    Container(Box<Reporter<'a>>),
    /// A string.
    Text(&'a str),
    /// An object of one entry (`{key: value}`).
    Entry(&'a str, Box<Item<'a>>),
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

/// An env var with a literal value.
#[derive(Debug, Clone, Serialize)]
pub struct Env<'a> {
    /// `name`.
    pub name: &'a str,
    /// `value`.
    pub value: Cow<'a, str>,
}

/// The reporter container, its keys in sorted order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reporter<'a> {
    /// `env`: the downward-API vars ([`Item::Fixed`]), then this Job's ([`Item::Env`]).
    pub env: Vec<Item<'a>>,
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

/// The JSON Pointer of `tokens`: each escaped (`~` as `~0`, `/` as `~1`) after a `/`.
pub fn pointer(tokens: &[&str]) -> String {
    let mut out = String::with_capacity(64);
    for token in tokens {
        out.push('/');
        if token.contains(['~', '/']) {
            out.push_str(&token.replace('~', "~0").replace('/', "~1"));
        } else {
            out.push_str(token);
        }
    }
    out
}
