//! Reading optional fields of config tables, with errors that name the field
//! and what it should have been.

use mlua::prelude::*;

/// `table[key]` as a `T`, or `None` when it is nil. `expected` describes a
/// valid value for the error message (`"a table"`, `"a function"`).
pub(crate) fn optional<T: FromLua>(
    lua: &Lua,
    table: &LuaTable,
    key: &str,
    expected: &str,
) -> LuaResult<Option<T>> {
    let value: LuaValue = table.get(key)?;
    if value.is_nil() {
        return Ok(None);
    }
    let got = lune_utils::type_name(&value);
    T::from_lua(value, lua)
        .map(Some)
        .map_err(|_| LuaError::runtime(format!("Invalid '{key}' - expected {expected}, got {got}")))
}
