//! Maps an HTTP request onto the store, as the kube-apiserver's REST layer does.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::patch;
use crate::selector::Selector;
use crate::status::ApiError;
use crate::store::{Key, Resource, Since, State, WatchMsg};

/// The parts of a request that routing looks at.
pub(crate) struct ApiRequest<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) content_type: Option<&'a str>,
    pub(crate) body: &'a [u8],
}

/// A successful answer.
pub(crate) enum Reply {
    /// A JSON body with this HTTP code.
    Json(u16, Value),
    /// A watch stream, ended after the timeout if any.
    Watch(UnboundedReceiver<WatchMsg>, Option<Duration>),
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Decodes `%XX` escapes and `+` (form encoding) in a query component.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query parameters, percent-decoded, in order.
pub(crate) fn query_params(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn flag(params: &[(String, String)], name: &str) -> bool {
    matches!(param(params, name), Some("true" | "1"))
}

/// Whether the request is a watch (`?watch=true` or `?watch=1`).
pub(crate) fn is_watch(query: Option<&str>) -> bool {
    flag(&query_params(query), "watch")
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))
}

/// Answers one request against the state.
pub(crate) fn route(state: &mut State, req: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["api"] => Ok(Reply::Json(
            200,
            json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
        )),
        ["apis"] => Ok(Reply::Json(
            200,
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": "batch", "versions": [{"groupVersion": "batch/v1", "version": "v1"}],
             "preferredVersion": {"groupVersion": "batch/v1", "version": "v1"}}]}),
        )),
        ["version"] => Ok(Reply::Json(
            200,
            json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-stand-in",
            "platform": "linux/amd64"}),
        )),
        ["api", "v1", rest @ ..] => resource_route(state, req, "", "v1", rest),
        ["apis", group, version, rest @ ..] => resource_route(state, req, group, version, rest),
        _ => Err(ApiError::NoRoute),
    }
}

fn resource_route(
    state: &mut State,
    req: &ApiRequest<'_>,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Reply, ApiError> {
    let (namespace, plural, name, sub) = match rest {
        [plural] => (None, *plural, None, None),
        ["namespaces", ns, plural] => (Some(*ns), *plural, None, None),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name), None),
        ["namespaces", ns, plural, name, sub] => (Some(*ns), *plural, Some(*name), Some(*sub)),
        _ => return Err(ApiError::NoRoute),
    };
    let resource = Resource::lookup(group, version, plural).ok_or(ApiError::NoRoute)?;
    let params = query_params(req.query);
    match (namespace, name, sub) {
        (ns, None, None) => collection(state, req, resource, ns, &params),
        (Some(ns), Some(name), None) => item(state, req, &Key::new(resource, ns, name), false),
        (Some(ns), Some(name), Some("status")) if resource.has_status_subresource() => {
            item(state, req, &Key::new(resource, ns, name), true)
        }
        _ => Err(ApiError::NoRoute),
    }
}

fn collection(
    state: &mut State,
    req: &ApiRequest<'_>,
    resource: Resource,
    namespace: Option<&str>,
    params: &[(String, String)],
) -> Result<Reply, ApiError> {
    match req.method {
        "GET" => {
            let selector = Selector::parse(
                namespace.map(str::to_owned),
                param(params, "labelSelector"),
                param(params, "fieldSelector"),
            )?;
            if !flag(params, "watch") {
                return Ok(Reply::Json(200, state.list(resource, &selector)));
            }
            let since = match param(params, "resourceVersion") {
                None | Some("" | "0") => {
                    Since::Current { initial_events_end: flag(params, "sendInitialEvents") }
                }
                Some(rv) => Since::After(rv.parse().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "invalid resourceVersion {rv:?}: accepted are a resourceVersion from this server (an integer), \"0\" or none"
                    ))
                })?),
            };
            let timeout = match param(params, "timeoutSeconds") {
                None | Some("" | "0") => None,
                Some(t) => Some(Duration::from_secs(t.parse().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "invalid timeoutSeconds {t:?}: accepted is a whole number of seconds"
                    ))
                })?)),
            };
            let rx = state.watch(
                resource,
                selector,
                since,
                flag(params, "allowWatchBookmarks"),
            );
            Ok(Reply::Watch(rx, timeout))
        }
        "POST" => {
            let namespace = namespace.ok_or(ApiError::MethodNotAllowed)?;
            let object = parse_json(req.body)?;
            Ok(Reply::Json(201, state.create(resource, namespace, object)?))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

fn item(
    state: &mut State,
    req: &ApiRequest<'_>,
    key: &Key,
    status_only: bool,
) -> Result<Reply, ApiError> {
    let not_found = || ApiError::NotFound {
        resource: key.resource,
        name: key.name.clone(),
    };
    match req.method {
        "GET" => Ok(Reply::Json(200, state.get(key).ok_or_else(not_found)?)),
        "PUT" => {
            let object = parse_json(req.body)?;
            if let Some(name) = object.pointer("/metadata/name").and_then(Value::as_str)
                && name != key.name
            {
                return Err(ApiError::BadRequest(format!(
                    "the name of the object ({name}) does not match the name on the URL ({})",
                    key.name
                )));
            }
            Ok(Reply::Json(200, state.update(key, status_only, object)?))
        }
        "PATCH" => {
            patch::check_content_type(req.content_type)?;
            Ok(Reply::Json(200, state.patch(key, status_only, req.body)?))
        }
        "DELETE" if !status_only => Ok(Reply::Json(200, state.delete(key)?)),
        _ => Err(ApiError::MethodNotAllowed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let p = query_params(Some("fieldSelector=metadata.name%3Dp1&watch=true&x"));
        assert_eq!(param(&p, "fieldSelector"), Some("metadata.name=p1"));
        assert!(flag(&p, "watch"));
        assert_eq!(param(&p, "x"), Some(""));
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("a+b%20c"), "a b c");
    }
}
