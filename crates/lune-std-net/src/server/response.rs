//! What a handler returns, turned into a response: a string or buffer (200,
//! `text/plain`) or a table `{ status?, headers?, body? }`.

use http::{HeaderValue, Response, StatusCode, header};
use mlua::prelude::*;

use crate::shared::{
    body::{BodySource, OutBody},
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
        LuaValue::Table(table) => {
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
        other => Err(LuaError::runtime(format!(
            "expected a string, buffer or table {{ status?, headers?, body? }}, got {}",
            lune_utils::type_name(&other)
        ))),
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
