//! HTTP/1.1 as hookgate reads it: [`framing`] decides where each request begins and ends (the
//! only such decision), [`inspect`] applies it to the bytes of a connection served by hyper.

#[cfg(any(test, feature = "differential"))]
pub mod differential;
pub(crate) mod framing;
pub(crate) mod inspect;
