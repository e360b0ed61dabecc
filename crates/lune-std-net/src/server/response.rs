//! What a handler returns, turned into a response: a string or buffer (200,
//! `text/plain`) or a table `{ status?, headers?, body? }`.

use std::ptr;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode, header};
use mlua::{ffi, prelude::*};

use crate::shared::{
    body::{BodySource, CHUNK, OutBody},
    framing, headers,
};

/// A response as the server sends it.
pub(super) type HttpResponse = Response<OutBody>;

const WHAT: &str = "response body";

/// A handler's return value as a response.
pub(super) fn from_lua(lua: &Lua, value: LuaValue) -> LuaResult<HttpResponse> {
    match value {
        LuaValue::String(_) | LuaValue::Buffer(_) => {
            let body = BodySource::from_lua(value, WHAT)?.into_body(Some(lua), None, WHAT, true);
            let mut response = Response::new(body);
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Ok(response)
        }
        LuaValue::Table(table) => match simple(lua, &table)? {
            Some(response) => Ok(response),
            None => general(lua, &table),
        },
        other => Err(LuaError::runtime(format!(
            "expected a string, buffer or table {{ status?, headers?, body? }}, got {}",
            lune_utils::type_name(&other)
        ))),
    }
}

/// Any response table `{ status?, headers?, body? }`, or why it is none.
fn general(lua: &Lua, table: &LuaTable) -> LuaResult<HttpResponse> {
    let status = match table.raw_get::<LuaValue>("status")? {
        LuaValue::Nil => StatusCode::OK,
        // Lune coerces numeric strings, so "404" works as well as 404.
        other => match lua_number(&other) {
            Some(n) => status_code(n)?,
            None => {
                return Err(LuaError::runtime(format!(
                    "'status' must be a number, got {}",
                    lune_utils::type_name(&other)
                )));
            }
        },
    };
    let body = BodySource::from_lua(table.raw_get("body")?, WHAT)?;
    let headers = match table.raw_get::<LuaValue>("headers")? {
        LuaValue::Nil => Vec::new(),
        LuaValue::Table(t) => headers::read_headers(Some(t))?,
        other => {
            return Err(LuaError::runtime(format!(
                "'headers' must be a table, got {}",
                lune_utils::type_name(&other)
            )));
        }
    };
    let (headers, declared) = framing::take_declared_length(headers, body.is_stream())?;
    let mut response = Response::new(body.into_body(Some(lua), declared, WHAT, true));
    *response.status_mut() = status;
    let map = response.headers_mut();
    for (name, value) in headers {
        map.append(name, value);
    }
    Ok(response)
}

/// The common response table, read off the Luau stack in one protected call
/// (this runs for every request): `status` nil or a number, `body` nil or a
/// string of at most [`CHUNK`] bytes (a larger one goes out in chunks), `headers` nil or a table of
/// string names to string values, none of them framing headers, all valid.
/// `None` for anything else: the general path reads (and explains) it.
fn simple(lua: &Lua, table: &LuaTable) -> LuaResult<Option<HttpResponse>> {
    let mut read = Simple::default();
    // SAFETY: `Simple::read` only reads the table at stack index 1 with the
    // Luau C API, within a protected call, after reserving the stack slots
    // it uses; it does not panic or touch mlua's state.
    unsafe { lua.exec_raw::<()>(table, |state| read.read(state))? };
    let Some(headers) = read.headers else {
        return Ok(None);
    };
    let status = match read.status {
        Some(n) => status_code(n)?,
        None => StatusCode::OK,
    };
    let mut response = Response::new(match read.body {
        Some(body) => OutBody::from(Bytes::from(body)),
        None => OutBody::empty(),
    });
    *response.status_mut() = status;
    let map = response.headers_mut();
    for (name, value) in headers {
        map.append(name, value);
    }
    Ok(Some(response))
}

/// What [`simple`] read; `headers` is `None` when the table is not simple.
#[derive(Default)]
struct Simple {
    status: Option<f64>,
    body: Option<Vec<u8>>,
    headers: Option<Vec<(HeaderName, HeaderValue)>>,
}

impl Simple {
    /// # Safety
    /// `state` is a Luau state inside a protected call, the table at index 1.
    unsafe fn read(&mut self, state: *mut ffi::lua_State) {
        unsafe {
            // A field, the headers table, a key and a value.
            ffi::luaL_checkstack(state, 4, ptr::null());
            match ffi::lua_rawgetfield(state, 1, c"status".as_ptr()) {
                ffi::LUA_TNIL => {}
                ffi::LUA_TNUMBER => {
                    self.status = Some(ffi::lua_tonumberx(state, -1, ptr::null_mut()));
                }
                _ => return,
            }
            ffi::lua_pop(state, 1);
            match ffi::lua_rawgetfield(state, 1, c"body".as_ptr()) {
                ffi::LUA_TNIL => {}
                ffi::LUA_TSTRING => match string_at(state, -1) {
                    Some(body) if body.len() <= CHUNK => self.body = Some(body.to_vec()),
                    _ => return,
                },
                _ => return,
            }
            ffi::lua_pop(state, 1);
            let mut headers = Vec::new();
            match ffi::lua_rawgetfield(state, 1, c"headers".as_ptr()) {
                ffi::LUA_TNIL => {}
                ffi::LUA_TTABLE => {
                    ffi::lua_pushnil(state);
                    while ffi::lua_next(state, -2) != 0 {
                        let pair = (ffi::lua_type(state, -2) == ffi::LUA_TSTRING
                            && ffi::lua_type(state, -1) == ffi::LUA_TSTRING)
                            .then(|| (string_at(state, -2), string_at(state, -1)));
                        let Some((Some(name), Some(value))) = pair else {
                            return;
                        };
                        let (Ok(name), Ok(value)) =
                            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
                        else {
                            return;
                        };
                        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
                            return;
                        }
                        headers.push((name, value));
                        ffi::lua_pop(state, 1);
                    }
                }
                _ => return,
            }
            self.headers = Some(headers);
        }
    }
}

/// The bytes of the string at `index`.
///
/// # Safety
/// `state` is a Luau state whose value at `index` is a string; the bytes
/// live while it stays on the stack.
unsafe fn string_at<'s>(state: *mut ffi::lua_State, index: i32) -> Option<&'s [u8]> {
    unsafe {
        let mut len = 0;
        let data = ffi::lua_tolstring(state, index, &raw mut len);
        (!data.is_null()).then(|| std::slice::from_raw_parts(data.cast::<u8>(), len))
    }
}

/// A number, or a string that holds one.
pub(crate) fn lua_number(value: &LuaValue) -> Option<f64> {
    match value {
        LuaValue::Integer(n) => Some(*n as f64),
        LuaValue::Number(n) => Some(*n),
        LuaValue::String(s) => s.to_str().ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// A final status: a whole number from 200 to 999.
pub(crate) fn status_code(n: f64) -> LuaResult<StatusCode> {
    if n.fract() != 0.0 || !(200.0..=999.0).contains(&n) {
        return Err(LuaError::runtime(format!(
            "'status' must be a whole number from 200 to 999 (1xx statuses are not final responses), got {n}"
        )));
    }
    StatusCode::from_u16(n as u16)
        .map_err(|e| LuaError::runtime(format!("'status' {n} is not a valid status code: {e}")))
}

/// A short `text/plain` response.
pub(super) fn plain(status: StatusCode, text: &str) -> HttpResponse {
    let mut response = Response::new(OutBody::from(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// A `plain` response after which the connection closes.
pub(super) fn closing(status: StatusCode, text: &str) -> HttpResponse {
    let mut response = plain(status, text);
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
// Statuses are whole numbers: exact float comparison is the property.
#[allow(clippy::float_cmp)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn acceptable(n: f64) -> bool {
        n.is_finite() && n.trunc() == n && (200.0..=999.0).contains(&n)
    }

    /// Text a script might pass as a status: numbers in many spellings, or anything.
    fn status_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<f64>().prop_map(|n| n.to_string()),
            (any::<i32>(), "[ \t\n]{0,2}", "[ \t\n]{0,2}")
                .prop_map(|(n, a, b)| format!("{a}{n}{b}")),
            proptest::sample::select(vec![
                "nan",
                "NaN",
                "inf",
                "-inf",
                "infinity",
                "1e3",
                "2e2",
                "404.0",
                "404.5",
                "0x194",
                "+404",
                "-0",
                "",
                " ",
                "४०४",
            ])
            .prop_map(str::to_string),
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn status_code_takes_only_whole_numbers_from_200_to_999(n in any::<f64>()) {
            match status_code(n) {
                Ok(status) => {
                    prop_assert!(acceptable(n), "accepted {}", n);
                    prop_assert_eq!(f64::from(status.as_u16()), n);
                }
                Err(LuaError::RuntimeError(message)) => {
                    prop_assert!(!acceptable(n), "refused {}: {}", n, message);
                    prop_assert!(message.starts_with("'status' "), "{}", message);
                }
                Err(other) => prop_assert!(false, "not a clean error: {:?}", other),
            }
        }

        #[test]
        fn every_status_in_range_is_accepted(n in 200u16..=999) {
            prop_assert_eq!(status_code(f64::from(n)).expect("accepted").as_u16(), n);
        }

        #[test]
        fn lua_number_reads_numeric_strings_and_nothing_else(text in status_text()) {
            let lua = Lua::new();
            let value = LuaValue::String(lua.create_string(&text).expect("a string"));
            let read = lua_number(&value);
            if let Ok(n) = text.trim().parse::<f64>() {
                prop_assert!(read.is_some_and(|r| r == n || (r.is_nan() && n.is_nan())));
            } else {
                prop_assert_eq!(read, None);
            }
            if let Some(n) = read
                && let Ok(status) = status_code(n)
            {
                prop_assert!(acceptable(n));
                prop_assert_eq!(f64::from(status.as_u16()), n);
            }
        }

        #[test]
        fn lua_number_reads_numbers_as_they_are(n in any::<f64>(), i in any::<i32>()) {
            let read = lua_number(&LuaValue::Number(n));
            prop_assert!(read.is_some_and(|r| r == n || (r.is_nan() && n.is_nan())));
            prop_assert_eq!(lua_number(&LuaValue::Integer(i.into())), Some(f64::from(i)));
            prop_assert_eq!(lua_number(&LuaValue::Boolean(true)), None);
        }

        #[test]
        fn from_lua_never_panics_on_a_status(
            status in prop_oneof![
                any::<f64>().prop_map(Some),
                Just(None),
            ],
            text in proptest::option::of(status_text()),
        ) {
            let lua = Lua::new();
            let table = lua.create_table().expect("a table");
            if let Some(text) = &text {
                table.raw_set("status", text.as_str()).expect("set");
            } else if let Some(n) = status {
                table.raw_set("status", n).expect("set");
            }
            let wanted = match (&text, status) {
                (Some(text), _) => text.trim().parse::<f64>().ok().filter(|n| acceptable(*n)),
                (None, Some(n)) => Some(n).filter(|n| acceptable(*n)),
                (None, None) => Some(200.0),
            };
            match from_lua(&lua, LuaValue::Table(table)) {
                Ok(response) => {
                    prop_assert_eq!(Some(f64::from(response.status().as_u16())), wanted);
                }
                Err(LuaError::RuntimeError(message)) => {
                    prop_assert_eq!(wanted, None, "{}", message);
                    prop_assert!(message.starts_with("'status' "), "{}", message);
                }
                Err(other) => prop_assert!(false, "not a clean error: {:?}", other),
            }
        }
    }
}

#[cfg(test)]
mod fast_path {
    use http_body_util::BodyExt;

    use super::*;

    /// Header names and values, in order.
    type Pairs = Vec<(String, Vec<u8>)>;

    /// Status, headers and body of `response`.
    fn parts(response: HttpResponse) -> (StatusCode, Pairs, Vec<u8>) {
        let status = response.status();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect();
        let body = futures_lite::future::block_on(response.into_body().collect())
            .map(|b| b.to_bytes().to_vec())
            .unwrap_or_default();
        (status, headers, body)
    }

    /// Every shape the fast path takes gives what the general path gives;
    /// every other one it leaves to the general path (errors included).
    #[test]
    fn the_fast_path_answers_as_the_general_one() {
        let lua = Lua::new();
        let simple_shapes = [
            "{}",
            "{ status = 201 }",
            "{ body = 'hi' }",
            "{ status = 404, body = '', headers = {} }",
            "{ headers = { ['content-type'] = 'text/html', ['x-a'] = 'b' }, body = 'x' }",
        ];
        let other_shapes = [
            "{ status = '404' }",
            "{ status = 1.5 }",
            "{ headers = { ['x-a'] = { 'one', 'two' } } }",
            "{ headers = { ['content-length'] = '3' }, body = 'abc' }",
            "{ headers = { ['x-n'] = 5 } }",
            "{ headers = { ['bad name'] = 'v' } }",
            "{ headers = 'nope' }",
            "{ body = buffer.fromstring('b') }",
            "{ body = true }",
        ];
        // Bodies sent in chunks (which the general path starts on the scheduler).
        for source in [
            "{ body = function() return nil end }",
            "{ body = string.rep('x', 70000) }",
        ] {
            let streamed: LuaTable = lua.load(format!("return {source}")).eval().unwrap();
            assert!(simple(&lua, &streamed).unwrap().is_none(), "{source}");
        }
        for source in simple_shapes.iter().chain(&other_shapes) {
            let table: LuaTable = lua.load(format!("return {source}")).eval().unwrap();
            let fast = simple(&lua, &table);
            let general = general(&lua, &table);
            let is_simple = simple_shapes.contains(source);
            match fast {
                Ok(Some(fast)) => {
                    assert!(is_simple, "{source} is left to the general path");
                    assert_eq!(parts(fast), parts(general.unwrap()), "{source}");
                }
                Ok(None) => assert!(!is_simple, "{source} takes the fast path"),
                Err(e) => {
                    // Only a status the general path refuses too.
                    assert!(general.is_err(), "{source}: {e}");
                }
            }
        }
    }
}
