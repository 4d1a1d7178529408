//! How a request ended, as the decisions say it (policy, upstream, store): a leaf of values with
//! no labels; `metrics` maps each to its `outcome`/`reason` label value.

/// Whether the request was forwarded, denied, failed or stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Outcome {
    Forwarded,
    Denied,
    Error,
    Stored,
}

/// Why the request ended as it did. Each reason belongs to exactly one outcome
/// (`Reason::outcome`), so only the SPEC's valid `(outcome, reason)` pairs can be recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Reason {
    Ok,
    Method,
    Path,
    Header,
    BodyTooLarge,
    DeveloperPayload,
    BadRequest,
    UriTooLong,
    HeaderTooLarge,
    Timeout,
    UpstreamUnavailable,
    UpstreamTimeout,
    Shutdown,
    Stored,
    Duplicate,
    StoreUnavailable,
}

impl Reason {
    /// The outcome this reason is reported under: forwarded/ok, denied/<check>, error/<failure>.
    pub(crate) fn outcome(self) -> Outcome {
        match self {
            Reason::Ok => Outcome::Forwarded,
            Reason::Method
            | Reason::Path
            | Reason::Header
            | Reason::BodyTooLarge
            | Reason::DeveloperPayload => Outcome::Denied,
            Reason::BadRequest
            | Reason::UriTooLong
            | Reason::HeaderTooLarge
            | Reason::Timeout
            | Reason::UpstreamUnavailable
            | Reason::UpstreamTimeout
            | Reason::Shutdown
            | Reason::StoreUnavailable => Outcome::Error,
            Reason::Stored | Reason::Duplicate => Outcome::Stored,
        }
    }
}
