//! hyper answers a request it cannot parse (a garbage request line: 400, too many or too
//! large headers: 431, an overlong URI: 414) by itself, with an empty body, before any
//! service sees it. This wrapper around the connection rewrites exactly those answers, a
//! 4xx/5xx head with `content-length: 0`, into `{"error": ...}` like every other error: the
//! servers' own error answers always carry a JSON body, so they never match.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection whose bodiless error answers get a JSON body.
#[derive(Debug)]
pub struct JsonErrorIo<S> {
    inner: S,
    /// A rewritten answer still being written; sent before anything else.
    pending: Vec<u8>,
    written: usize,
}

impl<S> JsonErrorIo<S> {
    pub fn new(inner: S) -> Self {
        JsonErrorIo {
            inner,
            pending: Vec::new(),
            written: 0,
        }
    }
}

/// The answer to write instead of `head`, if `head` is one of hyper's own error answers.
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let status_line = text.split("\r\n").next()?;
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next()?, parts.next()?);
    let reason = parts.next().unwrap_or("error");
    let bodiless = text.ends_with("\r\n\r\n")
        && text
            .split("\r\n")
            .any(|line| line.eq_ignore_ascii_case("content-length: 0"));
    if !version.starts_with("HTTP/1.") || !matches!(code.as_bytes().first(), Some(b'4' | b'5')) {
        return None;
    }
    if !bodiless {
        return None;
    }
    let body = serde_json::json!({
        "error": format!("{}: the request could not be read", reason.to_ascii_lowercase())
    })
    .to_string();
    Some(
        format!(
            "{status_line}\r\ncontent-type: application/json\r\n\
             x-content-type-options: nosniff\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<S: AsyncWrite + Unpin> JsonErrorIo<S> {
    /// Writes out a pending rewritten answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonErrorIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonErrorIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        // hyper writes an automatic answer's head in one piece (writes are not vectored).
        if let Some(answer) = rewrite(buf) {
            self.pending = answer;
            // Taken as written: flush and shutdown finish sending the replacement.
            let _ = self.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn only_bodiless_error_heads_are_rewritten() {
        let head =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let answer = String::from_utf8(rewrite(head).unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("x-content-type-options: nosniff"));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(body["error"].as_str().unwrap().contains("too large"));
        assert!(rewrite(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite(b"HTTP/1.1 404 Not Found\r\ncontent-length: 20\r\n\r\n").is_none());
        assert!(rewrite(b"{\"error\": \"HTTP/1.1 400 x\"}").is_none());
    }
}
