//! hookgate
#![forbid(unsafe_code)]
