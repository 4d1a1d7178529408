//! hookgate: a mutual-TLS gate for webhooks.
//!
//! One request's path through the program, in module order:
//! 1. [`server`] accepts TCP under a connection permit and checks the source IP (after a
//!    PROXY header, [`proxy_protocol`], when configured) before any TLS byte, by [`admission`].
//! 2. [`connection`] runs the TLS handshake ([`tls`]: pins by [`admission`], CA chain, validity,
//!    proof of key) under `handshake_timeout`, then serves HTTP/1.1 or HTTP/2 on one
//!    [`snapshot`], closing the connection when [`admission`] no longer admits its client; on
//!    HTTP/1.1 [`http1`] decides where each request begins and ends, on the raw bytes.
//! 3. [`handler`] applies the request checks of [`policy`] in SPEC order, reads the body under
//!    `max_body`, and hands it to [`identity`] (strip, then set and sign via [`signature`]).
//! 4. [`forward`] sends it to the upstream over a pooled connection ([`http1`]'s client, driven
//!    in the request's task, reads the answer as strictly as a request); failures become 502/504.
//! 5. One access-log line ([`logging`]) and the [`metrics`], from one outcome value.
//!
//! On a store route (SPEC §9) step 4 is [`store`] instead (202 once durable), and [`deliver`]
//! forwards from the store with retries.
//!
//! Around it: [`gate`] (the process state and its one owner: a reload installs a whole new
//! immutable [`snapshot`], a list refresh applies remote entries, and both swap the
//! [`admission`] in force), [`config`] (the TOML, validated), [`allowlist`] (static, file and
//! remote lists, [`refresh`] keeps the remote ones fresh), [`reload`] (SIGHUP and file changes), [`admin`] (`/healthz`, `/readyz`, `/metrics`, the
//! store API), [`start`] (start-up shared by `run` and `demo`; the listeners may
//! come from systemd by [`activation`]) and [`commands`] (the CLI).
#![forbid(unsafe_code)]

pub(crate) mod activation;
pub(crate) mod admin;
pub(crate) mod admission;
pub(crate) mod allowlist;
pub(crate) mod answer;
#[doc(hidden)]
pub mod bench_api;
pub(crate) mod body;
pub mod commands;
pub(crate) mod config;
pub(crate) mod conn;
pub(crate) mod connection;
pub(crate) mod deliver;
pub(crate) mod demo;
pub(crate) mod digest;
pub(crate) mod forward;
pub(crate) mod fsio;
#[doc(hidden)]
pub mod fuzz_api;
pub(crate) mod gate;
pub(crate) mod handler;
pub(crate) mod http1;
pub(crate) mod identity;
pub(crate) mod limits;
pub(crate) mod logging;
pub(crate) mod metrics;
pub(crate) mod policy;
pub(crate) mod proxy_protocol;
pub(crate) mod read_ahead;
pub(crate) mod refresh;
pub(crate) mod reload;
pub(crate) mod request_log;
pub(crate) mod routes;
pub(crate) mod secret;
pub(crate) mod server;
pub(crate) mod signature;
pub(crate) mod snapshot;
pub(crate) mod start;
pub(crate) mod store;
pub(crate) mod store_api;
pub(crate) mod store_cli;
pub(crate) mod summary;
pub(crate) mod tls;

pub(crate) use gate::Gate;

/// The crate version, as `hookgate --version` and `hookgate_build_info` report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
