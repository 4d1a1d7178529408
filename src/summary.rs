//! What `hookgate check` prints: everything a snapshot enforces, in words, and no secret value.

use crate::admission::RemoteEntries;
use crate::allowlist::remote::loggable_url;
use crate::config::{
    Config, Dedup, RemoteConfig, RouteConfig, Routing, StoreBackend, UpstreamTarget,
};
use crate::routes::Route;
use crate::secret::SecretSource;
use crate::snapshot::Snapshot;

/// What `check` prints: everything the snapshot enforces, no secret values.
pub(crate) fn summary(snap: &Snapshot) -> String {
    use std::fmt::Write;
    let c = &snap.config;
    let mut s = String::new();
    let _ = writeln!(s, "config {}: OK", c.path.display());
    let _ = writeln!(
        s,
        "listen: {} (PROXY protocol {}), at most {} connections, handshake {:?}, header {:?}, body {:?}, idle {:?}, shutdown grace {:?}",
        c.listen.address,
        if c.listen.proxy_protocol { "on" } else { "off" },
        c.listen.max_connections,
        c.listen.handshake_timeout,
        c.listen.header_timeout,
        c.listen.body_timeout,
        c.listen.idle_timeout,
        c.listen.shutdown_grace
    );
    let _ = writeln!(
        s,
        "tls: {} (expires {}), TLS {}+, client certificate required",
        c.tls.cert.display(),
        crate::tls::describe::rfc3339(snap.cert_not_after),
        match c.tls.min_version {
            crate::config::TlsVersion::Tls12 => "1.2",
            crate::config::TlsVersion::Tls13 => "1.3",
        }
    );
    // `check` fetches no remote list: what the static entries admit.
    let admission = snap.admission(&RemoteEntries::default());
    match admission.pin_count() {
        Some(pinned) => {
            let remote = c.thumbprints.as_ref().and_then(|l| l.remote.as_ref());
            let _ = writeln!(s, "thumbprints: {} pinned{}", pinned, refreshed(remote));
        }
        None => {
            let _ = writeln!(s, "thumbprints: not configured");
        }
    }
    let _ = writeln!(
        s,
        "client_ca: {}; validity period {}",
        c.tls
            .client_ca
            .as_ref()
            .map_or("none".into(), |p| p.display().to_string()),
        if c.tls.check_validity || c.tls.client_ca.is_some() {
            "checked"
        } else {
            "not checked"
        }
    );
    match admission.network_count() {
        Some(ranges) => {
            let remote = c.source_ips.as_ref().and_then(|l| l.remote.as_ref());
            let _ = writeln!(s, "source_ips: {} ranges{}", ranges, refreshed(remote));
        }
        None => {
            let _ = writeln!(s, "source_ips: not configured (any address)");
        }
    }
    let _ = writeln!(
        s,
        "request: at most {} bytes of bodies buffered at once",
        c.request.max_buffered
    );
    if !c.request.strip_headers.is_empty() {
        let names: Vec<&str> = c.request.strip_headers.iter().map(|n| n.as_str()).collect();
        let _ = writeln!(
            s,
            "request: also stripped before forwarding: {}",
            names.join(", ")
        );
    }
    if let Some(st) = &c.store {
        let at = match &st.path {
            StoreBackend::Path(p) => format!("embedded (SQLite) in {}", p.display()),
            StoreBackend::Url(SecretSource::Env { env }) => {
                format!("PostgreSQL at store.url (from env {env})")
            }
            StoreBackend::Url(SecretSource::File { file }) => {
                format!("PostgreSQL at store.url (from file {})", file.display())
            }
            StoreBackend::Url(SecretSource::Inline(_)) => "PostgreSQL at store.url".to_owned(),
        };
        let _ = writeln!(
            s,
            "store: {at}; at most {} bytes; {} attempts at once, each within {:?}; retries from {:?} to {:?}, dead after {:?}; delivered kept {:?}",
            st.max_bytes,
            st.concurrency,
            st.attempt_timeout,
            st.retry_initial,
            st.retry_max,
            st.give_up_after,
            st.keep_delivered
        );
    }
    for (rc, route) in c.routes.iter().zip(snap.routes.iter()) {
        route_lines(&mut s, c, rc, route);
    }
    match &snap.signer {
        Some(sig) => {
            let _ = writeln!(
                s,
                "identity: requests signed (RFC 9421, hmac-sha256, keyid {:?})",
                sig.key_id()
            );
        }
        None => {
            let _ = writeln!(s, "identity: not configured (no Signature headers)");
        }
    }
    let _ = writeln!(
        s,
        "admin: {}",
        c.admin.map_or("disabled".into(), |a| a.to_string())
    );
    s
}

/// What one route enforces (SPEC §8: `check` prints each route).
fn route_lines(s: &mut String, c: &Config, rc: &RouteConfig, route: &Route) {
    use std::fmt::Write;
    let matching = match c.routing {
        Routing::Default => "a plain prefix match on the path as received",
        Routing::Routes => "the longest prefix of the normalized path",
    };
    let _ = writeln!(
        s,
        "route {}: paths {:?} ({matching}), methods {}, max body {} bytes",
        rc.name,
        rc.path_prefixes,
        route.allow.to_str().unwrap_or_default(),
        route.max_body
    );
    match &route.header {
        Some(h) => {
            let _ = writeln!(
                s,
                "  required_header: {} ({} accepted values), {}",
                h.name,
                h.values.len(),
                if h.strip { "stripped" } else { "forwarded" }
            );
        }
        None => {
            let _ = writeln!(s, "  required_header: not checked");
        }
    }
    match (&route.payload, rc.developer_payload.as_ref()) {
        (Some(p), Some(pc)) => {
            let under = match &pc.path_prefixes {
                Some(prefixes) => format!("under {prefixes:?} (normalized)"),
                None => "on the whole route".into(),
            };
            let _ = writeln!(
                s,
                "  developer_payload: {} ({} accepted values) {under}",
                p.pointer,
                p.values.len()
            );
        }
        _ => {
            let _ = writeln!(s, "  developer_payload: not checked");
        }
    }
    let delivery = match (rc.store, &rc.dedup) {
        (false, _) => "forward (the upstream's answer is relayed)".to_owned(),
        (true, None) => "store (202 once durable, then delivered with retries)".to_owned(),
        (true, Some((key, window))) => {
            let key = match key {
                Dedup::Path => "the normalized path".to_owned(),
                Dedup::Body => "the body's SHA-256".to_owned(),
                Dedup::Pointer(p) => format!("the JSON pointer {p}"),
            };
            format!("store (202 once durable, then delivered with retries), deduplicated by {key} within {window:?}")
        }
    };
    let _ = writeln!(s, "  delivery: {delivery}");
    let upstream = rc.upstream.as_ref().unwrap_or(&c.upstream);
    let target = match &upstream.target {
        UpstreamTarget::Tcp { host, port } => format!("http://{host}:{port}{}", upstream.base),
        UpstreamTarget::Unix(p) => format!("unix:{}", p.display()),
    };
    let _ = writeln!(
        s,
        "  upstream: {target} (connect timeout {:?}, response timeout {:?}, host {:?}){}",
        upstream.connect_timeout,
        upstream.timeout,
        upstream.host,
        if rc.upstream.is_some() {
            ", its own connection pool"
        } else {
            ""
        }
    );
}

/// ` + refreshed from URL every D` for a list with a remote source (the URL's query redacted).
fn refreshed(remote: Option<&RemoteConfig>) -> String {
    remote
        .map(|r| {
            let early = if r.refresh_on_unknown {
                format!(
                    "early on a refusal as unknown, at most every {:?}",
                    r.refresh_on_unknown_interval
                )
            } else {
                "not early on refusals (refresh_on_unknown = false)".into()
            };
            format!(
                " + refreshed from {} every {:?}, {early}",
                loggable_url(&r.url),
                r.refresh
            )
        })
        .unwrap_or_default()
}
