//! Every Prometheus family of SPEC §5, over an owned `Registry`, with typed label vocabularies.
//! All children are created at construction (so every label value is exported as 0 from start-up)
//! and kept in arrays indexed by the label enums, so recording is one atomic add: no hashing,
//! locking or allocation on the hot path. `render()` produces the `/metrics` body.

use std::time::Duration;

use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::allowlist::remote::RefreshResult;
// The decisions own these values; metrics gives them labels. Re-exported for the recorders.
pub(crate) use crate::policy::outcome::{Outcome, Reason};
pub(crate) use crate::tls::HandshakeResult;

/// Declares a fieldless label enum with `ALL` (in discriminant order, so `x as usize` indexes the
/// arrays built from `ALL`) and `label()` (the exact SPEC label value).
macro_rules! label_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $label:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub(crate) enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order; `ALL[v as usize] == v`.
            pub(crate) const ALL: [$name; [$($label),+].len()] = [$($name::$variant),+];

            /// The label value exported to Prometheus and written to logs.
            pub(crate) fn label(&self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
        }
    };
    // The same for an enum a decision module declares: the decision owns the values, metrics
    // only their labels (the `match` fails to compile if a variant is left out).
    ($(#[$doc:meta])* impl $name:ident { $($variant:ident => $label:literal),+ $(,)? }) => {
        $(#[$doc])*
        impl $name {
            /// Every value, in declaration order; `ALL[v as usize] == v`.
            pub(crate) const ALL: [$name; [$($label),+].len()] = [$($name::$variant),+];

            /// The label value exported to Prometheus and written to logs.
            pub(crate) fn label(&self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
        }
    };
}

label_enum! {
    /// `hookgate_connections_total{result}`: what happened to an accepted TCP connection before TLS.
    ConnectionResult {
        Accepted => "accepted",
        IpDenied => "ip_denied",
        ProxyProtocolError => "proxy_protocol_error",
    }
}

label_enum! {
    /// `hookgate_tls_handshakes_total{result}`.
    impl HandshakeResult {
        Ok => "ok",
        NoClientCert => "no_client_cert",
        ThumbprintDenied => "thumbprint_denied",
        ChainInvalid => "chain_invalid",
        CertExpired => "cert_expired",
        Timeout => "timeout",
        Error => "error",
    }
}

label_enum! {
    /// `outcome` label of `hookgate_requests_total` and `hookgate_request_duration_seconds`.
    impl Outcome {
        Forwarded => "forwarded",
        Denied => "denied",
        Error => "error",
        Stored => "stored",
    }
}

label_enum! {
    /// `reason` label of `hookgate_requests_total`.
    impl Reason {
        Ok => "ok",
        Method => "method",
        Path => "path",
        Header => "header",
        BodyTooLarge => "body_too_large",
        DeveloperPayload => "developer_payload",
        BadRequest => "bad_request",
        UriTooLong => "uri_too_long",
        HeaderTooLarge => "header_too_large",
        Timeout => "timeout",
        UpstreamUnavailable => "upstream_unavailable",
        UpstreamTimeout => "upstream_timeout",
        Shutdown => "shutdown",
        Stored => "ok",
        Duplicate => "duplicate",
        StoreUnavailable => "store_unavailable",
    }
}

label_enum! {
    /// `result` of `hookgate_deliveries_total`: how one delivery attempt from the store ended.
    DeliveryResult {
        Delivered => "delivered",
        Retry => "retry",
        Dead => "dead",
    }
}

label_enum! {
    /// `state` of `hookgate_store_requests`.
    StoreState {
        Pending => "pending",
        Dead => "dead",
        Delivered => "delivered",
    }
}

label_enum! {
    /// `list` label of the `hookgate_allowlist_*` families.
    ListKind {
        Thumbprints => "thumbprints",
        SourceIps => "source_ips",
    }
}

label_enum! {
    /// `result` label of `hookgate_allowlist_refresh_total` and `hookgate_config_reloads_total`.
    impl RefreshResult {
        Success => "success",
        Failure => "failure",
    }
}

impl RefreshResult {
    fn from_success(success: bool) -> RefreshResult {
        if success {
            RefreshResult::Success
        } else {
            RefreshResult::Failure
        }
    }
}

/// Latency buckets in seconds: sub-millisecond local forwards up to the 30 s order of timeouts.
const DURATION_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The `route` label of requests refused before a route was known, or matching none.
pub(crate) const UNROUTED: &str = "none";

/// One route's request series: every child made up front, so recording is one atomic add.
pub(crate) struct RouteMetrics {
    name: Box<str>,
    requests: [IntCounter; Reason::ALL.len()],
    duration: [Histogram; Outcome::ALL.len()],
}

impl RouteMetrics {
    fn new(name: &str, requests: &IntCounterVec, duration: &HistogramVec) -> Self {
        RouteMetrics {
            name: name.into(),
            requests: Reason::ALL
                .map(|v| requests.with_label_values(&[name, v.outcome().label(), v.label()])),
            duration: Outcome::ALL.map(|v| duration.with_label_values(&[name, v.label()])),
        }
    }

    /// The `route` label and log field.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Counts one finished request under `(reason.outcome(), reason)` and observes its duration.
    pub(crate) fn request(&self, reason: Reason, duration: Duration) {
        self.requests[reason as usize].inc();
        self.duration[reason.outcome() as usize].observe(duration.as_secs_f64());
    }
}

/// All hookgate metrics. Cheap to share behind an `Arc`; every method takes `&self`.
/// Invariant: every child of every labelled family exists from construction on.
pub(crate) struct Metrics {
    registry: Registry,
    connections: [IntCounter; ConnectionResult::ALL.len()],
    handshakes: [IntCounter; HandshakeResult::ALL.len()],
    requests: IntCounterVec,
    request_duration: HistogramVec,
    /// The children of each route label made so far (they are never removed: a counter that
    /// vanished after a reload would break `rate()`).
    routes: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<RouteMetrics>>>,
    /// `route="none"`: refused before a route was known (400) or matching none (404).
    unrouted: std::sync::Arc<RouteMetrics>,
    upstream_duration: Histogram,
    open_connections: IntGauge,
    allowlist_entries: [IntGauge; ListKind::ALL.len()],
    allowlist_refresh: [[IntCounter; RefreshResult::ALL.len()]; ListKind::ALL.len()],
    allowlist_last_success: [Gauge; ListKind::ALL.len()],
    config_reloads: [IntCounter; RefreshResult::ALL.len()],
    server_cert_not_after: IntGauge,
    store_requests: [IntGauge; StoreState::ALL.len()],
    store_bytes: IntGauge,
    store_oldest_pending_age: Gauge,
    deliveries: IntCounterVec,
    delivery_duration: Histogram,
}

/// Creates and registers families on one registry. Names and options are static strings that
/// the tests render, so failure here is a programming error, not a runtime condition.
struct Families<'a>(&'a Registry);

const STATIC_OPTS: &str = "static metric names, labels and buckets are valid and unique";

impl Families<'_> {
    fn add<C: prometheus::core::Collector + Clone + 'static>(&self, c: C) -> C {
        self.0.register(Box::new(c.clone())).expect(STATIC_OPTS);
        c
    }
    fn counters(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels).expect(STATIC_OPTS))
    }
    fn int_gauges(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.add(IntGaugeVec::new(Opts::new(name, help), labels).expect(STATIC_OPTS))
    }
    fn int_gauge(&self, name: &str, help: &str) -> IntGauge {
        self.add(IntGauge::new(name, help).expect(STATIC_OPTS))
    }
    fn gauges(&self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        self.add(GaugeVec::new(Opts::new(name, help), labels).expect(STATIC_OPTS))
    }
    fn histograms(&self, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(DURATION_BUCKETS.to_vec());
        self.add(HistogramVec::new(opts, labels).expect(STATIC_OPTS))
    }
}

impl Metrics {
    /// Builds the registry with every family and child; `version` goes into `hookgate_build_info`.
    pub(crate) fn new(version: &str) -> Metrics {
        let r = Registry::new();
        let f = Families(&r);
        let connections = f.counters(
            "hookgate_connections_total",
            "TCP connections by what happened before the TLS handshake.",
            &["result"],
        );
        let handshakes = f.counters(
            "hookgate_tls_handshakes_total",
            "TLS handshakes by result; failures name the client certificate check that refused.",
            &["result"],
        );
        let requests = f.counters(
            "hookgate_requests_total",
            "HTTP requests by route, outcome and its reason (the check that denied, or the error).",
            &["route", "outcome", "reason"],
        );
        let request_duration = f.histograms(
            "hookgate_request_duration_seconds",
            "Time from request head received to the response sent whole, by route and outcome.",
            &["route", "outcome"],
        );
        let unrouted =
            std::sync::Arc::new(RouteMetrics::new(UNROUTED, &requests, &request_duration));
        let upstream_duration = f.histograms(
            "hookgate_upstream_duration_seconds",
            "Time the upstream took to return response headers for forwarded requests.",
            &[],
        );
        let open_connections = f.int_gauge(
            "hookgate_open_connections",
            "Client connections currently open on the listener.",
        );
        let allowlist_entries = f.int_gauges(
            "hookgate_allowlist_entries",
            "Entries in the effective allow list (static, files and remote merged).",
            &["list"],
        );
        let allowlist_refresh = f.counters(
            "hookgate_allowlist_refresh_total",
            "Allow list refresh attempts from files or the remote source, by result.",
            &["list", "result"],
        );
        let allowlist_last_success = f.gauges(
            "hookgate_allowlist_last_success_timestamp_seconds",
            "Unix time of the last successful allow list refresh (0 if never).",
            &["list"],
        );
        let config_reloads = f.counters(
            "hookgate_config_reloads_total",
            "Configuration reloads (SIGHUP or watched file change), by result.",
            &["result"],
        );
        let server_cert_not_after = f.int_gauge(
            "hookgate_server_cert_not_after_timestamp_seconds",
            "Unix time at which the serving TLS certificate expires.",
        );
        let store_requests = f.int_gauges(
            "hookgate_store_requests",
            "Requests in the durable store, by state.",
            &["state"],
        );
        let store_bytes = f.int_gauge(
            "hookgate_store_bytes",
            "Bytes the stored requests take of store.max_bytes.",
        );
        let store_oldest_pending_age = f.add(
            Gauge::new(
                "hookgate_store_oldest_pending_age_seconds",
                "Age of the oldest request not yet delivered (0 when none).",
            )
            .expect(STATIC_OPTS),
        );
        let deliveries = f.counters(
            "hookgate_deliveries_total",
            "Delivery attempts from the store, by route and how they ended.",
            &["route", "result"],
        );
        let delivery_duration = f
            .histograms(
                "hookgate_delivery_duration_seconds",
                "Time a delivery attempt took until the upstream's response head.",
                &[],
            )
            .with_label_values::<&str>(&[]);
        f.int_gauges(
            "hookgate_build_info",
            "Always 1; the version label is the running hookgate version.",
            &["version"],
        )
        .with_label_values(&[version])
        .set(1);

        // Process metrics (CPU, memory, file descriptors) only exist on Linux (procfs).
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("process_* names do not clash with hookgate_* names");

        Metrics {
            connections: ConnectionResult::ALL.map(|v| connections.with_label_values(&[v.label()])),
            handshakes: HandshakeResult::ALL.map(|v| handshakes.with_label_values(&[v.label()])),
            requests,
            request_duration,
            routes: Default::default(),
            unrouted,
            upstream_duration: upstream_duration.with_label_values::<&str>(&[]),
            open_connections,
            allowlist_entries: ListKind::ALL
                .map(|l| allowlist_entries.with_label_values(&[l.label()])),
            allowlist_refresh: ListKind::ALL.map(|l| {
                RefreshResult::ALL
                    .map(|res| allowlist_refresh.with_label_values(&[l.label(), res.label()]))
            }),
            allowlist_last_success: ListKind::ALL
                .map(|l| allowlist_last_success.with_label_values(&[l.label()])),
            config_reloads: RefreshResult::ALL
                .map(|v| config_reloads.with_label_values(&[v.label()])),
            server_cert_not_after,
            store_requests: StoreState::ALL.map(|s| store_requests.with_label_values(&[s.label()])),
            store_bytes,
            store_oldest_pending_age,
            deliveries,
            delivery_duration,
            registry: r,
        }
    }

    /// Counts one accepted TCP connection by what happened before TLS.
    pub(crate) fn connection(&self, result: ConnectionResult) {
        self.connections[result as usize].inc();
    }

    /// Counts one finished (or failed / timed-out) TLS handshake.
    pub(crate) fn handshake(&self, result: HandshakeResult) {
        self.handshakes[result as usize].inc();
    }

    /// The series of route `name`, made (every `(outcome, reason)` pair at 0) on first use.
    pub(crate) fn route(&self, name: &str) -> std::sync::Arc<RouteMetrics> {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        routes
            .entry(name.to_owned())
            .or_insert_with(|| {
                std::sync::Arc::new(RouteMetrics::new(
                    name,
                    &self.requests,
                    &self.request_duration,
                ))
            })
            .clone()
    }

    /// Sets the store gauges from one count of the store.
    pub(crate) fn set_store(
        &self,
        pending: u64,
        delivered: u64,
        dead: u64,
        bytes: u64,
        oldest_age: f64,
    ) {
        for (state, n) in [
            (StoreState::Pending, pending),
            (StoreState::Delivered, delivered),
            (StoreState::Dead, dead),
        ] {
            self.store_requests[state as usize].set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.store_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.store_oldest_pending_age.set(oldest_age);
    }

    /// Counts one delivery attempt and observes how long it took.
    pub(crate) fn delivery(&self, route: &str, result: DeliveryResult, took: Duration) {
        self.deliveries
            .with_label_values(&[route, result.label()])
            .inc();
        self.delivery_duration.observe(took.as_secs_f64());
    }

    /// Makes the delivery series of a store route exist at 0.
    pub(crate) fn store_route(&self, route: &str) {
        for result in DeliveryResult::ALL {
            self.deliveries.with_label_values(&[route, result.label()]);
        }
    }

    /// The series of `route="none"`.
    pub(crate) fn unrouted(&self) -> std::sync::Arc<RouteMetrics> {
        self.unrouted.clone()
    }

    /// Observes how long the upstream took for one forwarded request.
    pub(crate) fn upstream_duration(&self, duration: Duration) {
        self.upstream_duration.observe(duration.as_secs_f64());
    }

    /// Counts one open connection until the returned guard is dropped; hold it in the
    /// connection task so every exit path (error, panic unwind, drain) decrements.
    pub(crate) fn open_connection(&self) -> OpenConnectionGuard {
        self.open_connections.inc();
        OpenConnectionGuard(self.open_connections.clone())
    }

    /// Sets the number of entries currently in the effective allow list `list`.
    pub(crate) fn set_allowlist_entries(&self, list: ListKind, entries: usize) {
        self.allowlist_entries[list as usize].set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    /// Counts one refresh attempt of allow list `list`.
    pub(crate) fn allowlist_refresh(&self, list: ListKind, result: RefreshResult) {
        self.allowlist_refresh[list as usize][result as usize].inc();
    }

    /// Records the Unix time (seconds) of the last successful refresh of `list`.
    pub(crate) fn set_allowlist_last_success(&self, list: ListKind, unix_secs: f64) {
        self.allowlist_last_success[list as usize].set(unix_secs);
    }

    /// Counts one configuration reload attempt.
    pub(crate) fn config_reload(&self, success: bool) {
        self.config_reloads[RefreshResult::from_success(success) as usize].inc();
    }

    /// Records the serving certificate's `notAfter` as Unix seconds.
    pub(crate) fn set_server_cert_not_after(&self, unix_secs: i64) {
        self.server_cert_not_after.set(unix_secs);
    }

    /// The `/metrics` body in Prometheus text format 0.0.4 (`TextEncoder::FORMAT_TYPE`).
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode_utf8(&self.registry.gather(), &mut out)
            // The encoder only fails on nameless or empty families; gather() drops empty ones
            // and all names are static, and writing into a String cannot fail.
            .expect("text-encoding gathered families into a String cannot fail");
        out
    }
}

/// Keeps `hookgate_open_connections` incremented while alive; decrements exactly once on drop.
#[must_use = "the connection is only counted while the guard is held"]
pub(crate) struct OpenConnectionGuard(IntGauge);

impl Drop for OpenConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests;
