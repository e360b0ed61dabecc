//! The request a `net.serve` handler sees.

use std::{borrow::Cow, ffi::CStr, net::SocketAddr, ptr};

use http::{HeaderMap, HeaderValue};
use mlua::{ffi, prelude::*};

use crate::rt::TlsInfo;

/// Who is on the other end of a served connection.
#[derive(Default)]
pub(crate) struct Peer {
    /// `None` over a Unix socket.
    pub(crate) addr: Option<SocketAddr>,
    /// `addr`'s IP as `request.ip` shows it, formatted once per connection.
    ip: Option<String>,
    /// On TLS connections.
    pub(crate) tls: Option<TlsInfo>,
}

impl Peer {
    pub(crate) fn new(addr: Option<SocketAddr>, tls: Option<TlsInfo>) -> Self {
        Self {
            addr,
            ip: addr.map(|addr| addr.ip().to_string()),
            tls,
        }
    }

    /// `request.tls`: `{ version, alpn?, peerCertificate? }`.
    fn tls_table(&self, lua: &Lua) -> LuaResult<Option<LuaTable>> {
        let Some(tls) = &self.tls else {
            return Ok(None);
        };
        let table = lua.create_table_with_capacity(0, 3)?;
        table.raw_set("version", tls.version)?;
        table.raw_set("alpn", tls.alpn.as_deref())?;
        table.raw_set("peerCertificate", tls.peer_certificate.as_deref())?;
        Ok(Some(table))
    }
}

/// The request table a `net.serve` handler receives: `method`, `path`
/// (`/` if empty), `query` and `headers` (a value seen once is a string,
/// several times an array), `body`, the client's `ip` and `port`, and on a
/// TLS connection `tls`.
///
/// Built on the Luau stack in one protected call: no reference per field
/// and no key string made twice (this runs for every request).
pub(super) fn request_table(
    lua: &Lua,
    parts: &http::request::Parts,
    body: &[u8],
    peer: &Peer,
) -> LuaResult<LuaTable> {
    let path = match parts.uri.path() {
        "" => "/",
        path => path,
    };
    let query = query_pairs(parts.uri.query().unwrap_or_default());
    let fields = Fields {
        method: parts.method.as_str().as_bytes(),
        path: path.as_bytes(),
        query: &query,
        headers: &parts.headers,
        body,
        ip: peer.ip.as_deref().map(str::as_bytes),
        port: peer.addr.map(|addr| addr.port()),
    };
    // SAFETY: `build` only calls the Luau C API on the stack it is given,
    // within a protected call (errors such as out-of-memory are caught),
    // after reserving the stack slots it uses; it neither panics nor
    // touches mlua's state.
    let table: LuaTable = unsafe { lua.exec_raw((), |state| fields.build(state))? };
    if let Some(tls) = peer.tls_table(lua)? {
        table.raw_set("tls", tls)?;
    }
    Ok(table)
}

/// The query string's pairs, decoded, grouped by key in first-seen order.
fn query_pairs(query: &str) -> Vec<(Cow<'_, str>, Vec<Cow<'_, str>>)> {
    let mut grouped: Vec<(Cow<'_, str>, Vec<Cow<'_, str>>)> = Vec::new();
    if query.is_empty() {
        return grouped;
    }
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match grouped.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(value),
            None => grouped.push((key, vec![value])),
        }
    }
    grouped
}

/// What goes into a request table, borrowed.
struct Fields<'a> {
    method: &'a [u8],
    path: &'a [u8],
    query: &'a [(Cow<'a, str>, Vec<Cow<'a, str>>)],
    headers: &'a HeaderMap,
    body: &'a [u8],
    ip: Option<&'a [u8]>,
    port: Option<u16>,
}

impl Fields<'_> {
    /// Leaves the request table on top of `state`'s stack.
    ///
    /// # Safety
    /// `state` is a Luau state inside a protected call.
    unsafe fn build(&self, state: *mut ffi::lua_State) {
        unsafe {
            // The table, a nested table, an array, a key and a value.
            ffi::luaL_checkstack(state, 6, ptr::null());
            ffi::lua_createtable(state, 0, 8);
            set_bytes(state, c"method", self.method);
            set_bytes(state, c"path", self.path);
            ffi::lua_createtable(state, 0, self.query.len().try_into().unwrap_or(0));
            for (key, values) in self.query {
                push_bytes(state, key.as_bytes());
                push_values(state, values.iter().map(|v| v.as_bytes()), values.len());
                ffi::lua_rawset(state, -3);
            }
            ffi::lua_rawsetfield(state, -2, c"query".as_ptr());
            ffi::lua_createtable(state, 0, self.headers.keys_len().try_into().unwrap_or(0));
            for name in self.headers.keys() {
                let values = self.headers.get_all(name);
                push_bytes(state, name.as_str().as_bytes());
                let count = values.iter().count();
                push_values(state, values.iter().map(HeaderValue::as_bytes), count);
                ffi::lua_rawset(state, -3);
            }
            ffi::lua_rawsetfield(state, -2, c"headers".as_ptr());
            set_bytes(state, c"body", self.body);
            if let Some(ip) = self.ip {
                set_bytes(state, c"ip", ip);
            }
            if let Some(port) = self.port {
                ffi::lua_pushnumber(state, f64::from(port));
                ffi::lua_rawsetfield(state, -2, c"port".as_ptr());
            }
        }
    }
}

/// Pushes `bytes` as a Luau string.
///
/// # Safety
/// As for [`Fields::build`], with a free stack slot.
unsafe fn push_bytes(state: *mut ffi::lua_State, bytes: &[u8]) {
    unsafe {
        ffi::lua_pushlstring(state, bytes.as_ptr().cast(), bytes.len());
    }
}

/// Sets `key` of the table on top of the stack to `bytes`.
///
/// # Safety
/// As for [`push_bytes`].
unsafe fn set_bytes(state: *mut ffi::lua_State, key: &CStr, bytes: &[u8]) {
    unsafe {
        push_bytes(state, bytes);
        ffi::lua_rawsetfield(state, -2, key.as_ptr());
    }
}

/// Pushes one value as a string, several as an array of strings.
///
/// # Safety
/// As for [`Fields::build`], with two free stack slots.
unsafe fn push_values<'v>(
    state: *mut ffi::lua_State,
    mut values: impl Iterator<Item = &'v [u8]>,
    count: usize,
) {
    unsafe {
        if count == 1 {
            push_bytes(state, values.next().unwrap_or_default());
            return;
        }
        ffi::lua_createtable(state, count.try_into().unwrap_or(0), 0);
        for (i, value) in values.enumerate() {
            push_bytes(state, value);
            ffi::lua_rawseti_(state, -2, i32::try_from(i + 1).unwrap_or(i32::MAX));
        }
    }
}
