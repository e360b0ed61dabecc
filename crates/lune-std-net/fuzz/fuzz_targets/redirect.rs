//! The redirect policy on arbitrary Location bytes and statuses.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lune_std_net::fuzzing::redirect(data));
