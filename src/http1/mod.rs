//! HTTP/1.1, hookgate's own: [`framing`] decides where each request begins and ends (the only
//! such decision, pure), [`body`] carries a request body from the connection to the handler,
//! [`respond`] writes the answer; [`client`] sends to the upstream and reads its answer by
//! [`response`]. `connection::http1` runs a client connection on these.

pub(crate) mod body;
pub(crate) mod client;
#[cfg(any(test, feature = "differential"))]
pub mod differential;
pub(crate) mod framing;
pub(crate) mod respond;
pub(crate) mod response;
