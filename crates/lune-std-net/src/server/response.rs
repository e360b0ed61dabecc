//! What a handler returns, turned into a response: a string or buffer (200,
//! `text/plain`) or a table `{ status?, headers?, body? }`.

use http::{HeaderValue, Response, StatusCode, header};
use mlua::prelude::*;

use crate::shared::{
    body::{BodySource, OutBody},
    framing, headers,
};

/// A response as the server sends it.
pub(crate) type HttpResponse = Response<OutBody>;

const WHAT: &str = "response body";

/// A handler's return value as a response.
pub(crate) fn from_lua(lua: &Lua, value: LuaValue) -> LuaResult<HttpResponse> {
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
pub(crate) fn plain(status: StatusCode, text: &str) -> HttpResponse {
    let mut response = Response::new(OutBody::from(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// A `plain` response after which the connection closes.
pub(crate) fn closing(status: StatusCode, text: &str) -> HttpResponse {
    let mut response = plain(status, text);
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
