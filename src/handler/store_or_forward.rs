//! How an admitted request leaves the handler, its headers already stripped and set: stored
//! for later delivery (SPEC §9.1) or forwarded now, signed, to the route's upstream.

use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Request, Version};

use crate::answer::Ended;
use crate::forward::{BodyChunks, Upstream};
use crate::identity;
use crate::request_log::RequestLog;
use crate::routes::Route;
use crate::signature::IdentitySigner;
use crate::store::{self, Put, Store, Stored};

/// SPEC §9.1: stores the request as the upstream will receive it, but the signature, which
/// each delivery attempt makes anew; `Ok` only once it is durable (or a duplicate, §9.4).
pub(super) async fn store_request(
    store: Option<&Store>,
    route: &Route,
    parts: &Parts,
    chunks: BodyChunks,
    request_id: &HeaderValue,
) -> Result<Ended, Ended> {
    let Some(store) = store else {
        return Err(Ended::StoreFailed(
            "no store is open: [store] came with a reload and waits for a restart".into(),
        ));
    };
    let target = route.upstream.target_for(&parts.uri);
    let now = store::now_ms();
    let body = chunks.into_bytes();
    let dedup = route.dedup_key(parts.uri.path(), &body).map(|key| {
        let window = route
            .dedup
            .as_ref()
            .map_or(0, |(_, w)| w.as_millis() as i64);
        (key, now + window)
    });
    let stored = Stored {
        request_id: request_id.to_str().unwrap_or_default().to_owned(),
        route: route.name().to_owned(),
        method: parts.method.as_str().to_owned(),
        target,
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), Bytes::copy_from_slice(v.as_bytes())))
            .collect(),
        body,
        received_at: now,
        dedup,
    };
    match store.put(stored).await {
        Ok(Put::Stored) => Ok(Ended::Stored),
        Ok(Put::Duplicate { of }) => Ok(Ended::Duplicate(of)),
        Err(e) => Err(Ended::StoreFailed(e.to_string())),
    }
}

/// Signs the request over exactly the target sent (when a signer is configured), sends it to
/// `upstream` and times the exchange for the log line; `Ok` carries the response to relay.
pub(super) async fn forward_request(
    signer: Option<&IdentitySigner>,
    upstream: &Upstream,
    mut parts: Parts,
    chunks: BodyChunks,
    log: &mut RequestLog,
) -> Result<Ended, Ended> {
    let target = upstream.target_for(&parts.uri);
    if let Some(signer) = signer {
        let created = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        identity::sign(
            signer,
            parts.method.as_str(),
            &target,
            &mut parts.headers,
            created,
        );
    }
    parts.uri = upstream.uri_for_target(&target).map_err(Ended::Upstream)?;
    parts.version = Version::HTTP_11;

    let sent = Instant::now();
    let result = upstream.send(Request::from_parts(parts, chunks)).await;
    log.upstream_time(sent.elapsed());
    result.map(Ended::Relayed).map_err(Ended::Upstream)
}
