//! `net.request` arguments: a URL string or a params table.

use std::{rc::Rc, time::Duration};

use http::{HeaderName, HeaderValue, Method};
use mlua::prelude::*;

use super::pool::Liveness;
use crate::{
    rt::tls::ClientTls,
    shared::{body::BodySource, headers, options::Options},
};

/// Everything `net.request` was asked to do.
pub(crate) struct RequestConfig {
    pub(super) url: String,
    pub(super) method: Method,
    pub(super) query: Vec<(String, String)>,
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
    pub(super) body: BodySource,
    pub(super) options: RequestOptions,
    /// The Luau state a streamed body is read from (none outside Luau).
    pub(super) lua: Option<Lua>,
    /// Whether the Luau thread that made the request still waits for it.
    pub(super) caller: Liveness,
    /// The default `User-Agent`, sent unless `headers` has one.
    pub(super) user_agent: HeaderValue,
}

/// The liveness of the Luau thread running now: false once it is cancelled.
pub(super) fn current_caller(lua: &Lua) -> Liveness {
    let thread = lua.current_thread();
    Rc::new(move || {
        matches!(
            thread.status(),
            LuaThreadStatus::Resumable | LuaThreadStatus::Running
        )
    })
}

/// `params.options`.
pub(super) struct RequestOptions {
    pub(super) decompress: bool,
    pub(super) timeout: Option<Duration>,
    pub(super) follow_redirects: bool,
    pub(super) max_redirects: u32,
    /// The most bytes a response body may have, after decompression.
    pub(super) max_body_size: Option<usize>,
    /// Return at the response head, with the body as a `BodyReader`.
    pub(super) stream: bool,
    /// Connect to this Unix socket; the URL's host only names the `Host` header.
    pub(super) unix_socket: Option<std::path::PathBuf>,
    /// `options.tls`: the trust, client certificate and name for https.
    pub(super) tls: ClientTls,
}

impl Default for RequestOptions {
    fn default() -> Self {
        Self {
            decompress: true,
            timeout: None,
            follow_redirects: true,
            max_redirects: 10,
            max_body_size: None,
            stream: false,
            unix_socket: None,
            tls: ClientTls::default(),
        }
    }
}

impl FromLua for RequestConfig {
    fn from_lua(value: LuaValue, lua: &Lua) -> LuaResult<Self> {
        let user_agent = super::user_agent(lua);
        let table = match value {
            LuaValue::String(url) => {
                return Ok(Self {
                    url: url.to_str()?.to_string(),
                    method: Method::GET,
                    query: Vec::new(),
                    headers: Vec::new(),
                    body: BodySource::Empty,
                    options: RequestOptions::default(),
                    lua: Some(lua.clone()),
                    caller: current_caller(lua),
                    user_agent,
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
        let fields = Options::new(&table);
        let query = headers::read_multi_map(fields.table("query")?, "query")?
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_string_lossy(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect();
        let headers = headers::read_headers(fields.table("headers")?)?;
        let body = BodySource::from_lua(table.get("body")?, "body")?;
        let options = match fields.table("options")? {
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
            lua: Some(lua.clone()),
            caller: current_caller(lua),
            user_agent,
        })
    }
}

/// A method is any HTTP token, trimmed and upper-cased.
pub(super) fn parse_method(text: &str) -> LuaResult<Method> {
    let upper = text.trim().to_ascii_uppercase();
    Method::from_bytes(upper.as_bytes()).map_err(|_| {
        LuaError::runtime(format!(
            "Invalid method '{text}' - expected an HTTP token such as GET or POST"
        ))
    })
}

fn read_options(options: &LuaTable) -> LuaResult<RequestOptions> {
    let defaults = RequestOptions::default();
    let options = Options::new(options);
    Ok(RequestOptions {
        decompress: options.flag("decompress")?.unwrap_or(defaults.decompress),
        timeout: options.seconds("timeout")?,
        follow_redirects: options
            .flag("followRedirects")?
            .unwrap_or(defaults.follow_redirects),
        max_redirects: options
            .whole("maxRedirects", 0, u64::from(u32::MAX))?
            .map_or(defaults.max_redirects, |n| n as u32),
        max_body_size: options.size("maxBodySize")?,
        stream: options.flag("stream")?.unwrap_or(defaults.stream),
        unix_socket: options.path("unixSocket")?,
        tls: options.client_tls("tls")?.unwrap_or_default(),
    })
}
