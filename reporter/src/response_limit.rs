//! A bound on what one API response may make the reporter hold: no single line of a response
//! body — one JSON object, or one watch event, since the API server writes each on a line of
//! its own — may exceed [`MAX_LINE`]. kube reads watch streams with an unbounded line codec and
//! whole responses into memory, so without this a broken or hostile server (an endless watch
//! line, a huge object) could take the reporter far past its container's memory limit. Lists
//! are paged (`crate::pods`), so a legitimate page stays far below the bound; long watches are
//! not cut, because the count starts again at every newline.
//!
//! No crate bounds the length of a line in an `http_body::Body` (`http_body_util::Limited`
//! bounds the whole body, which would end healthy long-lived watches), hence this wrapper.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// The longest line (object or watch event) read from the API server: 4 MiB, above anything
/// the API server stores (etcd refuses objects over 1.5 MiB) and within the reporter's memory.
pub const MAX_LINE: usize = 4 * 1024 * 1024;

/// A response line longer than the bound.
#[derive(Debug, thiserror::Error)]
#[error(
    "the API server sent a response line (one object or watch event) of more than {limit} bytes; \
     objects the API server stores are at most 1.5 MiB, so the response was refused as broken or hostile"
)]
pub struct TooLarge {
    /// The bound that was passed.
    pub limit: usize,
}

/// A body that fails once a line exceeds `limit` bytes.
#[derive(Debug)]
pub struct LineLimited<B> {
    inner: B,
    limit: usize,
    /// Bytes since the last newline.
    run: usize,
}

impl<B> LineLimited<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, limit: usize) -> Self {
        LineLimited {
            inner,
            limit,
            run: 0,
        }
    }

    /// Accounts for `data`; `false` once a line is too long.
    fn admit(&mut self, data: &[u8]) -> bool {
        let mut parts = data.split(|&b| b == b'\n');
        // The first part continues the current line; every part but the last ends one.
        let mut run = self.run + parts.next().map_or(0, <[u8]>::len);
        for part in parts {
            if run > self.limit {
                return false;
            }
            run = part.len();
        }
        self.run = run;
        run <= self.limit
    }
}

impl<B> Body for LineLimited<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        Poll::Ready(match frame {
            Some(Ok(frame)) => match frame.data_ref() {
                Some(data) if !this.admit(data) => {
                    Some(Err(Box::new(TooLarge { limit: this.limit })))
                }
                _ => Some(Ok(frame)),
            },
            Some(Err(e)) => Some(Err(e.into())),
            None => None,
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn limited(
        chunks: &[&'static [u8]],
        limit: usize,
    ) -> LineLimited<impl Body<Data = Bytes, Error = std::convert::Infallible> + Unpin> {
        let frames = chunks
            .iter()
            .map(|c| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(c))))
            .collect::<Vec<_>>();
        LineLimited::new(StreamBody::new(futures::stream::iter(frames)), limit)
    }

    async fn read(
        body: LineLimited<impl Body<Data = Bytes, Error = std::convert::Infallible> + Unpin>,
    ) -> Result<usize, String> {
        body.collect()
            .await
            .map(|b| b.to_bytes().len())
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn lines_within_the_bound_pass_whatever_the_total() {
        let one: [&'static [u8]; 4] = [b"12345\n", b"1234", b"5\n123", b"45\n"];
        let chunks: Vec<&'static [u8]> = one.iter().copied().cycle().take(4 * 50).collect();
        assert_eq!(read(limited(&chunks, 5)).await, Ok(18 * 50));
    }

    #[tokio::test]
    async fn a_line_over_the_bound_fails_even_across_chunks() {
        let err = read(limited(&[b"123", b"456", b"\n"], 5))
            .await
            .unwrap_err();
        assert!(err.contains("more than 5 bytes"), "{err}");
        let err = read(limited(&[b"1\n123456\n1"], 5)).await.unwrap_err();
        assert!(err.contains("more than 5 bytes"), "{err}");
        // An endless line fails as soon as it passes the bound, before its end arrives.
        let err = read(limited(&[b"12", b"3456"], 5)).await.unwrap_err();
        assert!(err.contains("more than 5 bytes"), "{err}");
    }

    #[tokio::test]
    async fn exactly_the_bound_passes() {
        assert_eq!(read(limited(&[b"12", b"345", b"\n12345"], 5)).await, Ok(11));
    }
}
