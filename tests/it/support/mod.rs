//! Shared helpers for the `it` integration test binary. Every test starts its own hookgate
//! process ([`hookgate::GateConfig::start`]) with its own tempdir, ports and upstream, so tests
//! run in parallel; every child process and server is stopped on drop.
//!
//! - [`pki`]: rcgen certificates (CA, server, pinned / unpinned / expired / CA-signed clients).
//! - [`hookgate`]: config builder, process guard, log collection, metric and log assertions.
//! - [`upstream`]: a recording HTTP/1.1 upstream that can respond, delay or close.
//! - [`client`]: the TLS client (any cert, mismatched key), HTTP/1.1, HTTP/2 and raw requests.
//! - [`admin`]: `/readyz`, `/metrics` scrapes and a Prometheus sample lookup.
//! - [`tools`]: `curl`, `python3` and the Python RFC 9421 verifying upstream (fail if missing).
// Not every module of the test binary uses every helper.
#![allow(dead_code)]

pub mod admin;
pub mod client;
pub mod hookgate;
pub mod pki;
pub mod tools;
pub mod upstream;

pub use client::{request, Reply, TlsClient, H1, H2};
pub use hookgate::{Gate, GateConfig, DEVELOPER_PAYLOAD, HEADER_NAME, HEADER_SECRET};
pub use pki::Pki;
pub use upstream::{Behavior, Upstream};
