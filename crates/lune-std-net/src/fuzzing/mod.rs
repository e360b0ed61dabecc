//! Entry points for the `cargo fuzz` targets in `fuzz/`, built only with the
//! `fuzzing` feature. Not part of the library's API.
//!
//! Each function takes the fuzzer's raw bytes, reads the inputs it needs from
//! them ([`input`]), runs the crate's own code and asserts the properties
//! that must hold (the same ones the property tests check). A panic here is
//! a finding.

mod http1;
mod input;
mod properties;

pub use http1::http1_request;
pub use properties::{headers, redirect, status, url};
