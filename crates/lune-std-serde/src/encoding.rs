//! `serde.encode` / `serde.decode` for json, jsonc, toml and yaml.

use mlua::prelude::*;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Jsonc,
    Toml,
    Yaml,
}

fn format(name: &str) -> LuaResult<Format> {
    match name {
        "json" => Ok(Format::Json),
        "jsonc" => Ok(Format::Jsonc),
        "toml" => Ok(Format::Toml),
        "yaml" => Ok(Format::Yaml),
        other => Err(LuaError::runtime(format!(
            "Invalid encoding format '{other}' - expected one of json, jsonc, toml, yaml"
        ))),
    }
}

/// How decoded values become Luau values: null is nil, arrays are plain tables.
fn to_luau_options() -> LuaSerializeOptions {
    LuaSerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false)
        .set_array_metatable(false)
}

/// How Luau values are read for encoding: keys in the table's own order (a
/// decoded document encodes back in its original order, as in Lune), an empty
/// table is an empty array, functions and the like are skipped.
fn from_luau_options() -> LuaDeserializeOptions {
    LuaDeserializeOptions::new()
        .deny_unsupported_types(false)
        .encode_empty_tables_as_array(true)
}

pub(crate) fn encode(
    lua: &Lua,
    (name, value, pretty): (String, LuaValue, Option<bool>),
) -> LuaResult<LuaString> {
    let format = format(&name)?;
    let pretty = pretty.unwrap_or(false);
    let json: serde_json::Value = lua
        .from_value_with(value, from_luau_options())
        .map_err(|e| LuaError::runtime(format!("Failed to encode {name}: {e}")))?;
    let text = match format {
        Format::Json | Format::Jsonc => if pretty {
            serde_json::to_string_pretty(&json)
        } else {
            serde_json::to_string(&json)
        }
        .map_err(|e| e.to_string()),
        Format::Toml => if pretty {
            toml::to_string_pretty(&json)
        } else {
            toml::to_string(&json)
        }
        .map_err(|e| e.to_string()),
        Format::Yaml => serde_yaml::to_string(&json).map_err(|e| e.to_string()),
    }
    .map_err(|e| LuaError::runtime(format!("Failed to encode {name}: {e}")))?;
    lua.create_string(text)
}

pub(crate) fn decode(lua: &Lua, (name, input): (String, LuaValue)) -> LuaResult<LuaValue> {
    let format = format(&name)?;
    let bytes = match &input {
        LuaValue::String(s) => s.as_bytes().to_vec(),
        LuaValue::Buffer(b) => b.to_vec(),
        other => {
            return Err(LuaError::runtime(format!(
                "Failed to decode {name}: expected a string or buffer, got {}",
                lune_utils::type_name(other)
            )));
        }
    };
    let fail = |e: String| LuaError::runtime(format!("Failed to decode {name}: {e}"));
    let value: serde_json::Value = match format {
        Format::Json => serde_json::from_slice(&bytes).map_err(|e| fail(e.to_string()))?,
        Format::Jsonc => {
            let text = std::str::from_utf8(&bytes).map_err(|e| fail(e.to_string()))?;
            serde_json::from_str(&lune_utils::jsonc::strip(text))
                .map_err(|e| fail(e.to_string()))?
        }
        Format::Toml => {
            let text = std::str::from_utf8(&bytes).map_err(|e| fail(e.to_string()))?;
            toml::from_str(text).map_err(|e| fail(e.to_string()))?
        }
        Format::Yaml => serde_yaml::from_slice(&bytes).map_err(|e| fail(e.to_string()))?,
    };
    lua.to_value_with(&value, to_luau_options())
}
