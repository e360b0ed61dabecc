//! `net.urlEncode`/`net.urlDecode` round-trips and URL parsing.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lune_std_net::fuzzing::url(data));
