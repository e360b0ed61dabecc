//! A handler's `status` from arbitrary numbers and strings.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lune_std_net::fuzzing::status(data));
