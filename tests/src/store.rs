//! The stand-in's state: objects, the resourceVersion counter, watch history and watchers.
//!
//! Everything here is synchronous and runs under one `std::sync::Mutex`, never across an
//! await: a write updates the object, appends to the history and hands the watch event to
//! every interested watcher's unbounded channel in the same critical section, so watchers
//! see writes in resourceVersion order and immediately.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::fault::{Fault, FaultKind};
use crate::patch;
use crate::selector::Selector;
use crate::server::LoggedRequest;
use crate::status::{ApiError, status_body};

/// Watch history kept for resumes; older changes answer 410 Gone, as after an etcd compaction.
const HISTORY_LIMIT: usize = 10_000;

/// The resources the stand-in serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Resource {
    /// core/v1 pods.
    Pods,
    /// batch/v1 jobs.
    Jobs,
    /// core/v1 events (the reporter's; events.k8s.io is not served).
    Events,
}

impl Resource {
    /// The resource served at `/api(s)/{group}/{version}/…/{plural}`.
    pub(crate) fn lookup(group: &str, version: &str, plural: &str) -> Option<Resource> {
        match (group, version, plural) {
            ("", "v1", "pods") => Some(Resource::Pods),
            ("batch", "v1", "jobs") => Some(Resource::Jobs),
            ("", "v1", "events") => Some(Resource::Events),
            _ => None,
        }
    }

    pub(crate) fn group(self) -> &'static str {
        match self {
            Resource::Pods | Resource::Events => "",
            Resource::Jobs => "batch",
        }
    }

    pub(crate) fn plural(self) -> &'static str {
        match self {
            Resource::Pods => "pods",
            Resource::Jobs => "jobs",
            Resource::Events => "events",
        }
    }

    pub(crate) fn kind(self) -> &'static str {
        match self {
            Resource::Pods => "Pod",
            Resource::Jobs => "Job",
            Resource::Events => "Event",
        }
    }

    pub(crate) fn api_version(self) -> &'static str {
        match self {
            Resource::Pods | Resource::Events => "v1",
            Resource::Jobs => "batch/v1",
        }
    }

    /// `jobs.batch`, `pods`: how error messages name the resource.
    pub(crate) fn qualified(self) -> String {
        with_group(self.plural(), self.group())
    }

    /// `Job.batch`, `Pod`: how validation errors name the kind.
    pub(crate) fn kind_qualified(self) -> String {
        with_group(self.kind(), self.group())
    }

    fn has_status(self) -> bool {
        matches!(self, Resource::Pods | Resource::Jobs)
    }

    pub(crate) fn has_status_subresource(self) -> bool {
        self.has_status()
    }

    fn is_event(self) -> bool {
        self == Resource::Events
    }
}

fn with_group(name: &str, group: &str) -> String {
    if group.is_empty() {
        name.to_owned()
    } else {
        format!("{name}.{group}")
    }
}

/// Identity of a stored object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    pub(crate) resource: Resource,
    pub(crate) namespace: String,
    pub(crate) name: String,
}

impl Key {
    pub(crate) fn new(resource: Resource, namespace: &str, name: &str) -> Key {
        Key {
            resource,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

struct Stored {
    /// Creation order, for listing events as they were created.
    seq: u64,
    object: Value,
}

/// What a watch stream receives.
#[derive(Debug)]
pub(crate) enum WatchMsg {
    /// One newline-terminated WatchEvent.
    Line(Bytes),
    /// Abort the stream mid-flight, as a restarted apiserver would.
    Cut,
    /// Finish the stream cleanly.
    End,
}

struct Watcher {
    resource: Resource,
    selector: Selector,
    bookmarks: bool,
    tx: UnboundedSender<WatchMsg>,
}

struct Change {
    rv: u64,
    key: Key,
    kind: &'static str,
    object: Value,
}

/// Where a new watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Since {
    /// No (or "0") resourceVersion: synthetic ADDED events for the current objects first;
    /// with `initial_events_end`, then a BOOKMARK annotated `k8s.io/initial-events-end`.
    Current { initial_events_end: bool },
    /// Every change after this resourceVersion, then live changes.
    After(u64),
}

/// All mutable state of one stand-in.
pub(crate) struct State {
    rv: u64,
    seq: u64,
    uid_seed: u64,
    objects: BTreeMap<Key, Stored>,
    history: VecDeque<Change>,
    /// Changes at or below this resourceVersion are forgotten.
    floor: u64,
    watchers: Vec<Watcher>,
    faults: VecDeque<Fault>,
    /// Every request, in arrival order.
    pub(crate) log: Vec<LoggedRequest>,
}

/// RFC 3339 UTC timestamp with second precision, as in metadata.creationTimestamp.
pub(crate) fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({ "type": kind, "object": object }))
        .expect("a serde_json::Value always serializes");
    line.push(b'\n');
    Bytes::from(line)
}

fn bookmark_line(resource: Resource, rv: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({ "resourceVersion": rv.to_string() });
    if initial_events_end {
        metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    event_line(
        "BOOKMARK",
        &json!({ "kind": resource.kind(), "apiVersion": resource.api_version(), "metadata": metadata }),
    )
}

fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    object["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

fn str_at<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

/// Deserializes into the real Kubernetes type, turning a serde error into 422 with its path.
fn check_type<T: DeserializeOwned>(
    resource: Resource,
    name: &str,
    object: &Value,
) -> Result<(), ApiError> {
    serde_path_to_error::deserialize::<_, T>(object)
        .map(drop)
        .map_err(|e| {
            let path = e.path().to_string();
            ApiError::Invalid {
                resource,
                name: name.to_owned(),
                field: if path == "." {
                    "<root>".to_owned()
                } else {
                    path
                },
                detail: e.inner().to_string(),
            }
        })
}

/// Validates an object as the real server would, for the rules the product can trip.
pub(crate) fn validate(resource: Resource, object: &Value) -> Result<(), ApiError> {
    use k8s_openapi::api::{batch::v1::Job, core::v1 as core};
    let name = str_at(object, "/metadata/name").unwrap_or("").to_owned();
    let invalid = |field: &str, detail: String| ApiError::Invalid {
        resource,
        name: name.clone(),
        field: field.to_owned(),
        detail,
    };
    match resource {
        Resource::Jobs => check_type::<Job>(resource, &name, object)?,
        Resource::Pods => check_type::<core::Pod>(resource, &name, object)?,
        Resource::Events => {
            check_type::<core::Event>(resource, &name, object)?;
            if !object.get("involvedObject").is_some_and(Value::is_object) {
                return Err(invalid("involvedObject", "Required value".to_owned()));
            }
        }
    }
    if resource.is_event() {
        if str_at(object, "/reason").is_none_or(|r| r.trim().is_empty()) {
            return Err(invalid("reason", "Required value".to_owned()));
        }
        if let Some(t) = object.get("type").and_then(Value::as_str)
            && !matches!(t, "Normal" | "Warning")
        {
            return Err(invalid(
                "type",
                format!("Unsupported value: {t:?}: supported values: \"Normal\", \"Warning\""),
            ));
        }
    }
    if let Some(conditions) = object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
    {
        for (i, c) in conditions.iter().enumerate() {
            if c.get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(invalid(
                    &format!("status.conditions[{i}].type"),
                    "Required value".to_owned(),
                ));
            }
            let status = c.get("status").and_then(Value::as_str).unwrap_or("");
            if !matches!(status, "True" | "False" | "Unknown") {
                return Err(invalid(
                    &format!("status.conditions[{i}].status"),
                    format!(
                        "Unsupported value: {status:?}: supported values: \"False\", \"True\", \"Unknown\""
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The object without its resourceVersion, to detect no-op writes (which the real server
/// does not persist: no new resourceVersion, no watch event).
fn without_rv(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    copy
}

impl State {
    pub(crate) fn new() -> State {
        let uid_seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        State {
            rv: 1,
            seq: 0,
            uid_seed,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            floor: 1,
            watchers: Vec::new(),
            faults: VecDeque::new(),
            log: Vec::new(),
        }
    }

    /// The current (latest) resourceVersion.
    pub(crate) fn resource_version(&self) -> u64 {
        self.rv
    }

    fn next_uid(&mut self) -> String {
        self.seq += 1;
        let hi = self.uid_seed as u32;
        format!("{hi:08x}-5a4d-4e11-8000-{:012x}", self.seq)
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Value> {
        self.objects.get(key).map(|s| s.object.clone())
    }

    /// Objects of a resource that match, in name order (namespaced then by name).
    pub(crate) fn select(&self, resource: Resource, selector: &Selector) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(k, s)| k.resource == resource && selector.matches(&k.namespace, &s.object))
            .map(|(_, s)| s.object.clone())
            .collect()
    }

    /// A `…List` object, as a LIST answers.
    pub(crate) fn list(&self, resource: Resource, selector: &Selector) -> Value {
        json!({
            "kind": format!("{}List", resource.kind()),
            "apiVersion": resource.api_version(),
            "metadata": { "resourceVersion": self.rv.to_string() },
            "items": self.select(resource, selector),
        })
    }

    /// The events in creation order.
    pub(crate) fn events(&self) -> Vec<Value> {
        let mut events: Vec<&Stored> = self
            .objects
            .iter()
            .filter(|(k, _)| k.resource.is_event())
            .map(|(_, s)| s)
            .collect();
        events.sort_by_key(|s| s.seq);
        events.into_iter().map(|s| s.object.clone()).collect()
    }

    /// Stores `object` under a new resourceVersion and tells the watchers.
    fn write(&mut self, key: Key, mut object: Value, kind: &'static str) -> Value {
        self.rv += 1;
        let rv = self.rv;
        metadata_mut(&mut object).insert("resourceVersion".into(), rv.to_string().into());
        if kind == "DELETED" {
            self.objects.remove(&key);
        } else {
            let seq = match self.objects.get(&key) {
                Some(s) => s.seq,
                None => {
                    self.seq += 1;
                    self.seq
                }
            };
            self.objects.insert(
                key.clone(),
                Stored {
                    seq,
                    object: object.clone(),
                },
            );
        }
        let line = event_line(kind, &object);
        self.watchers.retain(|w| {
            if w.resource == key.resource && w.selector.matches(&key.namespace, &object) {
                w.tx.send(WatchMsg::Line(line.clone())).is_ok()
            } else if w.bookmarks {
                // Lets clients advance their resourceVersion past writes they don't see.
                w.tx.send(WatchMsg::Line(bookmark_line(w.resource, rv, false)))
                    .is_ok()
            } else {
                !w.tx.is_closed()
            }
        });
        self.history.push_back(Change {
            rv,
            key,
            kind,
            object: object.clone(),
        });
        while self.history.len() > HISTORY_LIMIT {
            if let Some(old) = self.history.pop_front() {
                self.floor = old.rv;
            }
        }
        object
    }

    /// POST: creates an object, filling the server-owned metadata.
    pub(crate) fn create(
        &mut self,
        resource: Resource,
        namespace: &str,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        if !object.is_object() {
            return Err(ApiError::BadRequest(format!(
                "the body must be a {} object, got {object}",
                resource.kind()
            )));
        }
        object["apiVersion"] = resource.api_version().into();
        object["kind"] = resource.kind().into();
        let uid = self.next_uid();
        let meta = metadata_mut(&mut object);
        match meta.get("namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() && ns != namespace => {
                return Err(ApiError::BadRequest(format!(
                    "the namespace of the provided object ({ns}) does not match the namespace sent on the request ({namespace})"
                )));
            }
            _ => {
                meta.insert("namespace".into(), namespace.into());
            }
        }
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if name.is_empty() {
            let Some(prefix) = meta.get("generateName").and_then(Value::as_str) else {
                return Err(ApiError::Invalid {
                    resource,
                    name: String::new(),
                    field: "metadata.name".into(),
                    detail: "Required value: name or generateName is required".into(),
                });
            };
            name = format!("{prefix}{}", suffix(self.seq));
            meta.insert("name".into(), name.clone().into());
        }
        meta.insert("uid".into(), uid.into());
        meta.insert("creationTimestamp".into(), now().into());
        if resource.has_status() {
            meta.insert("generation".into(), 1.into());
        }
        meta.remove("resourceVersion");
        meta.remove("deletionTimestamp");
        validate(resource, &object)?;
        let key = Key::new(resource, namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::AlreadyExists { resource, name });
        }
        Ok(self.write(key, object, "ADDED"))
    }

    /// PUT (also the last step of PATCH): replaces the object or, with `status_only`, only
    /// its `.status`. A non-empty `metadata.resourceVersion` must be the current one.
    pub(crate) fn update(
        &mut self,
        key: &Key,
        status_only: bool,
        candidate: Value,
    ) -> Result<Value, ApiError> {
        let existing = self.get(key).ok_or_else(|| not_found(key))?;
        if !candidate.is_object() {
            return Err(ApiError::BadRequest(format!(
                "the body must be a {} object, got {candidate}",
                key.resource.kind()
            )));
        }
        let current_rv = str_at(&existing, "/metadata/resourceVersion").unwrap_or("");
        if let Some(rv) = str_at(&candidate, "/metadata/resourceVersion")
            && !rv.is_empty()
            && rv != current_rv
        {
            return Err(ApiError::Conflict {
                resource: key.resource,
                name: key.name.clone(),
            });
        }
        let next = if status_only {
            let mut next = existing.clone();
            match candidate.get("status") {
                Some(status) if !status.is_null() => next["status"] = status.clone(),
                _ => {
                    if let Some(o) = next.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            next
        } else {
            let mut next = candidate;
            next["apiVersion"] = key.resource.api_version().into();
            next["kind"] = key.resource.kind().into();
            if key.resource.has_status() {
                match existing.get("status") {
                    Some(status) => next["status"] = status.clone(),
                    None => {
                        if let Some(o) = next.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            let old_meta = existing.get("metadata").cloned().unwrap_or_default();
            let spec_changed = next.get("spec") != existing.get("spec");
            let meta = metadata_mut(&mut next);
            for owned in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "generation",
            ] {
                match old_meta.get(owned) {
                    Some(v) => meta.insert(owned.into(), v.clone()),
                    None => meta.remove(owned),
                };
            }
            if spec_changed && let Some(g) = old_meta.get("generation").and_then(Value::as_i64) {
                meta.insert("generation".into(), (g + 1).into());
            }
            next
        };
        validate(key.resource, &next)?;
        if without_rv(&next) == without_rv(&existing) {
            return Ok(existing);
        }
        Ok(self.write(key.clone(), next, "MODIFIED"))
    }

    /// PATCH: applies the patch to the current object, then updates as PUT would (so a
    /// resourceVersion in the patch is a precondition).
    pub(crate) fn patch(
        &mut self,
        key: &Key,
        status_only: bool,
        body: &[u8],
    ) -> Result<Value, ApiError> {
        let existing = self.get(key).ok_or_else(|| not_found(key))?;
        let patched = patch::apply(&existing, body)?;
        self.update(key, status_only, patched)
    }

    /// DELETE: removes the object at once (the kubelet's graceful part is `StandIn::delete_pod`).
    pub(crate) fn delete(&mut self, key: &Key) -> Result<Value, ApiError> {
        let existing = self.get(key).ok_or_else(|| not_found(key))?;
        Ok(self.write(key.clone(), existing, "DELETED"))
    }

    /// A write by a test helper acting as a controller: `edit` changes a copy of the object,
    /// which is validated and stored (no-op edits are not written).
    pub(crate) fn edit(
        &mut self,
        key: &Key,
        edit: impl FnOnce(&mut Value),
    ) -> Result<Value, ApiError> {
        let existing = self.get(key).ok_or_else(|| not_found(key))?;
        let mut next = existing.clone();
        edit(&mut next);
        validate(key.resource, &next)?;
        if without_rv(&next) == without_rv(&existing) {
            return Ok(existing);
        }
        Ok(self.write(key.clone(), next, "MODIFIED"))
    }

    /// Starts a watch: replays what the client missed, then registers for live changes.
    pub(crate) fn watch(
        &mut self,
        resource: Resource,
        selector: Selector,
        since: Since,
        bookmarks: bool,
    ) -> UnboundedReceiver<WatchMsg> {
        let (tx, rx) = unbounded_channel();
        match since {
            Since::Current { initial_events_end } => {
                for object in self.select(resource, &selector) {
                    let _ = tx.send(WatchMsg::Line(event_line("ADDED", &object)));
                }
                if initial_events_end && bookmarks {
                    let _ = tx.send(WatchMsg::Line(bookmark_line(resource, self.rv, true)));
                }
            }
            Since::After(rv) if rv < self.floor => {
                let gone = status_body(
                    410,
                    "Expired",
                    &format!("too old resource version: {rv} ({})", self.floor),
                    None,
                );
                let _ = tx.send(WatchMsg::Line(event_line("ERROR", &gone)));
                let _ = tx.send(WatchMsg::End);
                return rx;
            }
            Since::After(rv) => {
                for change in self.history.iter().filter(|c| c.rv > rv) {
                    if change.key.resource == resource
                        && selector.matches(&change.key.namespace, &change.object)
                    {
                        let _ = tx.send(WatchMsg::Line(event_line(change.kind, &change.object)));
                    }
                }
            }
        }
        self.watchers.push(Watcher {
            resource,
            selector,
            bookmarks,
            tx,
        });
        rx
    }

    /// Aborts every open watch stream.
    pub(crate) fn cut_watches(&mut self) {
        for w in self.watchers.drain(..) {
            let _ = w.tx.send(WatchMsg::Cut);
        }
    }

    /// Forgets all history: a resume from any earlier resourceVersion gets 410.
    pub(crate) fn compact_history(&mut self) {
        self.history.clear();
        self.floor = self.rv;
    }

    /// Number of open watch streams.
    pub(crate) fn open_watches(&self) -> usize {
        self.watchers.iter().filter(|w| !w.tx.is_closed()).count()
    }

    pub(crate) fn add_fault(&mut self, fault: Fault) {
        self.faults.push_back(fault);
    }

    /// Consumes one use of the first fault matching this request.
    pub(crate) fn take_fault(&mut self, method: &str, target: &str) -> Option<FaultKind> {
        let index = self.faults.iter().position(|f| f.matches(method, target))?;
        let fault = &mut self.faults[index];
        fault.count -= 1;
        let kind = fault.kind.clone();
        if fault.count == 0 {
            self.faults.remove(index);
        }
        Some(kind)
    }
}

fn not_found(key: &Key) -> ApiError {
    ApiError::NotFound {
        resource: key.resource,
        name: key.name.clone(),
    }
}

/// A 5-character generateName suffix, from the alphabet the real server uses.
fn suffix(n: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7;
    (0..5)
        .map(|_| {
            let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
            x /= ALPHABET.len() as u64;
            c
        })
        .collect()
}
