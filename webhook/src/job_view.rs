//! The part of a Job the injector reads, and nothing else, borrowed from its JSON by serde: an
//! AdmissionReview's bytes in the webhook, a manifest's document offline (no `ObjectMeta`, no
//! container specs, no `managedFields`, no status are built). One reader for both.
//!
//! Each field follows k8s-openapi's rules for it (null reads as absent, a missing required
//! string as empty, a value of the wrong type is an error), so a Job reads as the typed Job
//! would. Fields the injector never reads are skipped unchecked; the API server has decoded
//! the object into its typed form before any webhook sees it.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use contract::annotations::PREFIX;

/// A string borrowed from the input when it has no escapes, copied when it has.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text<'a>(pub Cow<'a, str>);

impl Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Text(Cow::Borrowed(s))
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

fn text_or_empty<'a>(s: Option<Text<'a>>) -> Text<'a> {
    s.unwrap_or_default()
}

/// The annotations under [`PREFIX`], in document order (a repeated key: the last one counts,
/// as in the map k8s-openapi builds). Every value must be a string, as there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OurAnnotations<'a>(Vec<(Text<'a>, Text<'a>)>);

impl<'a> OurAnnotations<'a> {
    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| **k == *key)
            .map(|(_, v)| &**v)
    }

    /// Every (key, value) under the prefix, in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Ours among a map of annotations.
    pub fn of(map: &'a std::collections::BTreeMap<String, String>) -> Self {
        OurAnnotations(
            map.iter()
                .filter(|(k, _)| k.starts_with(PREFIX))
                .map(|(k, v)| (Text::from(k.as_str()), Text::from(v.as_str())))
                .collect(),
        )
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for OurAnnotations<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OurAnnotations<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut ours = Vec::new();
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    let value: Text<'de> = map.next_value()?;
                    if key.starts_with(PREFIX) {
                        ours.push((key, value));
                    }
                }
                Ok(OurAnnotations(ours))
            }
        }
        d.deserialize_map(V)
    }
}

/// The Job: its namespace and annotations, and its spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct JobView<'a> {
    /// `metadata`.
    #[serde(borrow, default)]
    pub metadata: Option<MetaView<'a>>,
    /// `spec`.
    #[serde(borrow, default)]
    pub spec: Option<JobSpecView<'a>>,
}

/// `metadata` of the Job or of its pod template.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct MetaView<'a> {
    /// `namespace`.
    #[serde(borrow, default)]
    pub namespace: Option<Text<'a>>,
    /// `annotations` under our prefix; `None` when the map itself is absent.
    #[serde(borrow, default)]
    pub annotations: Option<OurAnnotations<'a>>,
}

/// `spec` of the Job.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSpecView<'a> {
    /// `activeDeadlineSeconds`.
    #[serde(default)]
    pub active_deadline_seconds: Option<i64>,
    /// `completions`.
    #[serde(default)]
    pub completions: Option<i32>,
    /// `parallelism`.
    #[serde(default)]
    pub parallelism: Option<i32>,
    /// `completionMode`.
    #[serde(borrow, default)]
    pub completion_mode: Option<Text<'a>>,
    /// `template` (absent or null reads as an empty template).
    #[serde(borrow, default, deserialize_with = "or_default")]
    pub template: TemplateView<'a>,
}

/// `spec.template`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TemplateView<'a> {
    /// `metadata`; `None` when absent.
    #[serde(borrow, default)]
    pub metadata: Option<MetaView<'a>>,
    /// `spec`.
    #[serde(borrow, default)]
    pub spec: Option<PodView<'a>>,
}

/// `spec.template.spec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodView<'a> {
    /// `containers`.
    #[serde(borrow, default, deserialize_with = "or_default")]
    pub containers: Vec<ContainerView<'a>>,
    /// `initContainers` (names only); `None` when absent.
    #[serde(borrow, default)]
    pub init_containers: Option<Vec<NamedView<'a>>>,
    /// `volumes`; `None` when absent.
    #[serde(borrow, default)]
    pub volumes: Option<Vec<VolumeView<'a>>>,
    /// `automountServiceAccountToken`.
    #[serde(default)]
    pub automount_service_account_token: Option<bool>,
    /// `restartPolicy`.
    #[serde(borrow, default)]
    pub restart_policy: Option<Text<'a>>,
}

/// A container of which only the name is read.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NamedView<'a> {
    /// `name`.
    #[serde(borrow, default, deserialize_with = "or_default")]
    pub name: Text<'a>,
}

/// A container: its name, env and mounts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerView<'a> {
    /// `name`.
    #[serde(borrow, default, deserialize_with = "or_default")]
    pub name: Text<'a>,
    /// `env`; `None` when absent.
    #[serde(borrow, default)]
    pub env: Option<Vec<EnvView<'a>>>,
    /// `volumeMounts`; `None` when absent.
    #[serde(borrow, default)]
    pub volume_mounts: Option<Vec<MountView<'a>>>,
}

/// An env var: its name, and its value when given literally (`None`: absent, or from a
/// reference).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct EnvView<'a> {
    /// `name`.
    #[serde(borrow, default, deserialize_with = "or_default")]
    pub name: Text<'a>,
    /// `value`.
    #[serde(borrow, default)]
    pub value: Option<Text<'a>>,
}

/// A volume mount.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountView<'a> {
    /// `name`.
    #[serde(borrow, default, deserialize_with = "or_default")]
    pub name: Text<'a>,
    /// `mountPath`.
    #[serde(borrow, default, deserialize_with = "or_default")]
    pub mount_path: Text<'a>,
    /// `subPath`.
    #[serde(borrow, default)]
    pub sub_path: Option<Text<'a>>,
}

/// A volume: its name, whether it is an emptyDir, and the kind of its source (for messages).
/// Any field but `name` is a source: the API server keeps no unknown fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeView<'a> {
    /// `name`.
    pub name: Text<'a>,
    /// `emptyDir` is set.
    pub empty_dir: bool,
    /// The first (in key order) source field that is set, as the pod spec names it
    /// (`hostPath`, `configMap`, ...), or `None`.
    pub source: Option<Text<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for VolumeView<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = VolumeView<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("Volume")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut volume = VolumeView::default();
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    if *key == *"name" {
                        volume.name = text_or_empty(map.next_value()?);
                        continue;
                    }
                    // A repeated field counts as its last value, as in the map serde builds.
                    let set = map.next_value::<Option<IgnoredAny>>()?.is_some();
                    if *key == *"emptyDir" {
                        volume.empty_dir = set;
                    }
                    if set && volume.source.as_deref().is_none_or(|s| *key < *s) {
                        volume.source = Some(key);
                    }
                }
                Ok(volume)
            }
        }
        d.deserialize_map(V)
    }
}

/// Reads `null` as the default value, as k8s-openapi does for required fields.
fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl<'a> JobView<'a> {
    /// `metadata.namespace`.
    pub fn namespace(&self) -> Option<&str> {
        self.metadata.as_ref()?.namespace.as_deref()
    }

    /// `metadata.annotations` (ours).
    pub fn annotations(&self) -> Option<&OurAnnotations<'a>> {
        self.metadata.as_ref()?.annotations.as_ref()
    }
}
