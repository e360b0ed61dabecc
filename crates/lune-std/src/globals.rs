use std::io::{IsTerminal, Write};

use lune_utils::fmt::pretty_format_multi_value;
use mlua::prelude::*;

/// `Lune <runtime version>+<luau release>`, the release being the `740` of
/// Luau's own `_VERSION` (`Luau 0.740`), as Lune formats it.
pub(crate) fn version_string(lua: &Lua) -> String {
    let luau: String = lua.globals().raw_get("_VERSION").unwrap_or_default();
    let release = luau
        .rsplit(['.', ' '])
        .next()
        .filter(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_digit()))
        .unwrap_or("0");
    format!("Lune {}+{release}", lune_utils::RUNTIME_VERSION)
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
