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

/// How Luau values are read for encoding: keys sorted for stable output,
/// an empty table is an empty array, functions and the like are skipped.
fn from_luau_options() -> LuaDeserializeOptions {
    LuaDeserializeOptions::new()
        .deny_unsupported_types(false)
        .sort_keys(true)
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
                other.type_name()
            )));
        }
    };
    let fail = |e: String| LuaError::runtime(format!("Failed to decode {name}: {e}"));
    let value: serde_json::Value = match format {
        Format::Json => serde_json::from_slice(&bytes).map_err(|e| fail(e.to_string()))?,
        Format::Jsonc => {
            let text = std::str::from_utf8(&bytes).map_err(|e| fail(e.to_string()))?;
            serde_json::from_str(&strip_jsonc(text)).map_err(|e| fail(e.to_string()))?
        }
        Format::Toml => {
            let text = std::str::from_utf8(&bytes).map_err(|e| fail(e.to_string()))?;
            toml::from_str(text).map_err(|e| fail(e.to_string()))?
        }
        Format::Yaml => serde_yaml::from_slice(&bytes).map_err(|e| fail(e.to_string()))?,
    };
    lua.to_value_with(&value, to_luau_options())
}

/// Removes `//` and `/* */` comments and trailing commas, keeping line
/// breaks so error positions still point at the right line.
pub(crate) fn strip_jsonc(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            if c == b'\\' && i + 1 < bytes.len() {
                out.push_str(&text[i..i + 2]);
                i += 2;
                continue;
            }
            if c == b'"' {
                in_string = false;
            }
            let len = utf8_len(c);
            out.push_str(&text[i..i + len]);
            i += len;
            continue;
        }
        match c {
            b'"' => {
                in_string = true;
                out.push('"');
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    if bytes[i] == b'\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
                i += 2;
            }
            b',' => {
                let rest = text[i + 1..].trim_start();
                if !(rest.starts_with('}') || rest.starts_with(']')) {
                    out.push(',');
                }
                i += 1;
            }
            _ => {
                let len = utf8_len(c);
                out.push_str(&text[i..(i + len).min(text.len())]);
                i += len;
            }
        }
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::strip_jsonc;

    #[test]
    fn comments_and_trailing_commas() {
        let text = "{\n // line\n \"a\": 1, /* block */ \"b\": [1, 2,],\n}";
        let value: serde_json::Value = serde_json::from_str(&strip_jsonc(text)).unwrap();
        assert_eq!(value["a"], 1);
        assert_eq!(value["b"][1], 2);
    }

    #[test]
    fn strings_keep_their_contents() {
        let text = r#"{"url": "http://x/y // not a comment", "q": "a,]"}"#;
        let value: serde_json::Value = serde_json::from_str(&strip_jsonc(text)).unwrap();
        assert_eq!(value["url"], "http://x/y // not a comment");
        assert_eq!(value["q"], "a,]");
    }
}
