//! Attachments that cannot attack the page: a `mime` must be one of a few plain types, and a
//! file is served with the headers that stop a browser from running it.
//!
//! Checked twice: when a message is posted (400), and when a file is served, since a
//! received event may come from a hostile member whose device never ran the first check.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::device::views::AttachmentView;
use crate::http::ApiError;
use crate::store::FileContent;

/// The raster images the page shows inline; everything else downloads.
const MIME_INLINE: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/bmp",
];

/// With [`MIME_INLINE`], the types an attachment may declare. Nothing a browser runs or
/// renders as a document (`text/html`, `image/svg+xml`, `application/xhtml+xml`, ...).
const MIME_DOWNLOAD: &[&str] = &[
    "text/plain",
    "text/csv",
    "text/markdown",
    "application/pdf",
    "application/octet-stream",
    "application/zip",
    "application/json",
    "audio/mpeg",
    "audio/ogg",
    "audio/wav",
    "video/mp4",
    "video/webm",
];

/// `mime` as stored: lowercase, and on the allowlist, or a 400 naming it.
pub fn checked_mime(mime: &str) -> Result<String, ApiError> {
    let lower = mime.to_ascii_lowercase();
    if MIME_INLINE.contains(&lower.as_str()) || MIME_DOWNLOAD.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(ApiError::bad_request(format!(
            "attachment.mime: {mime:?} is not one of {}, {}",
            MIME_INLINE.join(", "),
            MIME_DOWNLOAD.join(", ")
        )))
    }
}

/// The type a file is served as, and whether inline: a type that fails the check (sent by
/// a hostile peer) is served as opaque bytes, and only the raster images inline.
pub(crate) fn served_type(mime: &str) -> (String, &'static str) {
    let mime = checked_mime(mime).unwrap_or_else(|_| "application/octet-stream".to_owned());
    let kind = if MIME_INLINE.contains(&mime.as_str()) {
        "inline"
    } else {
        "attachment"
    };
    (mime, kind)
}

/// `Content-Disposition` for `name`: ASCII letters, digits and `._-` kept, the rest `_` in
/// the plain form, and the exact name percent-encoded in `filename*` (RFC 6266), so no name
/// can break out of the header.
pub(crate) fn disposition(kind: &str, name: &str) -> HeaderValue {
    let plain: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    HeaderValue::try_from(format!(
        "{kind}; filename=\"{plain}\"; filename*=UTF-8''{encoded}"
    ))
    .expect("only visible ASCII is left")
}

/// The answer to `GET /api/messages/:id/attachment`: the bytes under the message's own name
/// and type, or how much of the file is here.
pub fn attachment_response(
    attachment: &AttachmentView,
    content: Option<FileContent>,
) -> Result<Response, ApiError> {
    let id = &attachment.file_id;
    match content {
        None => Err(ApiError::not_found(format!("file {id} not found"))),
        Some(FileContent::Partial {
            chunks_have,
            chunks_total,
        }) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "complete": false, "chunks_have": chunks_have, "chunks_total": chunks_total })),
        )
            .into_response()),
        Some(FileContent::Complete { bytes, .. }) => {
            let (mime, kind) = served_type(&attachment.mime);
            let headers = [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::try_from(mime).expect("allowlisted types are header-safe"),
                ),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
                (
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static("sandbox"),
                ),
                (header::CONTENT_DISPOSITION, disposition(kind, &attachment.name)),
            ];
            Ok((headers, bytes).into_response())
        }
        Some(FileContent::Corrupt) => Err(ApiError {
            status: StatusCode::CONFLICT,
            message: format!("file {id}: its chunks do not hash to the file id"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowlisted_types_pass() {
        assert_eq!(checked_mime("Image/PNG").unwrap(), "image/png");
        for bad in [
            "text/html",
            "image/svg+xml",
            "text/plain\r\nx-evil: 1",
            "text/plain; charset=utf-8",
            "",
            "application/x-test",
        ] {
            assert!(checked_mime(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_hostile_peers_type_is_served_as_a_download() {
        let attachment = AttachmentView {
            file_id: "00".repeat(32),
            name: "x.html".into(),
            mime: "text/html".into(),
            size: 2,
            chunks_total: 1,
            chunks_have: 1,
            complete: true,
            blob: false,
            url: String::new(),
        };
        let content = FileContent::Complete {
            mime: "text/html".into(),
            bytes: b"<script>".to_vec(),
        };
        let response = attachment_response(&attachment, Some(content)).unwrap();
        let header = |name| response.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(header(header::CONTENT_TYPE), "application/octet-stream");
        assert!(header(header::CONTENT_DISPOSITION).starts_with("attachment;"));
        assert_eq!(header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert_eq!(header(header::CONTENT_SECURITY_POLICY), "sandbox");
    }

    #[test]
    fn names_cannot_break_the_header() {
        let value = disposition("attachment", "a\"b\r\nc d\u{e9}.txt");
        let text = value.to_str().unwrap();
        assert_eq!(
            text,
            "attachment; filename=\"a_b__c_d_.txt\"; filename*=UTF-8''a%22b%0D%0Ac%20d%C3%A9.txt"
        );
    }
}
