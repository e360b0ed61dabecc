//! The fuzzer's bytes read as a sequence of small inputs, and the values a
//! script could build from them.

use mlua::prelude::*;

/// Reads fuzzer bytes as a sequence of small inputs; past the end, zeros.
pub(super) struct Input<'a>(pub(super) &'a [u8]);

impl<'a> Input<'a> {
    pub(super) fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        first
    }

    /// Up to `max` bytes, the count given by the next byte.
    pub(super) fn bytes(&mut self, max: usize) -> &'a [u8] {
        let len = (usize::from(self.byte()) % (max + 1)).min(self.0.len());
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        taken
    }

    pub(super) fn f64(&mut self) -> f64 {
        let mut raw = [0u8; 8];
        for b in &mut raw {
            *b = self.byte();
        }
        f64::from_le_bytes(raw)
    }

    pub(super) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A key or value of a script's table, read from fuzzer bytes.
pub(super) fn lua_value(lua: &Lua, input: &mut Input<'_>, kind: u8, depth: u8) -> LuaValue {
    match kind % 8 {
        0 => LuaValue::Number(input.f64()),
        1 => LuaValue::Integer(i64::from(input.byte()) - 128),
        2 => LuaValue::Boolean(input.byte() & 1 == 1),
        3 if depth < 2 => {
            let table = lua.create_table().expect("a table");
            for _ in 0..input.byte() % 4 {
                let kind = input.byte();
                let value = lua_value(lua, input, kind, depth + 1);
                table.raw_push(value).expect("push");
            }
            LuaValue::Table(table)
        }
        _ => LuaValue::String(lua.create_string(input.bytes(24)).expect("a string")),
    }
}
