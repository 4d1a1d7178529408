//! Access decisions. Each check is a pure function returning `Result<(), Denied>`; the response,
//! the metric label and the log line all come from the one `Denied` value.

pub(crate) mod framing;
pub(crate) mod request;

use http::StatusCode;

use crate::metrics::Reason;

/// Every way hookgate itself refuses a request, in SPEC order of checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// Ambiguous or malformed framing; never forwarded.
    BadRequest(&'static str),
    Method,
    Path,
    /// The required header is missing, duplicated or wrong (the detail says which, never the value).
    Header(&'static str),
    BodyTooLarge,
    /// The body stopped arriving for longer than `header_timeout` (counted as `bad_request`).
    BodyTimeout,
    /// No room to buffer the body within `header_timeout` (`request.max_buffered` is in use
    /// by other requests); counted as `bad_request`.
    NoBufferRoom,
    /// The developerPayload check failed (not JSON, no such pointer, or a wrong value).
    DeveloperPayload(&'static str),
}

impl Denied {
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Denied::BadRequest(_) => StatusCode::BAD_REQUEST,
            Denied::Method => StatusCode::METHOD_NOT_ALLOWED,
            Denied::Path => StatusCode::NOT_FOUND,
            Denied::Header(_) | Denied::DeveloperPayload(_) => StatusCode::FORBIDDEN,
            Denied::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Denied::BodyTimeout | Denied::NoBufferRoom => StatusCode::REQUEST_TIMEOUT,
        }
    }

    pub(crate) fn reason(self) -> Reason {
        match self {
            Denied::BadRequest(_) | Denied::BodyTimeout | Denied::NoBufferRoom => {
                Reason::BadRequest
            }
            Denied::Method => Reason::Method,
            Denied::Path => Reason::Path,
            Denied::Header(_) => Reason::Header,
            Denied::BodyTooLarge => Reason::BodyTooLarge,
            Denied::DeveloperPayload(_) => Reason::DeveloperPayload,
        }
    }

    /// For the log only: what exactly failed, never a secret or a header value.
    pub(crate) fn detail(self) -> &'static str {
        match self {
            Denied::BadRequest(d) | Denied::Header(d) | Denied::DeveloperPayload(d) => d,
            Denied::Method => "method not allowed",
            Denied::Path => "path outside request.path_prefixes",
            Denied::BodyTooLarge => "body larger than request.max_body",
            Denied::BodyTimeout => "request body stalled for longer than listen.header_timeout",
            Denied::NoBufferRoom => {
                "no room to buffer the body within listen.header_timeout (request.max_buffered in use)"
            }
        }
    }
}
