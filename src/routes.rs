//! SPEC §8: which policy a request falls under. Each route carries its own checks, upstream,
//! strip list and metric series; the table picks the route of a path once per request.

use std::sync::Arc;

use http::{HeaderValue, Method};

use crate::config::Routing;
use crate::forward::Upstream;
use crate::identity::StripList;
use crate::metrics::RouteMetrics;
use crate::policy::normalize::normalized;
use crate::secret::Secret;

/// A route's required header, resolved.
pub(crate) struct HeaderRule {
    pub name: http::HeaderName,
    pub values: Vec<Secret>,
    pub strip: bool,
}

/// A route's developerPayload, resolved.
pub(crate) struct PayloadRule {
    pub pointer: String,
    pub values: Vec<Secret>,
    /// Where on the route it applies, in the normalized form of SPEC §8 (`None`: everywhere).
    pub under: Option<Vec<String>>,
}

impl PayloadRule {
    /// Whether a request to `path` (as received) must carry the payload.
    pub(crate) fn applies_to(&self, path: &str) -> bool {
        self.under.as_ref().map_or(true, |prefixes| {
            crate::policy::normalize::is_under(prefixes, path)
        })
    }
}

/// One route: its checks in SPEC §8 order, and where it forwards.
pub(crate) struct Route {
    pub methods: Vec<Method>,
    /// The `Allow` header of its 405.
    pub allow: HeaderValue,
    pub max_body: u64,
    pub header: Option<HeaderRule>,
    pub payload: Option<PayloadRule>,
    /// Inbound headers removed before forwarding (SPEC §4, with this route's required header).
    pub strip: StripList,
    pub upstream: Arc<Upstream>,
    /// SPEC §9: accepted requests are stored, answered 202, and delivered with retries.
    pub store: bool,
    /// SPEC §9.4: the dedup key and window of a store route.
    pub dedup: Option<(crate::config::Dedup, std::time::Duration)>,
    /// Its series; the name is the `route` label and log field.
    pub metrics: Arc<RouteMetrics>,
}

impl Route {
    pub(crate) fn name(&self) -> &str {
        self.metrics.name()
    }

    /// The dedup key of a request to `path` with `body` (SPEC §9.4): the route and the
    /// normalized path, the body's SHA-256, or the value at the JSON pointer (`None` when the
    /// body lacks it: the request is stored normally). Hashed, so every key is 64 hex digits.
    pub(crate) fn dedup_key(&self, path: &str, body: &[u8]) -> Option<String> {
        use crate::config::Dedup;
        let (dedup, _) = self.dedup.as_ref()?;
        let (kind, value): (&str, Vec<u8>) = match dedup {
            Dedup::Path => ("path", normalized(path).into_bytes()),
            Dedup::Body => ("body", crate::digest::sha256(body).to_vec()),
            Dedup::Pointer(p) => {
                let v = crate::policy::pointer::lookup(body, p).ok()??;
                let text = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                ("pointer", text.into_bytes())
            }
        };
        let mut material = Vec::with_capacity(self.name().len() + kind.len() + value.len() + 2);
        for part in [self.name().as_bytes(), kind.as_bytes(), &value] {
            material.extend_from_slice(part);
            material.push(0);
        }
        Some(crate::digest::hex(&crate::digest::sha256(&material)))
    }
}

/// Every route of one snapshot.
pub(crate) struct RouteTable {
    routing: Routing,
    routes: Vec<Route>,
    /// `(prefix, route index)`: normalized under [`Routing::Routes`] and longest first; as
    /// written under [`Routing::Default`].
    prefixes: Vec<(String, usize)>,
}

impl RouteTable {
    /// `routes[i]` has `path_prefixes[i]`.
    pub(crate) fn new(routing: Routing, routes: Vec<Route>, path_prefixes: &[Vec<String>]) -> Self {
        let mut prefixes: Vec<(String, usize)> = path_prefixes
            .iter()
            .enumerate()
            .flat_map(|(i, ps)| {
                ps.iter().map(move |p| match routing {
                    Routing::Default => (p.clone(), i),
                    Routing::Routes => (normalized(p), i),
                })
            })
            .collect();
        // Longest first: the first match is the longest (SPEC §8).
        prefixes.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        RouteTable {
            routing,
            routes,
            prefixes,
        }
    }

    /// The route of `path` (as received), or `None` (404).
    pub(crate) fn select(&self, path: &str) -> Option<&Route> {
        let index = match self.routing {
            // SPEC §3: a plain prefix match on the path as received.
            Routing::Default => self
                .prefixes
                .iter()
                .find(|(p, _)| path.starts_with(p.as_str())),
            Routing::Routes => {
                let path = normalized(path);
                self.prefixes
                    .iter()
                    .find(|(p, _)| path.starts_with(p.as_str()))
            }
        }?
        .1;
        self.routes.get(index)
    }

    pub(crate) fn routing(&self) -> Routing {
        self.routing
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }
}
