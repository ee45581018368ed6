//! The HTTP body of a watch: one JSON WatchEvent per chunk, as soon as it happens.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::store::WatchMsg;

/// Streams the watcher's messages; ends cleanly at `timeout` (like `timeoutSeconds`) or on
/// [`WatchMsg::End`], and aborts the connection on [`WatchMsg::Cut`].
pub(crate) fn body(
    rx: UnboundedReceiver<WatchMsg>,
    timeout: Option<Duration>,
) -> UnsyncBoxBody<Bytes, std::io::Error> {
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let stream = futures::stream::unfold(Some(rx), move |rx| async move {
        let mut rx = rx?;
        let message = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, rx.recv())
                .await
                .ok()
                .flatten(),
            None => rx.recv().await,
        };
        match message {
            Some(WatchMsg::Line(line)) => Some((Ok(Frame::data(line)), Some(rx))),
            // An error from the body makes hyper close the socket without the final chunk:
            // to the client this is a connection reset mid-stream, as in an apiserver restart.
            Some(WatchMsg::Cut) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "watch cut by the stand-in",
                )),
                None,
            )),
            Some(WatchMsg::End) | None => None,
        }
    });
    StreamBody::new(stream).boxed_unsync()
}
