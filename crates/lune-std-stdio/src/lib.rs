//! `@lune/stdio`: `write`, `ewrite`, `format`, `color`, `style`, and reading
//! standard input with `readLine` and `readToEnd`.

use std::io::{Read, Write};

use lune_utils::{TableBuilder, fmt::pretty_format_multi_value};
use mlua::prelude::*;

/// Builds the `@lune/stdio` table.
pub fn module(lua: Lua) -> LuaResult<LuaTable> {
    TableBuilder::new(lua)?
        .with_function("write", |_, s: LuaString| {
            write_to(&mut std::io::stdout().lock(), &s.as_bytes())
        })?
        .with_function("ewrite", |_, s: LuaString| {
            write_to(&mut std::io::stderr().lock(), &s.as_bytes())
        })?
        .with_function("format", |_, values: LuaMultiValue| {
            Ok(pretty_format_multi_value(&values, false))
        })?
        .with_function("color", |_, name: String| color(&name))?
        .with_function("style", |_, name: String| style(&name))?
        .with_async_function("readLine", |lua, ()| async move {
            let line = blocking::unblock(|| {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).map(|_| line)
            })
            .await?;
            lua.create_string(line.trim_end_matches(['\r', '\n']))
        })?
        .with_async_function("readToEnd", |lua, ()| async move {
            let all = blocking::unblock(|| {
                let mut all = Vec::new();
                std::io::stdin().read_to_end(&mut all).map(|_| all)
            })
            .await?;
            lua.create_string(all)
        })?
        .build_readonly()
}

/// The `@lune/stdio` type definitions.
#[must_use]
pub fn typedefs() -> String {
    include_str!("../types.d.luau").to_string()
}

fn write_to(out: &mut impl Write, bytes: &[u8]) -> LuaResult<()> {
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}

fn color(name: &str) -> LuaResult<&'static str> {
    Ok(match name {
        "reset" => "\x1b[39m",
        "black" => "\x1b[30m",
        "red" => "\x1b[31m",
        "green" => "\x1b[32m",
        "yellow" => "\x1b[33m",
        "blue" => "\x1b[34m",
        "purple" => "\x1b[35m",
        "cyan" => "\x1b[36m",
        "white" => "\x1b[37m",
        other => {
            return Err(LuaError::runtime(format!(
                "Invalid color '{other}' - expected one of reset, black, red, green, yellow, blue, purple, cyan, white"
            )));
        }
    })
}

fn style(name: &str) -> LuaResult<&'static str> {
    Ok(match name {
        "reset" => "\x1b[0m",
        "bold" => "\x1b[1m",
        "dim" => "\x1b[2m",
        other => {
            return Err(LuaError::runtime(format!(
                "Invalid style '{other}' - expected one of reset, bold, dim"
            )));
        }
    })
}
