//! The request as it goes on the wire: target form, default headers and the
//! `User-Agent` read from the host runtime.

use std::cell::RefCell;

use http::{HeaderName, HeaderValue, Method, Request, header};
use mlua::{Lua, prelude::LuaValue};
use url::Url;

use super::pool::Origin;
use crate::shared::body::OutBody;

/// The default `User-Agent` of requests made from Luau: `lune/` and the
/// second word of `_VERSION` as it reads when the request is made, whenever
/// the host runtime set it. Read with `get`, not `raw_get`: Lune sandboxes
/// its state, after which the globals table reaches `_VERSION` only through
/// `__index`. Without a usable `_VERSION`, the same as [`default_user_agent`].
pub(super) fn user_agent(lua: &Lua) -> HeaderValue {
    thread_local! {
        /// The last `_VERSION` seen and the header made of it: it is read
        /// per request, but rarely changes.
        static LAST: RefCell<Option<(Vec<u8>, HeaderValue)>> = const { RefCell::new(None) };
    }
    let Ok(LuaValue::String(version)) = lua.globals().get::<LuaValue>("_VERSION") else {
        return default_user_agent();
    };
    let version = version.as_bytes();
    let made = LAST.with_borrow(|last| {
        last.as_ref()
            .filter(|(seen, _)| *seen == *version)
            .map(|(_, header)| header.clone())
    });
    if let Some(header) = made {
        return header;
    }
    let header = std::str::from_utf8(&version)
        .ok()
        .and_then(|v| v.split_whitespace().nth(1))
        .and_then(|word| HeaderValue::from_str(&format!("lune/{word}")).ok())
        .unwrap_or_else(default_user_agent);
    LAST.set(Some((version.to_vec(), header.clone())));
    header
}

/// The default `User-Agent` where there is no Luau state (`fetch`):
/// `lune/<this crate's version>`.
pub(super) fn default_user_agent() -> HeaderValue {
    HeaderValue::from_static(concat!("lune/", env!("CARGO_PKG_VERSION")))
}

/// The request target in origin form: the path and query of `url`.
pub(super) fn origin_form(url: &Url) -> String {
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    path
}

/// The `Host` header for `url`: its host (an IPv6 one in brackets) and its
/// port when the URL names one.
pub(super) fn host_header(url: &Url) -> Result<HeaderValue, String> {
    // As serialized: the host (IPv6 in brackets) and a port that is not the
    // scheme's default.
    let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
    HeaderValue::from_str(host).map_err(|e| format!("Invalid host '{host}': {e}"))
}

/// The request as it goes on the wire: origin-form for HTTP/1.1, absolute
/// form through a plain proxy and for HTTP/2, with default headers added
/// where the script did not set them (`User-Agent` is already in `headers`).
pub(super) fn build_request(
    url: &Url,
    origin: &Origin,
    is_h2: bool,
    method: &Method,
    headers: &[(HeaderName, HeaderValue)],
    body: OutBody,
    decompress: bool,
) -> Result<Request<OutBody>, String> {
    let absolute = is_h2 || (origin.proxy.is_some() && !origin.https);
    let target = if absolute {
        let mut full = url.clone();
        full.set_fragment(None);
        full.to_string()
    } else {
        origin_form(url)
    };
    let mut request = Request::builder()
        .method(method.clone())
        .uri(&target)
        .body(body)
        .map_err(|e| format!("Invalid request to '{url}': {e}"))?;
    let map = request.headers_mut();
    // Framing headers were taken out (`shared::framing`): hyper frames the body.
    for (name, value) in headers {
        map.append(name.clone(), value.clone());
    }
    if !is_h2 && !map.contains_key(header::HOST) {
        map.insert(header::HOST, host_header(url)?);
    }
    if is_h2 {
        map.remove(header::HOST);
    }
    if !map.contains_key(header::ACCEPT) {
        map.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
    }
    if decompress && !map.contains_key(header::ACCEPT_ENCODING) {
        map.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate, br, zstd"),
        );
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use mlua::Lua;

    use super::{default_user_agent, user_agent};

    #[test]
    fn host_header_is_host_and_non_default_port() {
        let host = |url: &str| super::host_header(&url::Url::parse(url).unwrap()).unwrap();
        assert_eq!(host("http://example.com/a"), "example.com");
        assert_eq!(host("http://example.com:80/a"), "example.com");
        assert_eq!(host("https://u:p@example.com:8443/"), "example.com:8443");
        assert_eq!(host("http://[::1]:8080/"), "[::1]:8080");
        assert_eq!(host("http://[::1]/"), "[::1]");
        assert_eq!(host("ws://127.0.0.1:9/"), "127.0.0.1:9");
    }

    #[test]
    fn user_agent_follows_version_when_read() {
        let lua = Lua::new();
        lua.globals()
            .set("_VERSION", "Lune 1.2.3+740")
            .expect("set");
        assert_eq!(user_agent(&lua), "lune/1.2.3+740");
        lua.globals()
            .set("_VERSION", "Lune 4.5.6+740")
            .expect("set");
        assert_eq!(user_agent(&lua), "lune/4.5.6+740", "read per request");
        lua.globals().set("_VERSION", "Luau").expect("set");
        assert_eq!(user_agent(&lua), default_user_agent(), "no second word");
    }

    #[test]
    fn user_agent_reads_version_through_a_sandboxed_globals_table() {
        // Lune sets _VERSION, then sandboxes: the globals table a script and
        // a library see is a proxy that reaches it only through __index.
        let lua = Lua::new();
        lua.globals()
            .set("_VERSION", "Lune 0.11.1+740")
            .expect("set");
        lua.sandbox(true).expect("sandbox");
        assert_eq!(user_agent(&lua), "lune/0.11.1+740");
    }
}
