//! Access decisions. Each check is a pure function returning `Result<(), Denied>`; the response,
//! the metric label and the log line all come from the one `Denied` value.

pub(crate) mod normalize;
pub(crate) mod outcome;
pub(crate) mod percent;
pub(crate) mod pointer;
pub(crate) mod request;
pub(crate) mod target;

use http::StatusCode;

use crate::http1::framing::Refusal;
use outcome::Reason;

/// Every way hookgate itself refuses a request, in SPEC order of checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// The HTTP/1.1 framing decision refused the stream (SPEC §3, §11): 400, 414 or 431, and
    /// the connection closes.
    Framing(Refusal),
    /// Ambiguous or malformed otherwise; never forwarded.
    BadRequest(&'static str),
    Method,
    Path,
    /// The required header is missing, duplicated or wrong (the detail says which, never the value).
    Header(&'static str),
    BodyTooLarge,
    /// The body stopped arriving for longer than `header_timeout`, or was not complete within
    /// `body_timeout` (the detail says which); 408, `reason="timeout"`.
    BodyTimeout(&'static str),
    /// No room to buffer the body within `header_timeout` (`request.max_buffered` is in use
    /// by other requests); 408, `reason="timeout"`.
    NoBufferRoom,
    /// The developerPayload check failed (not JSON, no such pointer, or a wrong value).
    DeveloperPayload(&'static str),
}

impl Denied {
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Denied::Framing(Refusal::Malformed(_)) | Denied::BadRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            Denied::Framing(Refusal::UriTooLong) => StatusCode::URI_TOO_LONG,
            Denied::Framing(Refusal::HeaderTooLarge) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Denied::Method => StatusCode::METHOD_NOT_ALLOWED,
            Denied::Path => StatusCode::NOT_FOUND,
            Denied::Header(_) | Denied::DeveloperPayload(_) => StatusCode::FORBIDDEN,
            Denied::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Denied::BodyTimeout(_) | Denied::NoBufferRoom => StatusCode::REQUEST_TIMEOUT,
        }
    }

    pub(crate) fn reason(self) -> Reason {
        match self {
            Denied::Framing(Refusal::Malformed(_)) | Denied::BadRequest(_) => Reason::BadRequest,
            Denied::Framing(Refusal::UriTooLong) => Reason::UriTooLong,
            Denied::Framing(Refusal::HeaderTooLarge) => Reason::HeaderTooLarge,
            Denied::BodyTimeout(_) | Denied::NoBufferRoom => Reason::Timeout,
            Denied::Method => Reason::Method,
            Denied::Path => Reason::Path,
            Denied::Header(_) => Reason::Header,
            Denied::BodyTooLarge => Reason::BodyTooLarge,
            Denied::DeveloperPayload(_) => Reason::DeveloperPayload,
        }
    }

    /// The `error` word of hookgate's JSON answer: says what kind of refusal, never which secret.
    pub(crate) fn error_word(self) -> &'static str {
        match self {
            Denied::Framing(Refusal::Malformed(_)) | Denied::BadRequest(_) => "bad_request",
            Denied::Framing(Refusal::UriTooLong) => "uri_too_long",
            Denied::Framing(Refusal::HeaderTooLarge) => "header_too_large",
            Denied::Method => "method_not_allowed",
            Denied::Path => "not_found",
            Denied::Header(_) | Denied::DeveloperPayload(_) => "forbidden",
            Denied::BodyTooLarge => "payload_too_large",
            Denied::BodyTimeout(_) | Denied::NoBufferRoom => "request_timeout",
        }
    }

    /// For the log only: what exactly failed, never a secret or a header value.
    pub(crate) fn detail(self) -> &'static str {
        match self {
            Denied::Framing(Refusal::Malformed(d))
            | Denied::BadRequest(d)
            | Denied::Header(d)
            | Denied::DeveloperPayload(d)
            | Denied::BodyTimeout(d) => d,
            Denied::Framing(Refusal::UriTooLong) => "request line over 8 KiB",
            Denied::Framing(Refusal::HeaderTooLarge) => {
                "request head over 64 KiB or with more than 100 fields"
            }
            Denied::Method => "method not allowed",
            Denied::Path => "path under no route (request.path_prefixes, or a [[routes]] path_prefixes)",
            Denied::BodyTooLarge => "body larger than request.max_body",
            Denied::NoBufferRoom => {
                "no room to buffer the body within listen.header_timeout (request.max_buffered in use)"
            }
        }
    }
}
