//! [`FaultProxy`]: a pass-through in front of the real API server that a test scripts, for the
//! faults a real server does not produce on cue ([`Fault`], [`Hostile`]). It logs every
//! request, and a test waits (bounded) on that log instead of sleeping.
//!
//! The binary under test talks plain HTTP to 127.0.0.1; the proxy talks TLS to the API server
//! and passes the client's `Authorization` header through, so the API server itself checks the
//! ServiceAccount token (a missing RBAC verb stays a real 403) and no second CA is needed. The
//! proxy runs on a runtime of its own (sync and async tests alike); dropping it stops every
//! connection and task, hung requests included.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, BodyStream, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, header};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, pem::PemObject};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::control_plane::Cluster;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = UnsyncBoxBody<Bytes, BoxError>;

/// Which requests a [`Fault`] applies to: a method (`"*"` for any) and a substring of the
/// path, optionally also substrings of the raw query (e.g. `watch=true`).
#[derive(Clone, Debug)]
pub struct Route {
    method: String,
    path: String,
    query: Vec<String>,
}

impl Route {
    /// `method` (`"GET"`, `"*"` for any) on paths containing `path`.
    pub fn new(method: &str, path: &str) -> Route {
        Route {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            query: Vec::new(),
        }
    }

    /// Also requires `part` in the raw query string.
    pub fn query(mut self, part: &str) -> Route {
        self.query.push(part.to_owned());
        self
    }

    /// Whether `request` is on this route.
    pub fn matches(&self, request: &Logged) -> bool {
        (self.method == "*" || self.method == request.method)
            && request.path.contains(&self.path)
            && self
                .query
                .iter()
                .all(|q| request.query.contains(q.as_str()))
    }
}

impl From<(&str, &str)> for Route {
    fn from((method, path): (&str, &str)) -> Route {
        Route::new(method, path)
    }
}

/// A hostile response body, generated as it is sent (never held in memory whole).
#[derive(Clone, Debug)]
pub enum Hostile {
    /// One JSON object of about `n` bytes (an annotation of `n` x's).
    Huge(usize),
    /// A watch event line that never ends (no newline, ever).
    EndlessLine,
    /// A `List` of `items` objects of about `item_bytes` each.
    List {
        /// How many items.
        items: usize,
        /// About how large each one is.
        item_bytes: usize,
    },
    /// These exact bytes (e.g. a watch `ERROR` event).
    Bytes(Bytes),
}

impl Hostile {
    /// The watch `ERROR` event the API server sends to a watch resumed from a resourceVersion
    /// older than it keeps (410 `Expired`): the client must list again.
    pub fn expired() -> Hostile {
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version: 1 (2)", "reason": "Expired", "code": 410});
        Hostile::Bytes(format!("{}\n", json!({"type": "ERROR", "object": status})).into())
    }
}

/// What happens to a request a [`Fault`] matches.
#[derive(Clone)]
enum Action {
    Status {
        code: u16,
        retry_after: Option<String>,
    },
    Hang,
    Drop,
    Delay(Duration),
    CutWatchAfter(usize),
    Respond {
        code: u16,
        body: Hostile,
    },
    Rewrite(Arc<dyn Fn(&mut Value) + Send + Sync>),
}

/// One scripted fault: the next `times` (1 unless set) requests on its route get it instead
/// of their normal answer. Faults apply in the order they were injected.
#[derive(Clone)]
pub struct Fault {
    route: Route,
    action: Action,
    times: usize,
}

impl Fault {
    fn new(route: impl Into<Route>, action: Action) -> Fault {
        Fault {
            route: route.into(),
            action,
            times: 1,
        }
    }

    /// Answer `code` with a real `Status` body (reason and message as the real server words
    /// them); 429 and 503 carry `Retry-After: 1`, as the real server's do.
    pub fn status(route: impl Into<Route>, code: u16) -> Fault {
        let retry_after = matches!(code, 429 | 503).then(|| "1".to_owned());
        Fault::new(route, Action::Status { code, retry_after })
    }

    /// Never answer (until the proxy drops); other connections keep working.
    pub fn hang(route: impl Into<Route>) -> Fault {
        Fault::new(route, Action::Hang)
    }

    /// Close the connection without an answer.
    pub fn drop_connection(route: impl Into<Route>) -> Fault {
        Fault::new(route, Action::Drop)
    }

    /// Forward after `delay`.
    pub fn delay(route: impl Into<Route>, delay: Duration) -> Fault {
        Fault::new(route, Action::Delay(delay))
    }

    /// Forward a watch, and cut its stream (the connection fails mid-response, as when the
    /// API server restarts) right after `events` events.
    pub fn cut_watch_after(route: impl Into<Route>, events: usize) -> Fault {
        Fault::new(route, Action::CutWatchAfter(events))
    }

    /// Answer `code` with a hostile `body` instead of forwarding.
    pub fn respond(route: impl Into<Route>, code: u16, body: Hostile) -> Fault {
        Fault::new(route, Action::Respond { code, body })
    }

    /// Forward, then pass the JSON answer through `edit` (not for watches).
    pub fn rewrite(
        route: impl Into<Route>,
        edit: impl Fn(&mut Value) + Send + Sync + 'static,
    ) -> Fault {
        Fault::new(route, Action::Rewrite(Arc::new(edit)))
    }

    /// Applies to the next `times` matching requests.
    pub fn times(mut self, times: usize) -> Fault {
        self.times = times;
        self
    }

    /// Sets the `Retry-After` of a [`Fault::status`] answer to `value` as given (absurd values
    /// included) and, when it is a number, `details.retryAfterSeconds` as the API server does.
    pub fn retry_after(mut self, value: &str) -> Fault {
        if let Action::Status { retry_after, .. } = &mut self.action {
            *retry_after = Some(value.to_owned());
        }
        self
    }
}

/// One request as the proxy received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    /// `GET`, `PUT`, …
    pub method: String,
    /// The URL path.
    pub path: String,
    /// The raw query string (`""` when none).
    pub query: String,
    /// The status answered: 0 until the answer's head is sent, for ever when hung or dropped.
    pub status: u16,
    /// Whether it is a watch (`watch=true` or `watch=1`).
    pub watch: bool,
}

struct Shared {
    faults: Mutex<Vec<Fault>>,
    /// The request log; a watch channel, so waiters wake on every change.
    log: tokio::sync::watch::Sender<Vec<Logged>>,
    /// Cancelled (and replaced) by [`FaultProxy::cut_watches`].
    cut: Mutex<CancellationToken>,
    upstream: String,
}

impl Shared {
    fn take_fault(&self, request: &Logged) -> Option<Action> {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let i = faults.iter().position(|f| f.route.matches(request))?;
        faults[i].times -= 1;
        let action = faults[i].action.clone();
        if faults[i].times == 0 {
            faults.remove(i);
        }
        Some(action)
    }
}

/// A running proxy; see the module docs.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 (a free port) in front of `cluster`'s API server.
    pub fn start(cluster: &Cluster) -> FaultProxy {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fault-proxy")
            .enable_all()
            .build()
            .expect("fault proxy: a tokio runtime");
        let upstream = cluster.server();
        // The cluster's CA and no credentials of its own: every request carries the client's.
        let mut config = kube::Config::new(upstream.parse().expect("the API server's URL"));
        let ca = CertificateDer::from_pem_file(cluster.ca_file()).expect("the cluster's CA");
        config.root_cert = Some(vec![ca.to_vec()]);
        // Bound here, not on the runtime: tests that start a proxy run on a runtime of their own.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("fault proxy: bind");
        listener
            .set_nonblocking(true)
            .expect("fault proxy: a non-blocking listener");
        let addr = listener.local_addr().expect("fault proxy: its address");
        let shared = Arc::new(Shared {
            faults: Mutex::default(),
            log: tokio::sync::watch::Sender::new(Vec::new()),
            cut: Mutex::default(),
            upstream,
        });
        let serving = shared.clone();
        runtime.spawn(async move {
            // kube's client for a proxy's raw requests: its TLS, the paths as they came.
            let client = kube::Client::try_from(config).expect("fault proxy: a client");
            let listener = tokio::net::TcpListener::from_std(listener).expect("fault proxy");
            while let Ok((stream, _)) = listener.accept().await {
                let (shared, client) = (serving.clone(), client.clone());
                let service = hyper::service::service_fn(move |req| {
                    handle(shared.clone(), client.clone(), req)
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        FaultProxy {
            addr,
            shared,
            runtime: Some(runtime),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A copy of `kubeconfig` (next to it, `-via-proxy` appended) whose server is this proxy;
    /// its credentials are kept, and the API server checks them.
    pub fn kubeconfig(&self, kubeconfig: &Path) -> PathBuf {
        let text = std::fs::read_to_string(kubeconfig)
            .unwrap_or_else(|e| panic!("{}: {e}", kubeconfig.display()));
        let upstream = &self.shared.upstream;
        assert!(
            text.contains(upstream),
            "{}: no {upstream}",
            kubeconfig.display()
        );
        let path = PathBuf::from(format!("{}-via-proxy", kubeconfig.display()));
        let text = text.replace(upstream, &self.url());
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// Adds `fault` after those already waiting.
    pub fn inject(&self, fault: Fault) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(fault);
    }

    /// Cuts every watch open now (the connection fails mid-response, as when the API server
    /// restarts); later watches are not affected.
    pub fn cut_watches(&self) {
        let mut cut = self.shared.cut.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *cut).cancel();
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Logged> {
        self.shared.log.borrow().clone()
    }

    /// The requests on `route` so far.
    pub fn requests_on(&self, route: impl Into<Route>) -> Vec<Logged> {
        let route = route.into();
        let log = self.shared.log.borrow();
        log.iter().filter(|r| route.matches(r)).cloned().collect()
    }

    /// Waits (bounded) until `check` returns `Some` for the request log, looking again on
    /// every request and answer; panics naming `what`, with the log, at the timeout.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&[Logged]) -> Option<T>,
    ) -> T {
        let mut log = self.shared.log.subscribe();
        let mut found = None;
        let seen = log.wait_for(|log| {
            found = check(log);
            found.is_some()
        });
        let _ = tokio::time::timeout(timeout, seen).await;
        found.unwrap_or_else(|| {
            let log: Vec<String> = (self.requests().iter())
                .map(|r| {
                    let q = if r.query.is_empty() { "" } else { "?" };
                    format!("{} {}{q}{} -> {}", r.method, r.path, r.query, r.status)
                })
                .collect();
            panic!(
                "fault proxy: no {what} within {timeout:?}; requests:\n  {}",
                log.join("\n  ")
            )
        })
    }

    /// Waits (bounded) until `n` requests on `route` were answered `status`; returns the `n`th.
    pub async fn wait_answered(
        &self,
        route: impl Into<Route>,
        status: u16,
        n: usize,
        timeout: Duration,
    ) -> Logged {
        let route = route.into();
        let what = format!("{n} request(s) on {route:?} answered {status}");
        let answered = |r: &&Logged| route.matches(r) && r.status == status;
        self.wait_for(&what, timeout, |log| {
            log.iter().filter(answered).nth(n.checked_sub(1)?).cloned()
        })
        .await
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Hung requests and open watches stay pending: drop them, don't wait.
            runtime.shutdown_background();
        }
    }
}

/// An error for hyper, which then closes the connection without an answer.
fn dropped(why: impl fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("the fault proxy dropped the connection: {why}"))
}

async fn handle(
    shared: Arc<Shared>,
    client: kube::Client,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let query = req.uri().query().unwrap_or_default().to_owned();
    let request = Logged {
        method: req.method().as_str().to_owned(),
        path: req.uri().path().to_owned(),
        watch: query
            .split('&')
            .any(|p| p == "watch=true" || p == "watch=1"),
        query,
        status: 0,
    };
    let action = shared.take_fault(&request);
    let mut index = 0;
    shared.log.send_modify(|log| {
        index = log.len();
        log.push(request.clone());
    });
    let answered = |code: u16| shared.log.send_modify(|log| log[index].status = code);
    let (mut cut_after, mut edit) = (None, None);
    match action {
        Some(Action::Hang) => std::future::pending().await,
        Some(Action::Drop) => return Err(dropped("an injected fault")),
        Some(Action::Status { code, retry_after }) => {
            answered(code);
            let mut status = status_body(code, &request);
            // As the API server does: the hint in the Status body too, where clients read it.
            if let Some(n) = retry_after.as_deref().and_then(|v| v.parse::<u64>().ok()) {
                status["details"]["retryAfterSeconds"] = json!(n);
            }
            let mut response = json_response(code, full(status.to_string()));
            if let Some(seconds) = retry_after {
                let value = header::HeaderValue::from_str(&seconds).map_err(dropped)?;
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return Ok(response);
        }
        Some(Action::Respond { code, body }) => {
            answered(code);
            return Ok(json_response(code, hostile(body)));
        }
        Some(Action::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(Action::CutWatchAfter(events)) => cut_after = Some(events),
        Some(Action::Rewrite(f)) => edit = Some(f),
        None => {}
    }
    let (mut parts, body) = req.into_parts();
    parts.headers.remove(header::HOST);
    let body = body.collect().await.map_err(dropped)?.to_bytes();
    // A failure upstream closes the client's connection too.
    let upstream = client.send(Request::from_parts(parts, body.into()));
    let upstream = upstream.await.map_err(dropped)?;
    let (mut parts, body) = upstream.into_parts();
    let body = if let Some(edit) = edit {
        let bytes = body.collect().await.map_err(dropped)?.to_bytes();
        let mut value: Value = serde_json::from_slice(&bytes).map_err(dropped)?;
        edit(&mut value);
        parts.headers.remove(header::CONTENT_LENGTH);
        full(value.to_string())
    } else if request.watch {
        watch_body(body, &shared, cut_after)
    } else {
        body.map_err(BoxError::from).boxed_unsync()
    };
    answered(parts.status.as_u16());
    Ok(Response::from_parts(parts, body))
}

/// `body` passed through until [`FaultProxy::cut_watches`] or, with `cut_after`, right after
/// that many event lines; then the stream fails, and hyper aborts the answer.
fn watch_body(body: kube::client::Body, shared: &Shared, cut_after: Option<usize>) -> Body {
    let cut = shared.cut.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let state = (BodyStream::new(body), cut, cut_after);
    let frames = futures::stream::unfold(state, |(mut body, cut, mut left)| async move {
        let frame = if left == Some(0) {
            tokio::task::yield_now().await; // so that hyper flushes the last event first
            None
        } else {
            tokio::select! {
                _ = cut.cancelled() => None,
                frame = body.next() => Some(frame?),
            }
        };
        let item = match frame {
            None => Err(BoxError::from("watch cut by the fault proxy")),
            Some(Err(e)) => Err(e.into()),
            Some(Ok(frame)) => Ok(count_lines(frame, &mut left)),
        };
        Some((item, (body, cut, left)))
    });
    BodyExt::boxed_unsync(StreamBody::new(frames))
}

/// `frame`, ending at the `left`-th newline if it has that many; counts `left` down.
fn count_lines(frame: Frame<Bytes>, left: &mut Option<usize>) -> Frame<Bytes> {
    let (Some(n), Some(data)) = (left.as_mut(), frame.data_ref()) else {
        return frame;
    };
    let ends: Vec<usize> = (0..data.len()).filter(|&i| data[i] == b'\n').collect();
    match ends.get(*n - 1) {
        Some(&end) => {
            *n = 0;
            Frame::data(data.slice(..=end))
        }
        None => {
            *n -= ends.len();
            frame
        }
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn json_response(code: u16, body: Body) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .expect("a response")
}

/// A `Status` as the real API server sends it for `code`.
fn status_body(code: u16, request: &Logged) -> Value {
    let reason = match code {
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    };
    let (method, path) = (&request.method, &request.path);
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("{reason}: injected by the fault proxy ({method} {path})"),
        "reason": reason, "details": {}, "code": code,
    })
}

/// `n` x's, in 64 KiB chunks.
fn padding(n: usize) -> impl Iterator<Item = Bytes> + Send + Sync {
    const CHUNK: usize = 64 * 1024;
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    let rest = Bytes::from(vec![b'x'; n % CHUNK]);
    std::iter::repeat_n(chunk, n / CHUNK).chain(std::iter::once(rest))
}

fn hostile(body: Hostile) -> Body {
    let text = |s: &str| std::iter::once(Bytes::from(s.to_owned()));
    let object = move |name: &str| {
        text(&format!(
            r#"{{"metadata":{{"name":"{name}","annotations":{{"pad":""#
        ))
    };
    let end = move || text(r#""}}}"#);
    let chunks: Box<dyn Iterator<Item = Bytes> + Send + Sync> = match body {
        Hostile::Huge(n) => Box::new(object("huge").chain(padding(n)).chain(end())),
        Hostile::EndlessLine => Box::new(
            text(r#"{"type":"MODIFIED","object":"#)
                .chain(object("endless"))
                .chain(std::iter::repeat(Bytes::from(vec![b'x'; 64 * 1024]))),
        ),
        Hostile::List { items, item_bytes } => Box::new(
            text(
                r#"{"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":"1"},"items":["#,
            )
            .chain((0..items).flat_map(move |i| {
                text(if i == 0 { "" } else { "," })
                    .chain(object(&format!("item-{i}")))
                    .chain(padding(item_bytes))
                    .chain(end())
            }))
            .chain(text("]}")),
        ),
        Hostile::Bytes(bytes) => Box::new(std::iter::once(bytes)),
    };
    let frames = futures::stream::iter(chunks.map(|b| Ok::<_, BoxError>(Frame::data(b))));
    BodyExt::boxed_unsync(StreamBody::new(frames))
}
