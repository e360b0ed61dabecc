//! Header and query tables: read, refuse cleanly, write back.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lune_std_net::fuzzing::headers(data));
