//! HTTP/1.1, hookgate's own: [`framing`] decides where each request begins and ends (the only
//! such decision, pure), [`serve`] runs a connection on it, [`body`] carries a request body from
//! the connection to the handler, [`respond`] writes the answer.

pub(crate) mod body;
pub(crate) mod client;
#[cfg(any(test, feature = "differential"))]
pub mod differential;
pub(crate) mod framing;
pub(crate) mod respond;
pub(crate) mod response;
pub(crate) mod serve;
