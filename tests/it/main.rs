//! hookgate's integration tests: one binary (`cargo test --test it`) that runs the real
//! `hookgate` executable against real sockets. Shared helpers live in `support`; each other
//! module covers one issue's contract.

mod support;

mod demo;
mod gate;
mod hardening;
mod identity;
mod operability;
mod proxy_protocol;
mod remote;
mod rotation;
mod routes;
mod soak;
mod store;
mod store_pg;
