//! Properties of the pure parts: URL coding and parsing, header and query
//! tables, the redirect policy, a handler's status.

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use mlua::prelude::*;

use super::input::{Input, lua_value};
use crate::{
    client::redirect::{self, Policy},
    server::response::{lua_number, status_code},
    shared::{headers, stack},
};

thread_local! {
    /// One Luau state for the targets that need no scheduler: a new one per
    /// input would cost more than the code under test.
    static LUA: Lua = Lua::new();
}

/// `net.urlEncode`/`net.urlDecode` and URL parsing: binary data round-trips,
/// UTF-8 rules hold, `parse` accepts only the listed schemes with a host.
pub fn url(data: &[u8]) {
    const SCHEMES: &[&str] = &["http", "https", "ws", "wss"];
    let mut input = Input(data);
    let flags = input.byte();
    let binary = flags & 1 == 1;
    let schemes = &SCHEMES[..=usize::from(flags >> 1) % SCHEMES.len()];
    let payload = input.rest();
    let utf8 = std::str::from_utf8(payload).is_ok();

    match crate::url::encode(payload, binary) {
        Ok(encoded) => {
            assert!(binary || utf8, "encoded invalid UTF-8 without binary");
            let decoded = crate::url::decode(encoded.as_bytes(), binary).expect("decodes");
            assert_eq!(decoded, payload, "encode then decode round-trips");
        }
        Err(e) => assert!(!binary && !utf8 && e.contains("UTF-8"), "{e}"),
    }

    let raw = crate::url::decode(payload, true).expect("binary decoding never fails");
    assert!(raw.len() <= payload.len(), "decoding never grows the input");
    match crate::url::decode(payload, false) {
        Ok(text) => assert_eq!(text, raw, "UTF-8 decoding is binary decoding"),
        Err(e) => assert!(
            std::str::from_utf8(&raw).is_err() && e.contains("UTF-8"),
            "{e}"
        ),
    }

    let text = String::from_utf8_lossy(payload);
    match crate::url::parse(&text, schemes) {
        Ok(url) => {
            assert!(schemes.contains(&url.scheme()), "accepted {url}");
            assert!(
                url.host_str().is_some_and(|h| !h.is_empty()),
                "no host: {url}"
            );
        }
        Err(e) => assert!(e.starts_with("Invalid url '"), "{e}"),
    }
}

/// A clean refusal: a runtime error that names what was wrong.
fn assert_clean(error: &LuaError, prefix: &str) {
    match error {
        LuaError::RuntimeError(message) => {
            assert!(message.starts_with(prefix), "{message}");
        }
        other => panic!("not a clean error: {other:?}"),
    }
}

/// Header and query tables: any table a script builds is read or refused
/// cleanly; what is read writes back and reads again unchanged.
pub fn headers(data: &[u8]) {
    LUA.with(|lua| headers_with(lua, data));
}

fn headers_with(lua: &Lua, data: &[u8]) {
    let mut input = Input(data);
    let table = lua.create_table().expect("a table");
    while !input.is_empty() {
        let kinds = input.byte();
        // Keys are strings three times in four; NaN is no key at all.
        let key_kind = if kinds & 0xc0 == 0 { kinds } else { 7 };
        let key = match lua_value(lua, &mut input, key_kind, 0) {
            LuaValue::Number(n) if n.is_nan() => continue,
            key => key,
        };
        let value = lua_value(lua, &mut input, kinds >> 3, 0);
        table.raw_set(key, value).expect("set");
    }

    let pairs = match headers::read_multi_map(Some(table.clone()), "query") {
        Ok(pairs) => pairs,
        Err(e) => {
            assert_clean(&e, "Invalid query ");
            return;
        }
    };
    let owned: Vec<(Vec<u8>, Vec<u8>)> = pairs
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.clone()))
        .collect();
    let written =
        stack::multi_map_table(lua, owned.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
            .expect("writes");
    let again = headers::read_multi_map(Some(written), "query").expect("reads what it wrote");
    let group = |pairs: &[(Vec<u8>, Vec<u8>)]| {
        let mut grouped = std::collections::BTreeMap::<Vec<u8>, Vec<Vec<u8>>>::new();
        for (k, v) in pairs {
            grouped.entry(k.clone()).or_default().push(v.clone());
        }
        grouped
    };
    let again: Vec<(Vec<u8>, Vec<u8>)> = again
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.clone()))
        .collect();
    assert_eq!(
        group(&owned),
        group(&again),
        "write then read keeps every value in order"
    );

    match headers::read_headers(Some(table)) {
        Ok(list) => {
            assert_eq!(list.len(), owned.len(), "one header per value");
            let mut map = HeaderMap::new();
            for (name, value) in list {
                map.append(name, value);
            }
            let written = stack::headers_table(lua, &map).expect("writes");
            let read = headers::read_headers(Some(written)).expect("reads what it wrote");
            let mut again = HeaderMap::new();
            for (name, value) in read {
                again.append(name, value);
            }
            for name in map.keys() {
                assert!(
                    map.get_all(name).iter().eq(again.get_all(name).iter()),
                    "values of {name} keep their order"
                );
            }
        }
        Err(e) => assert_clean(&e, "Invalid header "),
    }
}

/// The redirect policy: any Location and status is followed only to an
/// http(s) URL with a host, 301–303 become GET, credentials stay behind
/// across origins, and no more than `max` hops are followed.
pub fn redirect(data: &[u8]) {
    const CURRENT: &[&str] = &[
        "http://a/",
        "https://a/x/y?q=1",
        "http://a:8080/",
        "https://b.example/",
        "http://127.0.0.1/",
        "http://[::1]:1/",
    ];
    let mut input = Input(data);
    let flags = input.byte();
    let policy = Policy {
        follow: flags & 1 == 1,
        max: u32::from(flags >> 1) % 8,
    };
    let followed = u32::from(input.byte() % 10);
    let status = 100 + u16::from_le_bytes([input.byte(), input.byte()]) % 900;
    let status = StatusCode::from_u16(status).expect("a status from 100 to 999");
    let current =
        url::Url::parse(CURRENT[usize::from(input.byte()) % CURRENT.len()]).expect("a url");
    // Bytes that cannot be a header value never reach the policy.
    let location = HeaderValue::from_bytes(input.rest()).ok();
    let usable = location.as_ref().is_some_and(|l| l.to_str().is_ok());
    let wanted = policy.follow && redirect::is_redirect(status) && usable;

    match redirect::next_hop(policy, followed, &current, status, location.as_ref()) {
        Ok(Some(hop)) => {
            assert!(
                wanted && followed < policy.max,
                "followed {followed} of {}",
                policy.max
            );
            assert!(matches!(hop.url.scheme(), "http" | "https"), "{}", hop.url);
            assert!(
                hop.url.host_str().is_some_and(|h| !h.is_empty()),
                "{}",
                hop.url
            );
            assert_eq!(hop.to_get, (301..=303).contains(&status.as_u16()));
            assert_eq!(hop.cross_origin, hop.url.origin() != current.origin());
            let mut method = Method::PUT;
            let mut body = Some(());
            let mut list = vec![
                (header::AUTHORIZATION, HeaderValue::from_static("secret")),
                (header::COOKIE, HeaderValue::from_static("secret")),
                (header::HOST, HeaderValue::from_static("a")),
                (header::CONTENT_TYPE, HeaderValue::from_static("text/plain")),
                (
                    HeaderName::from_static("x-other"),
                    HeaderValue::from_static("kept"),
                ),
            ];
            redirect::apply(&hop, &mut method, &mut body, &mut list);
            let has = |name: &HeaderName| list.iter().any(|(n, _)| n == name);
            assert_eq!(has(&header::AUTHORIZATION), !hop.cross_origin);
            assert_eq!(has(&header::COOKIE), !hop.cross_origin);
            assert_eq!(has(&header::HOST), !hop.cross_origin);
            assert_eq!(has(&header::CONTENT_TYPE), !hop.to_get);
            assert!(has(&HeaderName::from_static("x-other")));
            assert_eq!(method == Method::GET, hop.to_get);
            assert_eq!(body.is_none(), hop.to_get);
        }
        Ok(None) => assert!(!wanted, "a usable redirect was not followed"),
        Err(redirect::RedirectError::TooMany { max, .. }) => {
            assert!(wanted && followed >= max && max == policy.max);
        }
        Err(e) => {
            assert!(wanted && followed < policy.max, "{e}");
            assert!(!e.to_string().is_empty());
        }
    }
}

/// Status parsing: any number or string a handler returns as `status` is
/// accepted only as a whole number from 200 to 999.
pub fn status(data: &[u8]) {
    let acceptable = |n: f64| n.is_finite() && n.fract() == 0.0 && (200.0..=999.0).contains(&n);
    let check = |n: f64| match status_code(n) {
        Ok(status) => {
            assert!(acceptable(n), "accepted {n}");
            assert_eq!(status.as_u16(), n as u16);
        }
        Err(e) => {
            assert!(!acceptable(n), "refused {n}");
            assert_clean(&e, "'status' ");
        }
    };
    let mut input = Input(data);
    check(input.f64());
    let text = LUA.with(|lua| lua.create_string(input.rest()).expect("a string"));
    if let Some(n) = lua_number(&LuaValue::String(text)) {
        check(n);
    }
}
