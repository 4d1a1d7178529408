//! Remote allow-list sources (`url`, `url_ca`, `refresh`, `cache` of `[thumbprints]` and
//! `[source_ips]`): fetch, parse, cache and the refresh loop. Generic over the entry type; the
//! caller merges entries with the static ones and publishes them. No failure ever shrinks a list.

mod cache;
mod fetch;
mod parse;
mod schedule;

use std::collections::HashSet;
use std::hash::Hash;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub(crate) use cache::{cached_at, load_cache, store_cache};
pub(crate) use fetch::{
    check_url, loggable_url, redacted_url, Fetched, RemoteError, RemoteSource, RemoteSpec,
    UrlProblem, DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT,
};
pub(crate) use parse::{parse_entries, ParsedList};
pub(crate) use schedule::{next_delay, random_jitter};

/// The outcome of one refresh (also of a config reload); `metrics` gives it its `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RefreshResult {
    /// A body with ≥1 entry was applied, or the server confirmed the current one (304).
    Success,
    /// HTTP/TLS/timeout error, or a body with no valid entry: the list in force is unchanged.
    Failure,
}

/// What the refresh loop calls; implemented by the allow-list owner.
pub(crate) trait RefreshHooks<T>: Send {
    /// Replaces this source's contribution with `entries` (never empty). The callee merges it
    /// with the static entries and swaps the published list atomically.
    fn apply(&mut self, entries: Vec<T>);
    /// One refresh finished: count it, and on success set the last-success timestamp.
    fn report(&mut self, result: RefreshResult);
}

/// Keeps one remote source fresh until `shutdown` turns true or its sender is dropped.
///
/// Each round: fetch; a body with ≥1 valid entry is applied, written to `cache` (a write
/// failure is only logged) and reported as success; a 304 is a success without re-applying;
/// anything else is a failure that leaves the list in force alone. Then sleep [`next_delay`].
/// The cache is read only at start, before this task runs (`refresh::sync`): what serves
/// until the first fetch answers.
/// Wrap the future in a span (`.instrument(info_span!("allowlist", list = "source_ips"))`)
/// to name the list in its log lines.
pub(crate) async fn run_refresh<T, P, H>(
    mut source: RemoteSource,
    cache: Option<PathBuf>,
    refresh: Duration,
    parse_one: P,
    mut hooks: H,
    mut shutdown: watch::Receiver<bool>,
    early: std::sync::Arc<tokio::sync::Notify>,
) where
    T: Eq + Hash + Clone + Send,
    P: Fn(&str) -> Option<T> + Send,
    H: RefreshHooks<T>,
{
    let url = source.display_url();
    let mut in_force: Option<HashSet<T>> = None;
    let mut failures: u32 = 0;
    loop {
        let started = Instant::now();
        let fetched = tokio::select! {
            biased;
            () = shutdown_requested(&mut shutdown) => return,
            fetched = source.fetch() => fetched,
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        let result = match fetched {
            Ok(Fetched::NotModified) => {
                tracing::info!(%url, duration_ms, "allow list not modified");
                RefreshResult::Success
            }
            Ok(Fetched::Body(body)) => {
                let parsed = parse_entries(&body, &parse_one);
                log_skipped(&url, &parsed);
                if parsed.entries.is_empty() {
                    tracing::warn!(%url, duration_ms, skipped = parsed.skipped,
                        reason = parsed.rejected.as_deref().unwrap_or("no valid entry"),
                        "allow list refresh failed: response has no valid entry; keeping the current list");
                    RefreshResult::Failure
                } else {
                    source.accept_last_body();
                    log_applied(&url, &mut in_force, &parsed, duration_ms, "fetched");
                    hooks.apply(parsed.entries);
                    if let Some(path) = &cache {
                        write_cache(path.clone(), body, &url).await;
                    }
                    RefreshResult::Success
                }
            }
            Err(error) => {
                tracing::warn!(%url, duration_ms, %error, "allow list refresh failed; keeping the current list");
                RefreshResult::Failure
            }
        };
        hooks.report(result);
        failures = match result {
            RefreshResult::Success => 0,
            RefreshResult::Failure => failures.saturating_add(1),
        };
        let delay = next_delay(refresh, failures, random_jitter());
        tracing::debug!(%url, next_in_ms = delay.as_millis() as u64, "next allow list refresh scheduled");
        tokio::select! {
            biased;
            () = shutdown_requested(&mut shutdown) => return,
            () = tokio::time::sleep(delay) => {}
            // SPEC §10: a refusal as unknown asked for an early refresh (rate-limited there).
            () = early.notified() => {
                tracing::info!(%url, "early allow list refresh: a client was refused as unknown");
            }
        }
    }
}

/// Resolves when the flag is true or the sender is gone (both mean: stop).
async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn write_cache(path: PathBuf, body: bytes::Bytes, url: &str) {
    let shown = path.display().to_string();
    let written = tokio::task::spawn_blocking(move || store_cache(&path, &body)).await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(%url, cache = %shown, %error, "could not write allow list cache")
        }
        Err(error) => {
            tracing::warn!(%url, cache = %shown, %error, "allow list cache writer failed")
        }
    }
}

/// Logs a list about to be applied, with what changed since the last applied one.
fn log_applied<T: Eq + Hash + Clone>(
    url: &str,
    in_force: &mut Option<HashSet<T>>,
    parsed: &ParsedList<T>,
    duration_ms: u64,
    origin: &'static str,
) {
    let next: HashSet<T> = parsed.entries.iter().cloned().collect();
    let (entries, skipped) = (next.len(), parsed.skipped);
    match in_force.as_ref() {
        None => tracing::info!(%url, origin, entries, skipped, duration_ms, "allow list loaded"),
        Some(prev) => {
            let added = next.difference(prev).count();
            let removed = prev.difference(&next).count();
            if added + removed == 0 {
                tracing::info!(%url, origin, entries, skipped, duration_ms, "allow list unchanged");
            } else {
                tracing::info!(%url, origin, entries, skipped, duration_ms, added, removed, "allow list changed");
            }
        }
    }
    *in_force = Some(next);
}

fn log_skipped<T>(url: &str, parsed: &ParsedList<T>) {
    if parsed.skipped > 0 {
        tracing::warn!(%url, skipped = parsed.skipped, samples = ?parsed.skipped_samples,
            "allow list response has entries that do not parse; they are ignored");
    }
}

#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests;
