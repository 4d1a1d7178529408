//! Issue 2, the core gate, end to end against the real binary. Every test asserts what the
//! client got (TLS alert, HTTP status, or a closed connection), what the upstream got, and the
//! SPEC §5 metric label.

mod forwarding;
mod limits;
mod requests;
mod tls;
