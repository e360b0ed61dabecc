//! Luau tables built on the Luau stack in one protected call, for the
//! tables made per request (the request a handler gets, the response
//! `net.request` returns): mlua's safe API makes a reference per field and
//! per string, which cost more than the rest of a request.
//!
//! [`build`] is the only way to a [`Table`], so its methods always run on a
//! valid state inside a protected call (a Luau error such as out-of-memory
//! is caught there) with the table being built on top; each reserves the
//! stack slots it uses and leaves the stack as it found it.

use std::{collections::HashMap, ffi::CStr, ptr};

use http::{HeaderMap, HeaderValue};
use mlua::{ffi, prelude::*};

/// The Luau stack while a table is built on it (the table on top).
pub(crate) struct Table {
    state: *mut ffi::lua_State,
}

/// A table with room for `fields` named fields, set by `fill`.
pub(crate) fn build(lua: &Lua, fields: usize, fill: impl FnOnce(&Table)) -> LuaResult<LuaTable> {
    // SAFETY: `exec_raw` runs the closure in a protected call on a valid
    // state; the table created here stays on top while `fill` runs, and
    // `Table`'s methods keep the stack balanced (see the module docs).
    unsafe {
        lua.exec_raw((), |state| {
            ffi::luaL_checkstack(state, 4, ptr::null());
            ffi::lua_createtable(state, 0, count(fields));
            fill(&Table { state });
        })
    }
}

/// A headers table on its own (see [`Table::headers`]), for the property
/// tests and the fuzzer.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn headers_table(lua: &Lua, headers: &HeaderMap) -> LuaResult<LuaTable> {
    // SAFETY: as in `build`.
    unsafe { lua.exec_raw((), |state| push_headers(state, headers)) }
}

/// A multi-map table on its own (see [`Table::multi_map`]), for the
/// property tests and the fuzzer.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn multi_map_table<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    lua: &Lua,
    pairs: impl IntoIterator<Item = (K, V)>,
) -> LuaResult<LuaTable> {
    let groups = group(pairs);
    // SAFETY: as in `build`.
    unsafe { lua.exec_raw((), |state| push_groups(state, &groups)) }
}

impl Table {
    /// `key` = `value` as a string.
    pub(crate) fn string(&self, key: &CStr, value: &[u8]) {
        // SAFETY: see the module docs.
        unsafe {
            push_bytes(self.state, value);
            ffi::lua_rawsetfield(self.state, -2, key.as_ptr());
        }
    }

    pub(crate) fn number(&self, key: &CStr, value: f64) {
        // SAFETY: see the module docs.
        unsafe {
            ffi::lua_pushnumber(self.state, value);
            ffi::lua_rawsetfield(self.state, -2, key.as_ptr());
        }
    }

    pub(crate) fn boolean(&self, key: &CStr, value: bool) {
        // SAFETY: see the module docs.
        unsafe {
            ffi::lua_pushboolean(self.state, i32::from(value));
            ffi::lua_rawsetfield(self.state, -2, key.as_ptr());
        }
    }

    /// `key` = the lower-case names of `headers` to their values: a string
    /// for a name seen once, an array in order for one seen several times.
    pub(crate) fn headers(&self, key: &CStr, headers: &HeaderMap) {
        // SAFETY: see the module docs.
        unsafe {
            push_headers(self.state, headers);
            ffi::lua_rawsetfield(self.state, -2, key.as_ptr());
        }
    }

    /// `key` = `pairs` by key in first-seen order, like [`Table::headers`].
    pub(crate) fn multi_map<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        key: &CStr,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) {
        let groups = group(pairs);
        // SAFETY: see the module docs.
        unsafe {
            push_groups(self.state, &groups);
            ffi::lua_rawsetfield(self.state, -2, key.as_ptr());
        }
    }
}

/// Saturates a count for `lua_createtable`'s size hints.
fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// `pairs` grouped by key in first-seen order. Keys are looked up in a
/// hash map: a query string a peer sends may hold thousands of them.
fn group<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    pairs: impl IntoIterator<Item = (K, V)>,
) -> Vec<(K, Vec<V>)> {
    let mut groups: Vec<(K, Vec<V>)> = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    for (key, value) in pairs {
        if let Some(group) = index.get(key.as_ref()).and_then(|&at| groups.get_mut(at)) {
            group.1.push(value);
        } else {
            index.insert(key.as_ref().to_vec(), groups.len());
            groups.push((key, vec![value]));
        }
    }
    groups
}

/// Pushes `bytes` as a string.
///
/// # Safety
/// A valid state in a protected call, one free stack slot.
unsafe fn push_bytes(state: *mut ffi::lua_State, bytes: &[u8]) {
    unsafe {
        ffi::lua_pushlstring(state, bytes.as_ptr().cast(), bytes.len());
    }
}

/// Pushes one value as a string, several as an array of strings.
///
/// # Safety
/// A valid state in a protected call, two free stack slots.
unsafe fn push_values<'v>(
    state: *mut ffi::lua_State,
    mut values: impl Iterator<Item = &'v [u8]>,
    len: usize,
) {
    unsafe {
        if len == 1 {
            push_bytes(state, values.next().unwrap_or_default());
            return;
        }
        ffi::lua_createtable(state, count(len), 0);
        for (i, value) in values.enumerate() {
            push_bytes(state, value);
            ffi::lua_rawseti_(state, -2, count(i + 1));
        }
    }
}

/// Pushes a headers table (see [`Table::headers`]).
///
/// # Safety
/// A valid state in a protected call.
unsafe fn push_headers(state: *mut ffi::lua_State, headers: &HeaderMap) {
    unsafe {
        ffi::luaL_checkstack(state, 4, ptr::null());
        ffi::lua_createtable(state, 0, count(headers.keys_len()));
        for name in headers.keys() {
            let values = headers.get_all(name);
            push_bytes(state, name.as_str().as_bytes());
            let len = values.iter().count();
            push_values(state, values.iter().map(HeaderValue::as_bytes), len);
            ffi::lua_rawset(state, -3);
        }
    }
}

/// Pushes a table of grouped pairs (see [`Table::multi_map`]).
///
/// # Safety
/// A valid state in a protected call.
unsafe fn push_groups<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    state: *mut ffi::lua_State,
    groups: &[(K, Vec<V>)],
) {
    unsafe {
        ffi::luaL_checkstack(state, 4, ptr::null());
        ffi::lua_createtable(state, 0, count(groups.len()));
        for (key, values) in groups {
            push_bytes(state, key.as_ref());
            push_values(state, values.iter().map(AsRef::as_ref), values.len());
            ffi::lua_rawset(state, -3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_keeps_first_seen_order_and_every_value() {
        let pairs = [("b", "1"), ("a", "2"), ("b", "3"), ("c", "4"), ("a", "5")];
        let groups = group(pairs);
        assert_eq!(
            groups,
            vec![
                ("b", vec!["1", "3"]),
                ("a", vec!["2", "5"]),
                ("c", vec!["4"])
            ]
        );
        // Thousands of distinct keys (a peer's query string) stay one pass.
        let many: Vec<(String, &str)> = (0..50_000).map(|i| (format!("k{i}"), "v")).collect();
        let groups = group(many.iter().map(|(k, v)| (k.as_str(), *v)));
        assert_eq!(groups.len(), 50_000);
        assert_eq!(groups[49_999].0, "k49999");
    }
}
