//! `@lune/process`: `args`, `env`, `exit`, `os`, `arch`, `cwd` and `exec`.

use std::process::Command;

use lune_utils::{ScriptArgs, TableBuilder};
use mlua::prelude::*;
use mlua_luau_scheduler::Functions;

/// Builds the `@lune/process` table. Needs a scheduler attached to `lua`.
pub fn module(lua: Lua) -> LuaResult<LuaTable> {
    let args = lua
        .app_data_ref::<ScriptArgs>()
        .map(|a| a.0.clone())
        .unwrap_or_default();
    let args = lua.create_sequence_from(args)?;
    args.set_readonly(true);
    let mut cwd = std::env::current_dir()?.to_string_lossy().into_owned();
    if !cwd.ends_with(std::path::MAIN_SEPARATOR) {
        cwd.push(std::path::MAIN_SEPARATOR);
    }
    let os = match std::env::consts::OS {
        "macos" => "macos",
        "windows" => "windows",
        _ => "linux",
    };
    let exit = Functions::new(lua.clone())?.exit;
    TableBuilder::new(lua.clone())?
        .with_value("args", args)?
        .with_value("env", env_table(&lua)?)?
        .with_value("exit", exit)?
        .with_value("os", os)?
        .with_value("arch", std::env::consts::ARCH)?
        .with_value("cwd", cwd)?
        .with_async_function("exec", exec)?
        .build_readonly()
}

/// The `@lune/process` type definitions.
#[must_use]
pub fn typedefs() -> String {
    include_str!("../types.d.luau").to_string()
}

/// `process.env`: reads, writes and iterates the real environment.
fn env_table(lua: &Lua) -> LuaResult<LuaTable> {
    let meta = TableBuilder::new(lua.clone())?
        .with_function("__index", |_, (_, key): (LuaValue, String)| {
            Ok(std::env::var_os(&key).map(|v| v.to_string_lossy().into_owned()))
        })?
        .with_function(
            "__newindex",
            |_, (_, key, value): (LuaValue, String, Option<String>)| {
                if key.is_empty() || key.contains(['=', '\0']) {
                    return Err(LuaError::runtime(format!(
                        "Invalid environment variable name '{key}'"
                    )));
                }
                match value {
                    Some(value) if value.contains('\0') => Err(LuaError::runtime(format!(
                        "Invalid value for environment variable '{key}' - it contains a NUL byte"
                    ))),
                    Some(value) => {
                        set_env(&key, Some(&value));
                        Ok(())
                    }
                    None => {
                        set_env(&key, None);
                        Ok(())
                    }
                }
            },
        )?
        .with_function("__iter", |lua, _: LuaValue| {
            let vars: Vec<(String, String)> = std::env::vars_os()
                .map(|(k, v)| {
                    (
                        k.to_string_lossy().into_owned(),
                        v.to_string_lossy().into_owned(),
                    )
                })
                .collect();
            let snapshot = lua.create_table_from(vars)?;
            let next = lua.globals().get::<LuaFunction>("next")?;
            Ok((next, snapshot))
        })?
        .build()?;
    TableBuilder::new(lua.clone())?
        .with_metatable(meta)?
        .build()
}

#[allow(unsafe_code)]
fn set_env(key: &str, value: Option<&str>) {
    // SAFETY: Luau runs on one thread; the runtime's background threads
    // never read the environment concurrently with a script writing it.
    unsafe {
        match value {
            Some(value) => std::env::set_var(key, value),
            None => std::env::remove_var(key),
        }
    }
}

/// `process.exec(program, params?, options?)`: runs a program to completion.
/// `options` may set `cwd`, `env` (added to the inherited environment) and
/// `shell` (`true` for `/bin/sh`, or a shell path) to run the command line
/// through a shell.
async fn exec(
    lua: Lua,
    (program, params, options): (String, Option<Vec<String>>, Option<LuaTable>),
) -> LuaResult<LuaTable> {
    let params = params.unwrap_or_default();
    let options = match options {
        Some(options) => options,
        None => lua.create_table()?,
    };
    let shell = match options.get::<LuaValue>("shell")? {
        LuaValue::Boolean(true) => Some("/bin/sh".to_string()),
        LuaValue::String(s) => Some(s.to_str()?.to_string()),
        _ => None,
    };
    let mut command = if let Some(shell) = shell {
        {
            let mut command = Command::new(shell);
            let line = std::iter::once(program.clone())
                .chain(params)
                .collect::<Vec<_>>();
            command.arg("-c").arg(line.join(" "));
            command
        }
    } else {
        let mut command = Command::new(&program);
        command.args(params);
        command
    };
    if let Some(cwd) = options.get::<Option<String>>("cwd")? {
        command.current_dir(cwd);
    }
    if let Some(env) = options.get::<Option<LuaTable>>("env")? {
        for pair in env.pairs::<String, String>() {
            let (k, v) = pair?;
            command.env(k, v);
        }
    }
    let output = blocking::unblock(move || command.output())
        .await
        .map_err(|e| LuaError::runtime(format!("Failed to run '{program}': {e}")))?;
    TableBuilder::new(lua.clone())?
        .with_value("ok", output.status.success())?
        .with_value("code", output.status.code().unwrap_or(1))?
        .with_value("stdout", lua.create_string(&output.stdout)?)?
        .with_value("stderr", lua.create_string(&output.stderr)?)?
        .build()
}
