//! Raw HTTP/1.1 client bytes against `net.serve`'s service.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lune_std_net::fuzzing::http1_request(data));
