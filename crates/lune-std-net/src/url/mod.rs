//! `net.urlEncode` / `net.urlDecode` and URL parsing for every entry point.

use std::{cell::RefCell, collections::VecDeque};

use url::Url;

/// Percent-encodes everything but unreserved characters (`A-Z a-z 0-9 - . _ ~`).
/// Without `binary`, the input must be valid UTF-8.
pub(crate) fn encode(input: &[u8], binary: bool) -> Result<String, String> {
    if !binary && let Err(e) = std::str::from_utf8(input) {
        return Err(format!(
            "String is not valid UTF-8 ({e}) - pass true as the second argument to encode binary data"
        ));
    }
    Ok(urlencoding::encode_binary(input).into_owned())
}

/// Decodes percent-escapes. Without `binary`, the result must be valid UTF-8.
pub(crate) fn decode(input: &[u8], binary: bool) -> Result<Vec<u8>, String> {
    let bytes = urlencoding::decode_binary(input).into_owned();
    if !binary && let Err(e) = std::str::from_utf8(&bytes) {
        return Err(format!(
            "Decoded string is not valid UTF-8 ({e}) - pass true as the second argument to decode binary data"
        ));
    }
    Ok(bytes)
}

/// How many recently parsed URLs [`parse`] keeps.
const RECENT: usize = 8;

thread_local! {
    /// URLs parsed lately, the latest first: scripts request the same few
    /// URLs again and again, and parsing one (its host through IDNA
    /// included) costs more than the rest of a pooled request's setup.
    static PARSED: RefCell<VecDeque<(Box<str>, Url)>> = const { RefCell::new(VecDeque::new()) };
}

/// Parses `text` as a URL whose scheme is one of `schemes`.
pub(crate) fn parse(text: &str, schemes: &[&str]) -> Result<Url, String> {
    let recent = PARSED.with_borrow_mut(|parsed| {
        let at = parsed.iter().position(|(seen, _)| **seen == *text)?;
        let entry = parsed.remove(at)?;
        let url = entry.1.clone();
        parsed.push_front(entry);
        Some(url)
    });
    let url = if let Some(url) = recent {
        url
    } else {
        let url = Url::parse(text.trim()).map_err(|e| {
            format!(
                "Invalid url '{text}' - {e} (expected a {} url)",
                schemes.join(", ")
            )
        })?;
        PARSED.with_borrow_mut(|parsed| {
            parsed.truncate(RECENT - 1);
            parsed.push_front((text.into(), url.clone()));
        });
        url
    };
    if !schemes.contains(&url.scheme()) {
        return Err(format!(
            "Invalid url '{text}' - unsupported scheme '{}', expected {}",
            url.scheme(),
            schemes.join(", ")
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("Invalid url '{text}' - it has no host"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_all_but_unreserved() {
        assert_eq!(
            encode(b"a b&c=d/e?f", false).unwrap(),
            "a%20b%26c%3Dd%2Fe%3Ff"
        );
        assert_eq!(encode(b"AZaz09-._~", false).unwrap(), "AZaz09-._~");
        assert_eq!(encode("héllo".as_bytes(), false).unwrap(), "h%C3%A9llo");
        assert_eq!(encode(&[0, 255], true).unwrap(), "%00%FF");
        assert!(encode(&[255], false).unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn decodes_utf8_and_rejects_invalid_unless_binary() {
        assert_eq!(decode(b"h%C3%A9llo", false).unwrap(), "héllo".as_bytes());
        assert!(decode(b"%FF", false).unwrap_err().contains("UTF-8"));
        assert_eq!(decode(b"%FF%00", true).unwrap(), vec![255, 0]);
        assert_eq!(decode(b"100%", false).unwrap(), b"100%");
    }

    #[test]
    fn roundtrip_binary() {
        let data: Vec<u8> = (0..=255).collect();
        assert_eq!(
            decode(encode(&data, true).unwrap().as_bytes(), true).unwrap(),
            data
        );
    }

    #[test]
    fn parse_remembers_recent_urls_and_checks_each_call() {
        let first = parse("http://cached.example/a?b", &["http"]).unwrap();
        assert_eq!(
            parse("http://cached.example/a?b", &["http"]).unwrap(),
            first
        );
        // A remembered URL is still checked against the caller's schemes.
        assert!(
            parse("http://cached.example/a?b", &["ws"])
                .unwrap_err()
                .contains("unsupported scheme")
        );
        // Only the latest few are kept, the latest used first.
        for i in 0..RECENT {
            parse(&format!("http://other{i}.example/"), &["http"]).unwrap();
        }
        let kept = PARSED.with_borrow(VecDeque::len);
        assert_eq!(kept, RECENT);
        assert!(PARSED.with_borrow(|parsed| {
            parsed
                .iter()
                .all(|(seen, _)| !seen.starts_with("http://cached"))
        }));
    }

    #[test]
    fn parse_checks_scheme_and_host() {
        assert!(parse("http://x/", &["http", "https"]).is_ok());
        let err = parse("ftp://x/", &["http", "https"]).unwrap_err();
        assert!(err.contains("unsupported scheme 'ftp'"), "{err}");
        let err = parse("not a url", &["http"]).unwrap_err();
        assert!(err.contains("Invalid url"), "{err}");
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    const SCHEMES: &[&str] = &["http", "https", "ws", "wss"];

    fn is_unreserved(b: u8) -> bool {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
    }

    /// Text that looks like a URL often enough to get past the parser.
    fn url_like() -> impl Strategy<Value = String> {
        let scheme = prop_oneof![
            Just(""),
            Just("http:"),
            Just("https:"),
            Just("HTTP:"),
            Just("ws:"),
            Just("wss:"),
            Just("ftp:"),
            Just("file:"),
            Just("data:"),
            Just("mailto:"),
            Just("javascript:"),
        ];
        let slashes = prop_oneof![Just(""), Just("/"), Just("//"), Just("///"), Just("\\\\")];
        let host = "[a-zA-Z0-9.@:\\[\\]%_-]{0,12}";
        let rest = "[ -~]{0,16}";
        (scheme, slashes, host, rest, any::<bool>()).prop_map(|(s, sl, h, r, ws)| {
            let url = format!("{s}{sl}{h}{r}");
            if ws { format!(" \t{url}\n") } else { url }
        })
    }

    proptest! {
        #[test]
        fn binary_roundtrips(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let encoded = encode(&data, true).expect("binary encoding always works");
            prop_assert_eq!(decode(encoded.as_bytes(), true).expect("decodes"), data);
        }

        #[test]
        fn utf8_roundtrips(text in any::<String>()) {
            let encoded = encode(text.as_bytes(), false).expect("UTF-8 text encodes");
            prop_assert_eq!(encode(text.as_bytes(), true).expect("encodes"), encoded.clone(),
                "binary mode changes nothing for valid UTF-8");
            prop_assert_eq!(decode(encoded.as_bytes(), false).expect("decodes"), text.into_bytes());
        }

        #[test]
        fn encoded_form_is_unreserved_or_upper_hex_escapes(
            data in proptest::collection::vec(any::<u8>(), 0..128),
        ) {
            let encoded = encode(&data, true).expect("encodes").into_bytes();
            let mut i = 0;
            while i < encoded.len() {
                if encoded[i] == b'%' {
                    let hex = &encoded[i + 1..i + 3];
                    prop_assert!(
                        hex.iter().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b)),
                        "escape {:?}", hex
                    );
                    i += 3;
                } else {
                    prop_assert!(is_unreserved(encoded[i]), "unescaped byte {}", encoded[i]);
                    i += 1;
                }
            }
        }

        #[test]
        fn non_utf8_needs_binary(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let utf8 = std::str::from_utf8(&data).is_ok();
            match encode(&data, false) {
                Ok(_) => prop_assert!(utf8),
                Err(e) => {
                    prop_assert!(!utf8);
                    prop_assert!(e.contains("not valid UTF-8"), "{}", e);
                }
            }
        }

        #[test]
        fn decode_accepts_any_input_and_checks_utf8_only_without_binary(
            data in proptest::collection::vec(
                prop_oneof![any::<u8>(), Just(b'%'), Just(b'F'), Just(b'0')], 0..64),
        ) {
            let raw = decode(&data, true).expect("binary decoding never fails");
            prop_assert!(raw.len() <= data.len(), "decoding never grows the input");
            match decode(&data, false) {
                Ok(text) => {
                    prop_assert!(std::str::from_utf8(&raw).is_ok());
                    prop_assert_eq!(&text, &raw);
                }
                Err(e) => {
                    prop_assert!(std::str::from_utf8(&raw).is_err());
                    prop_assert!(e.contains("not valid UTF-8"), "{}", e);
                }
            }
            if !data.contains(&b'%') {
                prop_assert_eq!(raw, data, "without escapes decoding is the identity");
            }
        }

        #[test]
        fn parse_only_accepts_listed_schemes_with_a_host(
            text in prop_oneof![url_like(), any::<String>()],
            count in 1..=SCHEMES.len(),
        ) {
            let schemes = &SCHEMES[..count];
            match parse(&text, schemes) {
                Ok(url) => {
                    prop_assert!(schemes.contains(&url.scheme()), "scheme {}", url.scheme());
                    prop_assert!(url.host_str().is_some_and(|h| !h.is_empty()), "no host in {}", url);
                }
                Err(e) => prop_assert!(e.starts_with("Invalid url '"), "{}", e),
            }
        }

        #[test]
        fn parse_accepts_plain_urls(
            scheme in proptest::sample::select(SCHEMES),
            host in "[a-z][a-z0-9-]{0,10}(\\.[a-z]{1,5}){0,2}",
            port in proptest::option::of(1u16..),
            path in "(/[a-zA-Z0-9._~-]{0,8}){0,3}",
        ) {
            // `xn--` starts a punycode label, which must decode: not plain.
            prop_assume!(!host.starts_with("xn--"));
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let text = format!("{scheme}://{host}{port}{path}");
            let url = parse(&text, SCHEMES).map_err(TestCaseError::fail)?;
            prop_assert_eq!(url.scheme(), scheme);
            prop_assert_eq!(url.host_str(), Some(host.as_str()));
        }
    }
}
