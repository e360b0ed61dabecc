//! Bodies as Luau gives them: `string | buffer`, binary-safe.

use bytes::Bytes;
use mlua::prelude::*;

/// Reads an optional `string | buffer` body. `what` names it in errors.
pub(crate) fn body_from_lua(value: LuaValue, what: &str) -> LuaResult<Option<Bytes>> {
    match value {
        LuaValue::Nil => Ok(None),
        other => bytes_from_lua(&other, what).map(Some),
    }
}

/// Reads a `string | buffer` value. `what` names it in errors.
pub(crate) fn bytes_from_lua(value: &LuaValue, what: &str) -> LuaResult<Bytes> {
    match value {
        LuaValue::String(s) => Ok(Bytes::copy_from_slice(&s.as_bytes())),
        LuaValue::Buffer(b) => Ok(Bytes::from(b.to_vec())),
        other => Err(LuaError::runtime(format!(
            "Invalid {what} - expected a string or buffer, got {}",
            lune_utils::type_name(other)
        ))),
    }
}
