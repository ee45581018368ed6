//! The HTTP server and the [`StandIn`] handle tests hold.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::fault::{Fault, FaultKind};
use crate::routes::{self, ApiRequest, Reply};
use crate::status::ApiError;
use crate::store::{Key, Resource, State};
use crate::wait::Signal;
use crate::watch;

/// Largest request body accepted, as the real server's 3 MiB limit.
const MAX_BODY: usize = 3 * 1024 * 1024;

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// One request as the stand-in received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    /// HTTP method, e.g. `PATCH`.
    pub method: String,
    /// URL path, e.g. `/apis/batch/v1/namespaces/default/jobs/j/status`.
    pub path: String,
    /// Raw (still percent-encoded) query string, if any.
    pub query: Option<String>,
    /// The Content-Type header, if any.
    pub content_type: Option<String>,
    /// The body as text (lossy UTF-8).
    pub body: String,
    /// HTTP status answered; 0 while in flight, for a hung request and a dropped connection.
    pub status: u16,
    /// Whether this is a watch (`?watch=true`); its status is known when the stream starts.
    pub watch: bool,
}

impl fmt::Display for LoggedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        write!(f, " -> {}", self.status)?;
        if !self.body.is_empty() {
            let body: String = self.body.chars().take(300).collect();
            write!(f, " body={body}")?;
        }
        Ok(())
    }
}

/// State shared by the server tasks and every [`StandIn`] clone.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) signal: Signal,
}

impl Shared {
    /// Locks the state; a panic elsewhere (e.g. in a test's check closure) must not wedge it.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the state, then wakes the waiters.
    pub(crate) fn change<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.lock());
        self.signal.notify();
        out
    }
}

/// Stops the server when the last [`StandIn`] clone is dropped (the sender's drop wakes it).
struct Handle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

/// A running Kubernetes API stand-in. Cheap to clone; the server stops when the last clone drops.
#[derive(Clone)]
pub struct StandIn {
    handle: Arc<Handle>,
}

impl fmt::Debug for StandIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandIn").field("url", &self.url()).finish()
    }
}

impl StandIn {
    /// Starts on 127.0.0.1:0 in its own thread with its own tokio runtime, so it works from
    /// sync tests, `#[tokio::test]` (any flavour) and the benchmark binaries alike.
    pub fn start() -> StandIn {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .expect("stand-in: cannot bind a TCP port on 127.0.0.1");
        listener
            .set_nonblocking(true)
            .expect("stand-in: cannot make the listener non-blocking");
        let addr = listener
            .local_addr()
            .expect("stand-in: listener has no local address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new()),
            signal: Signal::new(),
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let server_shared = shared.clone();
        std::thread::Builder::new()
            .name(format!("stand-in-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("stand-in-worker")
                    .enable_all()
                    .build()
                    .expect("stand-in: cannot build its tokio runtime");
                runtime.block_on(serve(listener, server_shared, stop_rx));
                // Hung requests and open watches are still pending: drop them, don't wait.
                runtime.shutdown_background();
            })
            .expect("stand-in: cannot spawn its server thread");
        StandIn {
            handle: Arc::new(Handle {
                shared,
                addr,
                _stop: stop_tx,
            }),
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.handle.addr)
    }

    /// Writes a kubeconfig (server = [`StandIn::url`], token auth, default namespace
    /// `default`) into `dir` and returns its path; the real binaries use it via `KUBECONFIG`.
    pub fn write_kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        crate::kubeconfig::write(&self.url(), dir)
    }

    fn create(&self, resource: Resource, object: Value) -> Value {
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|ns| !ns.is_empty())
            .unwrap_or("default")
            .to_owned();
        self.shared()
            .change(|s| s.create(resource, &namespace, object))
            .unwrap_or_else(|e| panic!("stand-in: cannot create the {}: {e}", resource.kind()))
    }

    /// Creates a Job (as `kubectl create` would); fills uid, resourceVersion, creationTimestamp.
    /// Panics if the object is not a valid Job.
    pub fn create_job(&self, job: Value) -> Value {
        self.create(Resource::Jobs, job)
    }

    /// Creates a Pod; an ownerReference to a Job without a `uid` gets the stored Job's uid.
    /// Panics if the object is not a valid Pod.
    pub fn create_pod(&self, mut pod: Value) -> Value {
        let namespace = pod
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_owned();
        if let Some(refs) = pod
            .pointer_mut("/metadata/ownerReferences")
            .and_then(Value::as_array_mut)
        {
            for owner in refs {
                let missing_uid = owner
                    .get("uid")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty);
                let job_name = owner.get("name").and_then(Value::as_str).map(str::to_owned);
                if owner.get("kind").and_then(Value::as_str) == Some("Job")
                    && missing_uid
                    && let Some(uid) = job_name
                        .and_then(|n| self.job(&namespace, &n))
                        .and_then(|j| j.pointer("/metadata/uid").cloned())
                {
                    owner["uid"] = uid;
                }
            }
        }
        self.create(Resource::Pods, pod)
    }

    fn get(&self, resource: Resource, namespace: &str, name: &str) -> Option<Value> {
        self.shared()
            .lock()
            .get(&Key::new(resource, namespace, name))
    }

    /// The stored Job, if any.
    pub fn job(&self, namespace: &str, name: &str) -> Option<Value> {
        self.get(Resource::Jobs, namespace, name)
    }

    /// The stored Pod, if any.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Value> {
        self.get(Resource::Pods, namespace, name)
    }

    /// Deletes a Job (a DELETED watch event); no-op if it does not exist.
    pub fn delete_job(&self, namespace: &str, name: &str) {
        let _ = self
            .shared()
            .change(|s| s.delete(&Key::new(Resource::Jobs, namespace, name)));
    }

    /// Convenience: the Job's `.status.conditions` entry of that type, if any.
    pub fn job_condition(&self, namespace: &str, job: &str, type_: &str) -> Option<Value> {
        self.job(namespace, job)?
            .pointer("/status/conditions")?
            .as_array()?
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
            .cloned()
    }

    /// Adds a scripted failure; faults are matched in the order they were added.
    pub fn inject_fault(&self, fault: Fault) {
        self.shared().change(|s| s.add_fault(fault));
    }

    /// Ends every open watch stream abruptly (mid-stream, no ERROR event), as a restarted
    /// apiserver would.
    pub fn cut_watches(&self) {
        self.shared().change(State::cut_watches);
    }

    /// Forgets watch history older than now, so a resume from an older resourceVersion gets
    /// a 410 Gone (`Expired`) ERROR event.
    pub fn compact_history(&self) {
        self.shared().change(State::compact_history);
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared().lock().resource_version()
    }

    /// Number of watch streams currently open (a watch whose client went away counts until
    /// the next event fails to reach it).
    pub fn open_watches(&self) -> usize {
        self.shared().lock().open_watches()
    }

    /// Every request, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared().lock().log.clone()
    }

    /// The core/v1 Events created, in creation order.
    pub fn events(&self) -> Vec<Value> {
        self.shared().lock().events()
    }
}

async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener)
        .expect("stand-in: cannot register the listener with tokio");
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                // Watch events and answers are small writes: don't let Nagle hold them back.
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), req));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        }
    }
}

fn json_response(code: u16, body: &Value, retry_after: Option<u64>) -> Response<Body> {
    let bytes = serde_json::to_vec(body).expect("a serde_json::Value always serializes");
    let mut builder = Response::builder()
        .status(code)
        .header("content-type", "application/json");
    if let Some(seconds) = retry_after {
        builder = builder.header("retry-after", seconds.to_string());
    }
    builder
        .body(
            Full::new(Bytes::from(bytes))
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .expect("status code and headers are valid")
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let watch = routes::is_watch(query.as_deref());
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::TooLarge { limit: MAX_BODY })
        }
        Err(_) => return Err(ApiError::ConnectionDropped),
    };
    let logged = LoggedRequest {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        content_type: content_type.clone(),
        body: body
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default(),
        status: 0,
        watch,
    };
    let target = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let (index, fault) = shared.change(|s| {
        s.log.push(logged);
        (s.log.len() - 1, s.take_fault(&method, &target))
    });
    let finish = |code: u16| shared.change(|s| s.log[index].status = code);
    match fault {
        Some(FaultKind::Hang) => return std::future::pending().await,
        Some(FaultKind::DropConnection) => return Err(ApiError::ConnectionDropped),
        Some(FaultKind::Status {
            code,
            retry_after_seconds,
        }) => {
            finish(code);
            return Ok(json_response(
                code,
                &ApiError::Injected { code }.status_body(),
                retry_after_seconds,
            ));
        }
        None => {}
    }
    let outcome = body.and_then(|body| {
        let request = ApiRequest {
            method: &method,
            path: &path,
            query: query.as_deref(),
            content_type: content_type.as_deref(),
            body: &body,
        };
        routes::route(&mut shared.lock(), &request)
    });
    let (code, response) = match outcome {
        Ok(Reply::Json(code, value)) => (code, json_response(code, &value, None)),
        Ok(Reply::Watch(rx, timeout)) => {
            let response = Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(watch::body(rx, timeout))
                .expect("status code and headers are valid");
            (200, response)
        }
        Err(e) => (e.code(), json_response(e.code(), &e.status_body(), None)),
    };
    finish(code);
    Ok(response)
}
