//! Access decisions. Each check is a pure function returning `Result<(), Denied>`; the response,
//! the metric label and the log line all come from the one `Denied` value.

pub(crate) mod framing;
pub(crate) mod normalize;
pub(crate) mod outcome;
pub(crate) mod percent;
pub(crate) mod request;

use http::StatusCode;

use outcome::Reason;

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
            Denied::BadRequest(_) => StatusCode::BAD_REQUEST,
            Denied::Method => StatusCode::METHOD_NOT_ALLOWED,
            Denied::Path => StatusCode::NOT_FOUND,
            Denied::Header(_) | Denied::DeveloperPayload(_) => StatusCode::FORBIDDEN,
            Denied::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Denied::BodyTimeout(_) | Denied::NoBufferRoom => StatusCode::REQUEST_TIMEOUT,
        }
    }

    pub(crate) fn reason(self) -> Reason {
        match self {
            Denied::BadRequest(_) => Reason::BadRequest,
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
            Denied::BadRequest(_) => "bad_request",
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
            Denied::BadRequest(d)
            | Denied::Header(d)
            | Denied::DeveloperPayload(d)
            | Denied::BodyTimeout(d) => d,
            Denied::Method => "method not allowed",
            Denied::Path => "path under no route (request.path_prefixes, or a [[routes]] path_prefixes)",
            Denied::BodyTooLarge => "body larger than request.max_body",
            Denied::NoBufferRoom => {
                "no room to buffer the body within listen.header_timeout (request.max_buffered in use)"
            }
        }
    }
}
