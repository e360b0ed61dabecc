//! `net.request` arguments: a URL string or a params table.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use mlua::prelude::*;

use crate::shared::{body::body_from_lua, fields::optional, headers};

/// Everything `net.request` was asked to do.
pub(crate) struct RequestConfig {
    pub(crate) url: String,
    pub(crate) method: Method,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Option<Bytes>,
    pub(crate) options: RequestOptions,
}

/// `params.options`.
pub(crate) struct RequestOptions {
    pub(crate) decompress: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) follow_redirects: bool,
    pub(crate) max_redirects: u32,
}

impl Default for RequestOptions {
    fn default() -> Self {
        Self {
            decompress: true,
            timeout: None,
            follow_redirects: true,
            max_redirects: 10,
        }
    }
}

impl FromLua for RequestConfig {
    fn from_lua(value: LuaValue, lua: &Lua) -> LuaResult<Self> {
        let table = match value {
            LuaValue::String(url) => {
                return Ok(Self {
                    url: url.to_str()?.to_string(),
                    method: Method::GET,
                    query: Vec::new(),
                    headers: Vec::new(),
                    body: None,
                    options: RequestOptions::default(),
                });
            }
            LuaValue::Table(table) => table,
            other => {
                return Err(LuaError::runtime(format!(
                    "net.request expects a url string or a params table, got {}",
                    lune_utils::type_name(&other)
                )));
            }
        };
        let url = match table.get::<LuaValue>("url")? {
            LuaValue::String(s) => s.to_str()?.to_string(),
            LuaValue::Nil => return Err(LuaError::runtime("net.request params are missing 'url'")),
            other => {
                return Err(LuaError::runtime(format!(
                    "Invalid 'url' - expected a string, got {}",
                    lune_utils::type_name(&other)
                )));
            }
        };
        let method = match table.get::<LuaValue>("method")? {
            LuaValue::Nil => Method::GET,
            LuaValue::String(s) => parse_method(&s.to_string_lossy())?,
            other => {
                return Err(LuaError::runtime(format!(
                    "Invalid 'method' - expected a string, got {}",
                    lune_utils::type_name(&other)
                )));
            }
        };
        let query = headers::read_multi_map(optional(lua, &table, "query", "a table")?, "query")?
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_string_lossy(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect();
        let headers = headers::read_headers(optional(lua, &table, "headers", "a table")?)?;
        let body = body_from_lua(table.get("body")?, "body")?;
        let options = match optional::<LuaTable>(lua, &table, "options", "a table")? {
            Some(options) => read_options(&options)?,
            None => RequestOptions::default(),
        };
        Ok(Self {
            url,
            method,
            query,
            headers,
            body,
            options,
        })
    }
}

/// A method is any HTTP token, trimmed and upper-cased.
pub(crate) fn parse_method(text: &str) -> LuaResult<Method> {
    let upper = text.trim().to_ascii_uppercase();
    Method::from_bytes(upper.as_bytes()).map_err(|_| {
        LuaError::runtime(format!(
            "Invalid method '{text}' - expected an HTTP token such as GET or POST"
        ))
    })
}

fn read_options(options: &LuaTable) -> LuaResult<RequestOptions> {
    let defaults = RequestOptions::default();
    let flag = |key: &str, default: bool| -> LuaResult<bool> {
        match options.get::<LuaValue>(key)? {
            LuaValue::Nil => Ok(default),
            LuaValue::Boolean(b) => Ok(b),
            other => Err(LuaError::runtime(format!(
                "Invalid option '{key}' - expected a boolean, got {}",
                lune_utils::type_name(&other)
            ))),
        }
    };
    let timeout = match options.get::<LuaValue>("timeout")? {
        LuaValue::Nil => None,
        LuaValue::Integer(n) if n > 0 => Some(Duration::from_secs(n as u64)),
        LuaValue::Number(n) if n > 0.0 && n.is_finite() => Some(Duration::from_secs_f64(n)),
        other => {
            return Err(LuaError::runtime(format!(
                "Invalid option 'timeout' - expected a positive number of seconds, got {}",
                describe(&other)
            )));
        }
    };
    let max_redirects = match options.get::<LuaValue>("maxRedirects")? {
        LuaValue::Nil => defaults.max_redirects,
        LuaValue::Integer(n) if n >= 0 => u32::try_from(n).unwrap_or(u32::MAX),
        LuaValue::Number(n) if n >= 0.0 && n.fract() == 0.0 => n.min(f64::from(u32::MAX)) as u32,
        other => {
            return Err(LuaError::runtime(format!(
                "Invalid option 'maxRedirects' - expected a whole number of zero or more, got {}",
                describe(&other)
            )));
        }
    };
    Ok(RequestOptions {
        decompress: flag("decompress", defaults.decompress)?,
        timeout,
        follow_redirects: flag("followRedirects", defaults.follow_redirects)?,
        max_redirects,
    })
}

fn describe(value: &LuaValue) -> String {
    match value {
        LuaValue::Integer(n) => n.to_string(),
        LuaValue::Number(n) => n.to_string(),
        other => lune_utils::type_name(other).to_string(),
    }
}
