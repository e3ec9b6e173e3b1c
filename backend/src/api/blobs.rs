//! `POST /api/files`, `GET /api/files/:id` and `GET /api/files/:id/progress`: the blob store
//! (`crate::files`) over HTTP. Uploads stream to disk through a bounded channel (never whole
//! in memory); downloads stream from the data file, only bytes that are verified.

use std::io::{self, Read};
use std::ops::Range;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use super::backend::DeviceBackend;
use super::bodies::BodyDeadline;
use crate::files::{BlobError, BlobId, FileService, UPLOADS_MAX};
use crate::http::ApiError;

/// Body frames (hyper's, at most 64 KiB each) queued between the connection and the thread
/// that writes and hashes them: a few MiB at most in flight per upload.
const UPLOAD_FRAMES_QUEUED: usize = 32;
/// Bytes read from disk per download frame.
const DOWNLOAD_FRAME_BYTES: usize = 256 * 1024;

fn file_api<B: DeviceBackend>(device: &B) -> Result<FileService, ApiError> {
    device
        .files()
        .cloned()
        .ok_or_else(|| ApiError::not_found("this device keeps no file store (a simulated device)"))
}

pub(crate) fn parse_blob_id(text: &str) -> Result<BlobId, ApiError> {
    BlobId::from_hex(text)
        .ok_or_else(|| ApiError::bad_request(format!("id: {text:?} is not 64 hex characters")))
}

/// The store's refusals as HTTP answers (`docs/API.md`).
fn api_error(err: BlobError) -> ApiError {
    let status = match &err {
        BlobError::NotFound(_) => StatusCode::NOT_FOUND,
        BlobError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        BlobError::Truncated { .. }
        | BlobError::TooLong { .. }
        | BlobError::Tree(_)
        | BlobError::ReadTooLong { .. } => StatusCode::BAD_REQUEST,
        BlobError::PastEnd { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
        BlobError::NotVerified { .. } => StatusCode::CONFLICT,
        BlobError::TooManyFiles => StatusCode::INSUFFICIENT_STORAGE,
        BlobError::TooManyPartial => StatusCode::SERVICE_UNAVAILABLE,
        BlobError::Io(_, io) if io.kind() == io::ErrorKind::StorageFull => {
            StatusCode::INSUFFICIENT_STORAGE
        }
        BlobError::Io(..) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError {
        status,
        message: err.to_string(),
    }
}

/// Runs a store call off the executor (it fsyncs and hashes).
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(ApiError::internal)?
        .map_err(api_error)
}

/// The upload's bytes as a `Read` for the store's blocking thread; the end of the channel
/// is the end of the body (short if the client stopped early).
struct ChannelReader {
    frames: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.frames.blocking_recv() {
                Some(frame) => self.current = frame,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// `POST /api/files`: the body is the file. `Content-Length` is required (the tree is laid
/// out by the size) and checked against `--file-size-max` before a byte is read.
pub async fn post_file<B: DeviceBackend>(
    State(device): State<B>,
    deadline: Option<Extension<BodyDeadline>>,
    request: Request,
) -> Result<Response, ApiError> {
    let files = file_api(&device)?;
    let declared = match request.headers().get(header::CONTENT_LENGTH) {
        // hyper has refused a malformed or conflicting Content-Length already.
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| ApiError::bad_request("Content-Length: not a number"))?,
        None => {
            return Err(ApiError {
                status: StatusCode::LENGTH_REQUIRED,
                message: "Content-Length: required (a file's size comes before its bytes)".into(),
            })
        }
    };
    let max_bytes = files.store.file_size_max_bytes();
    if declared > max_bytes {
        let mut response = api_error(BlobError::TooLarge {
            size_bytes: declared,
            max_bytes,
        })
        .into_response();
        // The body is never read, so the connection cannot carry another request.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(response);
    }
    let _slot = files.upload_slot().ok_or_else(|| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: format!("{UPLOADS_MAX} uploads are running; retry when one ends"),
    })?;
    if let Some(Extension(deadline)) = deadline {
        deadline.per_frame();
    }
    let (frames, received) = mpsc::channel(UPLOAD_FRAMES_QUEUED);
    let store = files.store.clone();
    let ingest = tokio::task::spawn_blocking(move || {
        store.ingest(
            declared,
            ChannelReader {
                frames: received,
                current: Bytes::new(),
            },
        )
    });
    let mut body = request.into_body().into_data_stream();
    while let Some(frame) = body.next().await {
        // A body that fails (the client went away, the deadline passed) just ends here: the
        // store sees it short and stores nothing.
        let Ok(frame) = frame else { break };
        if frames.send(frame).await.is_err() {
            break; // the store stopped reading (it failed, or the body ran long)
        }
    }
    drop(frames);
    let ingested = ingest
        .await
        .map_err(ApiError::internal)?
        .map_err(api_error)?;
    let status = if ingested.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let answer = json!({
        "file_id": ingested.id.to_hex(),
        "size": ingested.size_bytes,
        "chunks": ingested.groups,
    });
    Ok((status, Json(answer)).into_response())
}

/// `416` with `Content-Range: bytes */SIZE`, as RFC 9110 asks.
fn unsatisfiable(size: u64, message: String) -> Response {
    let mut response = ApiError {
        status: StatusCode::RANGE_NOT_SATISFIABLE,
        message,
    }
    .into_response();
    if let Ok(value) = HeaderValue::try_from(format!("bytes */{size}")) {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    response
}

/// One `bytes=` range of a `size`-byte file: `a-b`, `a-` or `-n` (the last n bytes).
fn parse_range(value: &str, size: u64) -> Result<Range<u64>, String> {
    let spec = value
        .trim()
        .strip_prefix("bytes=")
        .filter(|spec| !spec.contains(','))
        .ok_or_else(|| format!("Range: {value:?}: one `bytes=a-b` range only"))?;
    let (first, last) = spec
        .split_once('-')
        .ok_or_else(|| format!("Range: {value:?}: expected bytes=a-b"))?;
    let number = |text: &str| {
        text.trim()
            .parse::<u64>()
            .map_err(|_| format!("Range: {value:?}: {text:?} is not a byte offset"))
    };
    let range = match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => return Err(format!("Range: {value:?}: empty")),
        (true, false) => size.saturating_sub(number(last)?)..size,
        (false, true) => number(first)?..size,
        (false, false) => {
            let (start, end) = (number(first)?, number(last)?);
            if end < start {
                return Err(format!("Range: {value:?}: ends before it starts"));
            }
            start..end.saturating_add(1).min(size)
        }
    };
    if range.start >= size || range.is_empty() {
        return Err(format!(
            "Range: {value:?}: past the end of a {size}-byte file"
        ));
    }
    Ok(range)
}

/// `GET /api/files/:id`: the whole file (`200`, complete files only) or one verified range
/// (`206`); a range past the end is `416`, one not verified yet `409`. Always opaque bytes:
/// the store knows no name or type (a message's attachment route gives them, [`Named`]).
pub async fn get_file<B: DeviceBackend>(
    State(device): State<B>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let blob = parse_blob_id(&id)?;
    serve_blob(&device, blob, &headers, None).await
}

/// The name and type a message gives a file it refers to (`GET /api/messages/:id/attachment`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Named<'a> {
    pub name: &'a str,
    pub mime: &'a str,
}

/// `blob` from the store as [`get_file`] answers, under `named`'s name and (allowlisted)
/// type if given, else as a download of opaque bytes.
pub(crate) async fn serve_blob<B: DeviceBackend>(
    device: &B,
    blob: BlobId,
    headers: &HeaderMap,
    named: Option<Named<'_>>,
) -> Result<Response, ApiError> {
    let files = file_api(device)?;
    let store = files.store.clone();
    let size =
        blocking(move || store.size(&blob).ok_or(BlobError::NotFound(blob.to_hex()))).await?;
    let asked = match headers.get(header::RANGE) {
        None => None,
        Some(value) => {
            let text = value.to_str().unwrap_or_default();
            match parse_range(text, size) {
                Ok(range) => Some(range),
                Err(message) => return Ok(unsatisfiable(size, message)),
            }
        }
    };
    let range = asked.clone().unwrap_or(0..size);
    let store = files.store.clone();
    let checked = range.clone();
    let file = blocking(move || store.open_range(&blob, &checked)).await?;
    let mut file = tokio::fs::File::from_std(file);
    file.seek(io::SeekFrom::Start(range.start))
        .await
        .map_err(ApiError::internal)?;
    let len = range.end - range.start;
    let frames = futures_util::stream::unfold((file, len), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0; DOWNLOAD_FRAME_BYTES.min(left as usize)];
        match file.read(&mut buf).await {
            Ok(0) => Some((
                Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                (file, 0),
            )),
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), (file, left - n as u64)))
            }
            Err(err) => Some((Err(err), (file, 0))),
        }
    });
    let mut response = Response::new(Body::from_stream(frames));
    let headers = response.headers_mut();
    let (name, mime, kind) = match named {
        Some(named) => {
            let (mime, kind) = super::files::served_type(named.mime);
            (named.name.to_owned(), mime, kind)
        }
        None => (
            format!("{}.bin", blob.to_hex()),
            "application/octet-stream".to_owned(),
            "attachment",
        ),
    };
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::try_from(mime).map_err(ApiError::internal)?,
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        super::files::disposition(kind, &name),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if asked.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let value = format!("bytes {}-{}/{size}", range.start, range.end - 1);
        if let Ok(value) = HeaderValue::try_from(value) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
    }
    Ok(response)
}

/// `GET /api/files/:id/progress`.
pub async fn get_progress<B: DeviceBackend>(
    State(device): State<B>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let blob = parse_blob_id(&id)?;
    let store = file_api(&device)?.store;
    let status = blocking(move || {
        store
            .status(&blob)
            .ok_or(BlobError::NotFound(blob.to_hex()))
    })
    .await?;
    Ok(Json(status).into_response())
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_parse_and_clip() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(0..10));
        assert_eq!(parse_range("bytes=90-200", 100), Ok(90..100));
        assert_eq!(parse_range("bytes=95-", 100), Ok(95..100));
        assert_eq!(parse_range("bytes=-5", 100), Ok(95..100));
        assert_eq!(parse_range("bytes=-500", 100), Ok(0..100));
        for bad in [
            "bytes=100-",
            "bytes=5-4",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=-0",
            "bytes=x-1",
            "bytes=-",
        ] {
            assert!(parse_range(bad, 100).is_err(), "{bad}");
        }
        assert!(parse_range("bytes=0-0", 0).is_err());
    }
}
