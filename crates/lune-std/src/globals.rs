use std::io::{IsTerminal, Write};

use lune_utils::fmt::pretty_format_multi_value;
use mlua::prelude::*;

pub(crate) fn version_string(lua: &Lua) -> String {
    let luau = lua
        .globals()
        .raw_get::<String>("_VERSION")
        .unwrap_or_default();
    let luau = luau.trim_start_matches("Lune ");
    let luau_version = luau.strip_prefix("Luau ").map_or_else(
        || luau.split('+').nth(1).unwrap_or("unknown").to_string(),
        str::to_string,
    );
    format!("Lune {}+{luau_version}", lune_utils::RUNTIME_VERSION)
}

pub(crate) fn inject(lua: &Lua) -> LuaResult<()> {
    let globals = lua.globals();
    globals.raw_set("_VERSION", version_string(lua))?;
    globals.raw_set(
        "print",
        lua.create_function(|_, args: LuaMultiValue| {
            let colors = std::io::stdout().is_terminal();
            let text = pretty_format_multi_value(&args, colors);
            write_line(&mut std::io::stdout().lock(), &text)
        })?,
    )?;
    globals.raw_set(
        "warn",
        lua.create_function(|_, args: LuaMultiValue| {
            let colors = std::io::stderr().is_terminal();
            let prefix = if colors {
                "\x1b[1m[\x1b[33mWARN\x1b[39m]\x1b[0m "
            } else {
                "[WARN] "
            };
            let text = format!("{prefix}{}", pretty_format_multi_value(&args, colors));
            write_line(&mut std::io::stderr().lock(), &text)
        })?,
    )?;
    Ok(())
}

fn write_line(out: &mut impl Write, text: &str) -> LuaResult<()> {
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}
