//! Header and query tables: `{ [string]: string | { string } }` in both
//! directions. A name seen once is a string; seen several times, an array.

use http::{HeaderMap, HeaderName, HeaderValue};
use mlua::prelude::*;

/// A header or query value: a string, or a number written as Luau prints it
/// (Lune accepts `{ ["X-Count"] = 5 }`).
fn value_bytes(value: &LuaValue) -> Option<Vec<u8>> {
    match value {
        LuaValue::String(s) => Some(s.as_bytes().to_vec()),
        LuaValue::Integer(n) => Some(n.to_string().into_bytes()),
        LuaValue::Number(n) => Some(lune_utils::fmt::format_number(*n).into_bytes()),
        _ => None,
    }
}

/// Reads a `{ [string]: string | { string } }` table into ordered pairs, one
/// per value. `what` names the table in error messages (`headers`, `query`).
pub(crate) fn read_multi_map(
    table: Option<LuaTable>,
    what: &str,
) -> LuaResult<Vec<(LuaString, Vec<u8>)>> {
    let mut pairs = Vec::new();
    let Some(table) = table else {
        return Ok(pairs);
    };
    for entry in table.pairs::<LuaValue, LuaValue>() {
        let (key, value) = entry?;
        let LuaValue::String(name) = key else {
            return Err(LuaError::runtime(format!(
                "Invalid {what} name - expected a string, got {}",
                lune_utils::type_name(&key)
            )));
        };
        let bad_value = |got: &str| {
            LuaError::runtime(format!(
                "Invalid {what} value for '{}' - expected a string, a number or an array of them, got {got}",
                name.to_string_lossy()
            ))
        };
        match value {
            LuaValue::Table(values) => {
                for value in values.sequence_values::<LuaValue>() {
                    let value = value?;
                    let bytes = value_bytes(&value)
                        .ok_or_else(|| bad_value(lune_utils::type_name(&value)))?;
                    pairs.push((name.clone(), bytes));
                }
            }
            other => {
                let bytes =
                    value_bytes(&other).ok_or_else(|| bad_value(lune_utils::type_name(&other)))?;
                pairs.push((name, bytes));
            }
        }
    }
    Ok(pairs)
}

/// Reads a headers table into validated header pairs.
pub(crate) fn read_headers(table: Option<LuaTable>) -> LuaResult<Vec<(HeaderName, HeaderValue)>> {
    read_multi_map(table, "header")?
        .into_iter()
        .map(|(name, value)| {
            let header_name = HeaderName::from_bytes(&name.as_bytes()).map_err(|_| {
                LuaError::runtime(format!("Invalid header name '{}'", name.to_string_lossy()))
            })?;
            let header_value = HeaderValue::from_bytes(&value).map_err(|_| {
                LuaError::runtime(format!(
                    "Invalid header value for '{}' - it contains a newline or control character",
                    name.to_string_lossy()
                ))
            })?;
            Ok((header_name, header_value))
        })
        .collect()
}

/// Builds a table from ordered pairs: a key seen once maps to a string, a key
/// seen several times to an array of strings in order.
pub(crate) fn write_multi_map<'a>(
    lua: &Lua,
    pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> LuaResult<LuaTable> {
    let table = lua.create_table()?;
    for (key, value) in pairs {
        let key = lua.create_string(key)?;
        let value = lua.create_string(value)?;
        match table.raw_get::<LuaValue>(&key)? {
            LuaValue::Nil => table.raw_set(key, value)?,
            LuaValue::Table(values) => values.raw_push(value)?,
            first => {
                let values = lua.create_sequence_from([first, LuaValue::String(value)])?;
                table.raw_set(key, values)?;
            }
        }
    }
    Ok(table)
}

/// Builds a headers table (lower-case names) from a header map.
pub(crate) fn write_headers(lua: &Lua, headers: &HeaderMap) -> LuaResult<LuaTable> {
    write_multi_map(
        lua,
        headers
            .iter()
            .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes())),
    )
}
