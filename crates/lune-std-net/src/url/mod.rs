//! `net.urlEncode` / `net.urlDecode` and URL parsing for every entry point.

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

/// Parses `text` as a URL whose scheme is one of `schemes`.
pub(crate) fn parse(text: &str, schemes: &[&str]) -> Result<Url, String> {
    let expected = schemes.join(", ");
    let url = Url::parse(text.trim())
        .map_err(|e| format!("Invalid url '{text}' - {e} (expected a {expected} url)"))?;
    if !schemes.contains(&url.scheme()) {
        return Err(format!(
            "Invalid url '{text}' - unsupported scheme '{}', expected {expected}",
            url.scheme()
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
    fn parse_checks_scheme_and_host() {
        assert!(parse("http://x/", &["http", "https"]).is_ok());
        let err = parse("ftp://x/", &["http", "https"]).unwrap_err();
        assert!(err.contains("unsupported scheme 'ftp'"), "{err}");
        let err = parse("not a url", &["http"]).unwrap_err();
        assert!(err.contains("Invalid url"), "{err}");
    }
}
