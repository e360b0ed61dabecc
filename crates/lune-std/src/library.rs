use mlua::prelude::*;

/// One `@lune/<name>` library: how to build its module table and its types.
pub struct Library {
    /// The name after `@lune/`.
    pub name: &'static str,
    /// Builds the module table; called once, on first `require`.
    pub module: fn(Lua) -> LuaResult<LuaTable>,
    /// The library's `types.d.luau` text, for `lune setup` and `types/`.
    pub typedefs: fn() -> String,
}

/// Every library, in the order `lune setup` writes them. Adding a library is
/// one entry here.
pub const LIBRARIES: &[Library] = &[
    Library {
        name: "net",
        module: lune_std_net::module,
        typedefs: lune_std_net::typedefs,
    },
    Library {
        name: "process",
        module: lune_std_process::module,
        typedefs: lune_std_process::typedefs,
    },
    Library {
        name: "serde",
        module: lune_std_serde::module,
        typedefs: lune_std_serde::typedefs,
    },
    Library {
        name: "stdio",
        module: lune_std_stdio::module,
        typedefs: lune_std_stdio::typedefs,
    },
    Library {
        name: "task",
        module: lune_std_task::module,
        typedefs: lune_std_task::typedefs,
    },
];

/// Finds a library by the name after `@lune/`.
pub(crate) fn find(name: &str) -> Option<&'static Library> {
    LIBRARIES.iter().find(|lib| lib.name == name)
}
