//! SPEC §9.2: delivers stored requests to their route's upstream, `store.concurrency` attempts
//! at a time, each leased in the store for `attempt_timeout` + 30 s so that nothing else takes
//! it meanwhile. A 2xx delivers; a connection error, a timeout, 408, 425, 429 (its
//! `Retry-After` honoured up to `retry_max`) or 5xx retries with exponential backoff and ±20 %
//! jitter; any other status, or `give_up_after`, makes the request dead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, StatusCode, Version};
use tokio::sync::{watch, Semaphore};

use crate::config::StoreConfig;
use crate::forward::{BodyChunks, UpstreamError};
use crate::identity::{HOOKGATE_ATTEMPT, HOOKGATE_RECEIVED_AT};
use crate::metrics::DeliveryResult;
use crate::store::{now_ms, Due, Finish, Store};
use crate::Gate;

/// How long a lease outlives an attempt's time limit before another attempt may take it.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// How often the loop looks for due requests when nothing wakes it.
const POLL: Duration = Duration::from_secs(1);
/// How often the store gauges are updated and delivered requests past `keep_delivered` removed.
const HOUSEKEEPING: Duration = Duration::from_secs(5);

/// Runs until shutdown; then waits up to `shutdown_grace` for the attempts in flight (a request
/// whose attempt is cut stays pending and is delivered again after the next start).
pub(crate) async fn run(gate: Arc<Gate>, store: Arc<Store>, mut shutdown: watch::Receiver<bool>) {
    let Some(cfg) = store_config(&gate) else {
        return;
    };
    let mut concurrency = cfg.concurrency;
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
    loop {
        let cfg = store_config(&gate).unwrap_or_else(|| cfg.clone());
        store.set_max_bytes(cfg.max_bytes);
        concurrency = crate::limits::resize(&slots, concurrency, cfg.concurrency);
        let free = slots.available_permits();
        let due = if free == 0 {
            Vec::new()
        } else {
            match store
                .lease(now_ms(), cfg.attempt_timeout + LEASE_MARGIN, free)
                .await
            {
                Ok(due) => due,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read due requests from the store");
                    Vec::new()
                }
            }
        };
        let idle = due.is_empty();
        for d in due {
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                break;
            };
            let (gate, store, cfg) = (gate.clone(), store.clone(), cfg.clone());
            tokio::spawn(async move {
                attempt(&gate, &store, &cfg, d).await;
                drop(slot);
            });
        }
        if !idle {
            continue;
        }
        tokio::select! {
            _ = store.stored.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = housekeeping.tick() => housekeep(&gate, &store, &cfg).await,
            _ = slots.clone().acquire_owned(), if slots.available_permits() == 0 => {}
            _ = shutdown.changed() => break,
        }
    }
    let grace = gate.snapshot().config.listen.shutdown_grace;
    let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace elapsed with deliveries in flight; they stay pending");
    }
}

fn store_config(gate: &Gate) -> Option<StoreConfig> {
    gate.snapshot().config.store.clone()
}

async fn housekeep(gate: &Gate, store: &Store, cfg: &StoreConfig) {
    let now = now_ms();
    store.expire(now - cfg.keep_delivered.as_millis() as i64);
    if let Ok(c) = store.counts().await {
        let age = c
            .oldest_pending
            .map_or(0.0, |at| (now - at).max(0) as f64 / 1e3);
        gate.metrics
            .set_store(c.pending, c.delivered, c.dead, c.bytes, age);
    }
}

/// How one attempt ended, before `give_up_after` is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Delivered,
    /// Try again; `after` is the upstream's `Retry-After`, if it gave one.
    Retry {
        why: String,
        after: Option<Duration>,
    },
    Dead(String),
}

/// SPEC §9.2's rules for an upstream's answer.
pub(crate) fn verdict(status: StatusCode, retry_after: Option<&HeaderValue>) -> Verdict {
    match status.as_u16() {
        200..=299 => Verdict::Delivered,
        408 | 425 | 500..=599 => Verdict::Retry {
            why: format!("upstream answered {status}"),
            after: None,
        },
        429 => Verdict::Retry {
            why: format!("upstream answered {status}"),
            // Seconds only; an HTTP-date falls back to the backoff.
            after: retry_after
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
        },
        _ => Verdict::Dead(format!("upstream answered {status}")),
    }
}

/// The wait before attempt `attempt + 1`: `initial` doubled per attempt made, times `jitter`
/// (0.8..1.2), at most `max`.
pub(crate) fn backoff(initial: Duration, max: Duration, attempt: u32, jitter: f64) -> Duration {
    let doubled = initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    doubled.min(max).mul_f64(jitter).min(max)
}

async fn attempt(gate: &Gate, store: &Store, cfg: &StoreConfig, due: Due) {
    let started = Instant::now();
    let number = due.attempts + 1;
    let s = &due.stored;
    let snap = gate.snapshot_full();
    let route = snap.routes.iter().find(|r| r.name() == s.route);
    let verdict = match route {
        None => Verdict::Retry {
            why: format!("route {:?} is not in the config in force", s.route),
            after: None,
        },
        Some(route) => {
            let sent = match build(&snap, &route.upstream, &due, number) {
                Ok(request) => {
                    route
                        .upstream
                        .send_within(request, cfg.attempt_timeout)
                        .await
                }
                Err(e) => Err(e),
            };
            match sent {
                Ok(resp) => verdict(resp.status(), resp.headers().get(http::header::RETRY_AFTER)),
                Err(
                    e @ (UpstreamError::Unavailable(_)
                    | UpstreamError::Timeout(_)
                    | UpstreamError::Unrelayable(_)),
                ) => Verdict::Retry {
                    why: e.to_string(),
                    after: None,
                },
            }
        }
    };
    let now = now_ms();
    let gave_up = now - s.received_at >= cfg.give_up_after.as_millis() as i64;
    let id = s.request_id.clone();
    let (finish, result, why) = match verdict {
        Verdict::Delivered => (
            Finish::Delivered { id, at: now },
            DeliveryResult::Delivered,
            None,
        ),
        Verdict::Dead(why) => (
            Finish::Dead {
                id,
                at: now,
                error: why.clone(),
            },
            DeliveryResult::Dead,
            Some(why),
        ),
        Verdict::Retry { why, .. } if gave_up => {
            let why = format!("{why}; gave up after store.give_up_after");
            (
                Finish::Dead {
                    id,
                    at: now,
                    error: why.clone(),
                },
                DeliveryResult::Dead,
                Some(why),
            )
        }
        Verdict::Retry { why, after } => {
            let wait = after
                .map(|a| a.min(cfg.retry_max))
                .unwrap_or_else(|| backoff(cfg.retry_initial, cfg.retry_max, number, jitter()));
            let next_at = now + wait.as_millis() as i64;
            (
                Finish::Retry {
                    id,
                    next_at,
                    error: why.clone(),
                },
                DeliveryResult::Retry,
                Some(why),
            )
        }
    };
    let took = started.elapsed();
    gate.metrics.delivery(&s.route, result, took);
    tracing::info!(
        request_id = s.request_id,
        route = s.route,
        attempt = number,
        result = result.label(),
        detail = why.as_deref().unwrap_or(""),
        duration_ms = took.as_secs_f64() * 1e3,
        "delivery"
    );
    if let Err(e) = store.finish(finish).await {
        // The lease expires and the request is tried again: at least once, never lost.
        tracing::error!(request_id = s.request_id, error = %e, "cannot record a delivery attempt");
    }
}

/// The request of attempt `number`: the stored head and body, the two attempt headers, and a
/// signature made now over all of it.
fn build(
    snap: &crate::snapshot::Snapshot,
    upstream: &crate::forward::Upstream,
    due: &Due,
    number: u32,
) -> Result<Request<BodyChunks>, UpstreamError> {
    let s = &due.stored;
    let mut builder = Request::builder()
        .method(s.method.as_str())
        .version(Version::HTTP_11);
    let mut headers = http::HeaderMap::with_capacity(s.headers.len() + 4);
    for (name, value) in &s.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(n, v);
        }
    }
    let attempt = HeaderValue::from(number);
    let received = HeaderValue::try_from(crate::tls::describe::rfc3339_millis(s.received_at))
        .expect("an RFC 3339 time is a valid header value");
    headers.insert(HOOKGATE_ATTEMPT, attempt);
    headers.insert(HOOKGATE_RECEIVED_AT, received);
    if let Some(signer) = &snap.signer {
        let created = (now_ms() / 1000).max(0) as u64;
        crate::identity::sign(signer, &s.method, &s.target, &mut headers, created);
    }
    builder = builder.uri(upstream.uri_for_target(&s.target)?);
    let mut body = BodyChunks::default();
    if !s.body.is_empty() {
        body.push(Bytes::clone(&s.body));
    }
    let mut request = builder
        .body(body)
        .expect("a stored method and URI are valid");
    *request.headers_mut() = headers;
    Ok(request)
}

fn jitter() -> f64 {
    let mut b = [0u8; 2];
    let _ = aws_lc_rs::rand::fill(&mut b);
    0.8 + 0.4 * (u16::from_be_bytes(b) as f64 / u16::MAX as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_rules_decide_deliver_retry_or_dead() {
        let s = |n| StatusCode::from_u16(n).expect("status");
        for ok in [200, 201, 202, 204, 299] {
            assert_eq!(verdict(s(ok), None), Verdict::Delivered, "{ok}");
        }
        for retry in [408, 425, 500, 502, 503, 504, 599] {
            assert!(
                matches!(verdict(s(retry), None), Verdict::Retry { after: None, .. }),
                "{retry}"
            );
        }
        for dead in [300, 301, 400, 401, 403, 404, 409, 410, 413, 422] {
            assert!(matches!(verdict(s(dead), None), Verdict::Dead(_)), "{dead}");
        }
        let after = HeaderValue::from_static("120");
        assert!(matches!(
            verdict(s(429), Some(&after)),
            Verdict::Retry { after: Some(d), .. } if d == Duration::from_secs(120)
        ));
        let date = HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
        assert!(matches!(
            verdict(s(429), Some(&date)),
            Verdict::Retry { after: None, .. }
        ));
    }

    #[test]
    fn backoff_doubles_from_retry_initial_up_to_retry_max() {
        let (one, max) = (Duration::from_secs(1), Duration::from_secs(600));
        let waits: Vec<u64> = (1..=12)
            .map(|a| backoff(one, max, a, 1.0).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
        assert_eq!(backoff(one, max, 3, 0.8), Duration::from_millis(3200));
        assert_eq!(backoff(one, max, 40, 1.2), max);
        assert_eq!(backoff(one, max, 9, 0.8), Duration::from_millis(204_800));
        for _ in 0..100 {
            assert!((0.8..=1.2).contains(&jitter()));
        }
    }
}
