//! Readable formatting of Luau values, shared by the global `print`, `warn`
//! and `stdio.format`: strings at the top level print raw, nested values are
//! quoted and indented, cycles and deep nesting are cut off safely.

use std::{collections::HashSet, fmt::Write};

use mlua::prelude::*;

/// Tables nested deeper than this print as `{ ... }`, as in Lune.
const MAX_DEPTH: usize = 4;
const INDENT: &str = "    ";

const GREEN: &str = "\x1b[32m";
const CYAN: &str = "\x1b[36m";
const YELLOW: &str = "\x1b[33m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// Formats several values separated by spaces, as `print` does.
#[must_use]
pub fn pretty_format_multi_value(values: &LuaMultiValue, colors: bool) -> String {
    let mut out = String::new();
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&pretty_format_value(value, colors));
    }
    out
}

/// Formats one value; a top-level string is returned as is.
#[must_use]
pub fn pretty_format_value(value: &LuaValue, colors: bool) -> String {
    match value {
        LuaValue::String(s) => s.to_string_lossy(),
        other => {
            let mut out = String::new();
            let mut seen = HashSet::new();
            write_value(&mut out, other, 0, colors, &mut seen);
            out
        }
    }
}

fn paint(out: &mut String, color: &str, text: &str, colors: bool) {
    if colors {
        out.push_str(color);
        out.push_str(text);
        out.push_str(RESET);
    } else {
        out.push_str(text);
    }
}

/// Luau's number formatting: whole numbers without a fraction.
#[must_use]
pub fn format_number(n: f64) -> String {
    if n.is_nan() {
        "nan".to_string()
    } else if n.is_infinite() {
        if n > 0.0 { "inf" } else { "-inf" }.to_string()
    } else if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn quote(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in String::from_utf8_lossy(s).chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A table's `__tostring` result, if its metatable has one.
fn table_tostring(table: &LuaTable) -> Option<String> {
    match table.metatable()?.raw_get::<LuaValue>("__tostring").ok()? {
        LuaValue::Function(f) => f.call::<String>(table.clone()).ok(),
        _ => None,
    }
}

fn write_value(
    out: &mut String,
    value: &LuaValue,
    depth: usize,
    colors: bool,
    seen: &mut HashSet<usize>,
) {
    match value {
        LuaValue::Nil => paint(out, DIM, "nil", colors),
        LuaValue::Boolean(b) => paint(out, YELLOW, if *b { "true" } else { "false" }, colors),
        LuaValue::Integer(n) => paint(out, CYAN, &n.to_string(), colors),
        LuaValue::Number(n) => paint(out, CYAN, &format_number(*n), colors),
        LuaValue::String(s) => paint(out, GREEN, &quote(&s.as_bytes()), colors),
        LuaValue::Table(table) => {
            if let Some(text) = table_tostring(table) {
                out.push_str(&text);
                return;
            }
            write_table(out, table, depth, colors, seen);
        }
        LuaValue::UserData(ud) => {
            let text = ud
                .metatable()
                .ok()
                .and_then(|m| m.get::<LuaFunction>("__tostring").ok())
                .and_then(|f| f.call::<String>(value.clone()).ok());
            match text {
                Some(text) => out.push_str(&text),
                None => paint(out, DIM, "<userdata>", colors),
            }
        }
        LuaValue::Buffer(b) => paint(out, DIM, &format!("<buffer({} bytes)>", b.len()), colors),
        LuaValue::Function(_) => paint(out, DIM, "<function>", colors),
        LuaValue::Thread(_) => paint(out, DIM, "<thread>", colors),
        LuaValue::Error(e) => out.push_str(&e.to_string()),
        LuaValue::Vector(v) => paint(
            out,
            CYAN,
            &format!("vector({}, {}, {})", v.x(), v.y(), v.z()),
            colors,
        ),
        other => paint(out, DIM, &format!("<{}>", other.type_name()), colors),
    }
}

fn write_table(
    out: &mut String,
    table: &LuaTable,
    depth: usize,
    colors: bool,
    seen: &mut HashSet<usize>,
) {
    let id = table.to_pointer() as usize;
    if seen.contains(&id) {
        paint(out, DIM, "<cycle>", colors);
        return;
    }
    if depth >= MAX_DEPTH {
        paint(out, DIM, "{ ... }", colors);
        return;
    }
    let mut entries: Vec<(LuaValue, LuaValue)> =
        table.pairs::<LuaValue, LuaValue>().flatten().collect();
    if entries.is_empty() {
        out.push_str("{}");
        return;
    }
    seen.insert(id);
    let len = table.raw_len();
    let is_array = len == entries.len();
    if !is_array {
        entries.sort_by_key(|(key, _)| sort_key(key));
    }
    let pad = INDENT.repeat(depth + 1);
    out.push_str("{\n");
    if is_array {
        for i in 1..=len {
            let item = table.raw_get::<LuaValue>(i).unwrap_or(LuaValue::Nil);
            out.push_str(&pad);
            write_value(out, &item, depth + 1, colors, seen);
            out.push_str(",\n");
        }
    } else {
        for (key, item) in &entries {
            out.push_str(&pad);
            match key {
                LuaValue::String(s) if is_identifier(&s.to_string_lossy()) => {
                    out.push_str(&s.to_string_lossy());
                }
                other => {
                    out.push('[');
                    write_value(out, other, depth + 1, colors, seen);
                    out.push(']');
                }
            }
            out.push_str(" = ");
            write_value(out, item, depth + 1, colors, seen);
            out.push_str(",\n");
        }
    }
    out.push_str(&INDENT.repeat(depth));
    out.push('}');
    seen.remove(&id);
}

/// Orders keys for display: numbers first (numerically), then strings.
fn sort_key(value: &LuaValue) -> (u8, i64, String) {
    match value {
        LuaValue::Integer(n) => (0, *n, String::new()),
        LuaValue::Number(n) => (0, *n as i64, String::new()),
        LuaValue::String(s) => (1, 0, s.to_string_lossy()),
        other => (2, 0, other.type_name().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(lua: &Lua, code: &str) -> String {
        let value: LuaValue = lua.load(code).eval().unwrap();
        pretty_format_value(&value, false)
    }

    #[test]
    fn scalars() {
        let lua = Lua::new();
        assert_eq!(format(&lua, "'raw string'"), "raw string");
        assert_eq!(format(&lua, "1"), "1");
        assert_eq!(format(&lua, "1.5"), "1.5");
        assert_eq!(format(&lua, "nil"), "nil");
        assert_eq!(format(&lua, "true"), "true");
    }

    #[test]
    fn tables_nest_and_quote() {
        let lua = Lua::new();
        assert_eq!(format(&lua, "{}"), "{}");
        assert_eq!(format(&lua, "{ 1, 'a' }"), "{\n    1,\n    \"a\",\n}");
        assert_eq!(
            format(&lua, "{ b = { c = true }, ['not id'] = 1 }"),
            "{\n    b = {\n        c = true,\n    },\n    [\"not id\"] = 1,\n}"
        );
    }

    #[test]
    fn deep_nesting_is_cut_after_four_levels() {
        let lua = Lua::new();
        let text = format(&lua, "return { a = { b = { c = { d = { 'hidden' } } } } }");
        assert!(text.contains("d = { ... }"), "{text}");
        assert!(!text.contains("hidden"), "{text}");
    }

    #[test]
    fn cycles_are_cut() {
        let lua = Lua::new();
        let text = format(&lua, "local t = {} t.self = t return t");
        assert_eq!(text, "{\n    self = <cycle>,\n}");
    }
}
