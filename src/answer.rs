//! How a request ended, and everything that follows from it in one place: the status and body
//! hookgate answers with (SPEC §3's error format, §9.1's store answers), the extra headers, the
//! metric's reason and the log line's detail.

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};

use crate::forward::UpstreamError;
use crate::http1::client::UpstreamBody;
use crate::identity;
use crate::policy::outcome::Reason;
use crate::policy::Denied;

/// What hookgate sends: the upstream's streamed response or a small body of its own.
pub(crate) type Answer = Response<Either<UpstreamBody, Full<Bytes>>>;

/// How a request ended.
pub(crate) enum Ended {
    /// The upstream's response, relayed.
    Relayed(Response<UpstreamBody>),
    /// Stored durably (SPEC §9.1): 202, delivered later.
    Stored,
    /// A duplicate of the request with this id, stored within the route's dedup window (§9.4).
    Duplicate(String),
    /// A check of SPEC §3 refused it.
    Denied(Denied),
    /// The upstream did not answer in a way that can be relayed.
    Upstream(UpstreamError),
    /// It could not be stored (full, I/O error, no store open): never a 2xx (§9.1).
    StoreFailed(String),
}

impl Ended {
    /// The metric's and the log line's reason.
    pub(crate) fn reason(&self) -> Reason {
        match self {
            Ended::Relayed(_) => Reason::Ok,
            Ended::Stored => Reason::Stored,
            Ended::Duplicate(_) => Reason::Duplicate,
            Ended::Denied(d) => d.reason(),
            Ended::Upstream(UpstreamError::Timeout(_)) => Reason::UpstreamTimeout,
            Ended::Upstream(_) => Reason::UpstreamUnavailable,
            Ended::StoreFailed(_) => Reason::StoreUnavailable,
        }
    }

    /// The log line's `detail`: what exactly went wrong (never a secret).
    pub(crate) fn detail(&self) -> Option<String> {
        match self {
            Ended::Relayed(_) | Ended::Stored => None,
            Ended::Duplicate(of) => Some(format!("duplicate of {of}")),
            Ended::Denied(d) => Some(d.detail().to_owned()),
            Ended::Upstream(e) => Some(e.to_string()),
            Ended::StoreFailed(detail) => Some(detail.clone()),
        }
    }

    /// The response; `allow` is the route's `Allow` value for a 405.
    pub(crate) fn into_response(
        self,
        request_id: &HeaderValue,
        allow: Option<&HeaderValue>,
    ) -> Answer {
        let id = request_id.to_str().unwrap_or_default();
        match self {
            Ended::Relayed(mut resp) => {
                identity::remove_hop_by_hop(resp.headers_mut());
                resp.map(Either::Left)
            }
            Ended::Stored => json(
                StatusCode::ACCEPTED,
                format!("{{\"stored\":true,\"request_id\":\"{id}\"}}"),
            ),
            Ended::Duplicate(of) => json(
                StatusCode::ACCEPTED,
                format!("{{\"stored\":true,\"request_id\":\"{id}\",\"duplicate_of\":\"{of}\"}}"),
            ),
            Ended::Denied(d) => {
                let mut resp = error(d.status(), d.error_word(), id);
                match d {
                    Denied::Method => {
                        if let Some(allow) = allow {
                            resp.headers_mut()
                                .insert(http::header::ALLOW, allow.clone());
                        }
                    }
                    // The rest of the body is not read, or nothing after this request can be
                    // read as one (SPEC §11): the connection cannot be reused.
                    Denied::Framing(_)
                    | Denied::BodyTooLarge
                    | Denied::BodyTimeout(_)
                    | Denied::NoBufferRoom => {
                        resp.headers_mut()
                            .insert(CONNECTION, HeaderValue::from_static("close"));
                    }
                    _ => {}
                }
                resp
            }
            Ended::Upstream(UpstreamError::Timeout(_)) => {
                error(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", id)
            }
            Ended::Upstream(_) => error(StatusCode::BAD_GATEWAY, "upstream_unavailable", id),
            Ended::StoreFailed(_) => {
                let mut resp = error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", id);
                resp.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("30"));
                resp
            }
        }
    }
}

/// hookgate's own answer: `{"error":"<word>","request_id":"<id>"}` (SPEC §3).
fn error(status: StatusCode, word: &str, request_id: &str) -> Answer {
    json(
        status,
        format!("{{\"error\":\"{word}\",\"request_id\":\"{request_id}\"}}"),
    )
}

fn json(status: StatusCode, body: String) -> Answer {
    let mut resp = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
