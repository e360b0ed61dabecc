//! `require`: `@lune/<lib>`, relative paths, `@self` and `.luaurc` aliases.
//!
//! A module runs once; its result is cached by canonical path. A module that
//! is still loading is either part of a cycle (it is an ancestor of the
//! requiring module: an error) or being loaded by another Luau thread (the
//! requirer waits for it).

use std::{
    cell::RefCell,
    collections::HashMap,
    path::{Path, PathBuf},
    rc::Rc,
};

use event_listener::Event;
use mlua::prelude::*;

use crate::library;

/// Captures the caller's chunk name, which `require` resolves paths against.
const REQUIRE_WRAPPER: &str = r#"
local impl = ...
return function(path)
	if type(path) ~= "string" then
		error("require expects a string path, got " .. typeof(path), 2)
	end
	-- Resolve against the nearest Luau caller, skipping C functions such as pcall.
	local level = 2
	local source = debug.info(level, "s")
	while source == "[C]" do
		level += 1
		source = debug.info(level, "s")
	end
	return impl(source or "", path)
end
"#;

enum Entry {
    Loading {
        ancestors: Rc<Vec<PathBuf>>,
        done: Rc<Event>,
    },
    Loaded(LuaValue),
}

#[derive(Default)]
struct Cache {
    libraries: HashMap<&'static str, LuaTable>,
    modules: HashMap<PathBuf, Entry>,
}

type SharedCache = Rc<RefCell<Cache>>;

pub(crate) fn inject(lua: &Lua) -> LuaResult<()> {
    let cache: SharedCache = Rc::default();
    let implementation =
        lua.create_async_function(move |lua, (source, path): (String, String)| {
            let cache = cache.clone();
            lune_utils::wake_on_drop(async move { require(&lua, &cache, &source, &path).await })
        })?;
    let require = lua
        .load(REQUIRE_WRAPPER)
        .set_name("=require")
        .call::<LuaFunction>(implementation)?;
    lua.globals().raw_set("require", require)
}

async fn require(lua: &Lua, cache: &SharedCache, source: &str, path: &str) -> LuaResult<LuaValue> {
    if let Some(name) = path.strip_prefix("@lune/") {
        return require_library(lua, cache, name).map(LuaValue::Table);
    }
    let caller = caller_path(source);
    let file = resolve(&caller, path).map_err(LuaError::runtime)?;
    loop {
        let waiting = {
            let cache_ref = cache.borrow();
            match cache_ref.modules.get(&file) {
                Some(Entry::Loaded(value)) => return Ok(value.clone()),
                Some(Entry::Loading { done, .. }) => {
                    // A cycle: the target is the requiring module itself or one
                    // of the modules whose loading led to it. Otherwise another
                    // thread is loading it, and this one waits.
                    let caller_chain = chain_of(&cache_ref, &caller);
                    if caller == file || caller_chain.contains(&file) {
                        return Err(LuaError::runtime(format!(
                            "Require cycle detected: '{}' requires '{}', which is still loading",
                            caller.display(),
                            file.display()
                        )));
                    }
                    Some(done.listen())
                }
                None => None,
            }
        };
        match waiting {
            Some(listener) => listener.await,
            None => break,
        }
    }
    let ancestors = {
        let cache_ref = cache.borrow();
        let mut chain = chain_of(&cache_ref, &caller).to_vec();
        chain.push(caller.clone());
        Rc::new(chain)
    };
    let done = Rc::new(Event::new());
    cache.borrow_mut().modules.insert(
        file.clone(),
        Entry::Loading {
            ancestors,
            done: done.clone(),
        },
    );
    let result = run_module(lua, &file).await;
    match &result {
        Ok(value) => {
            cache
                .borrow_mut()
                .modules
                .insert(file.clone(), Entry::Loaded(value.clone()));
        }
        Err(_) => {
            cache.borrow_mut().modules.remove(&file);
        }
    }
    done.notify(usize::MAX);
    result
}

fn chain_of<'a>(cache: &'a Cache, module: &Path) -> &'a [PathBuf] {
    match cache.modules.get(module) {
        Some(Entry::Loading { ancestors, .. }) => ancestors.as_slice(),
        _ => &[],
    }
}

fn require_library(lua: &Lua, cache: &SharedCache, name: &str) -> LuaResult<LuaTable> {
    if let Some(table) = cache.borrow().libraries.get(name) {
        return Ok(table.clone());
    }
    let Some(lib) = library::find(name) else {
        let known: Vec<_> = crate::LIBRARIES.iter().map(|l| l.name).collect();
        return Err(LuaError::runtime(format!(
            "No library named '@lune/{name}' - the libraries are {}",
            known.join(", ")
        )));
    };
    let table = (lib.module)(lua.clone())?;
    cache.borrow_mut().libraries.insert(lib.name, table.clone());
    Ok(table)
}

async fn run_module(lua: &Lua, file: &Path) -> LuaResult<LuaValue> {
    let source = std::fs::read(file).map_err(|e| {
        LuaError::runtime(format!("Failed to read module '{}': {e}", file.display()))
    })?;
    let chunk = lua
        .load(source)
        .set_name(format!("@{}", display_path(file)))
        .into_function()?;
    let values = chunk.call_async::<LuaMultiValue>(()).await?;
    Ok(values.into_iter().next().unwrap_or(LuaValue::Nil))
}

/// The file a chunk came from, from its `debug.info` source (`@path`).
fn caller_path(source: &str) -> PathBuf {
    let path = source.strip_prefix('@').unwrap_or(source);
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path))
    }
}

/// Shows a module path relative to the working directory when it is below it.
fn display_path(file: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| file.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| file.to_path_buf())
        .display()
        .to_string()
}

/// Resolves `path` as written in `require` from the module at `caller`.
pub(crate) fn resolve(caller: &Path, path: &str) -> Result<PathBuf, String> {
    let caller_dir = caller.parent().unwrap_or_else(|| Path::new("."));
    let base = if path.starts_with("./") || path.starts_with("../") {
        caller_dir.join(path)
    } else if let Some(rest) = path.strip_prefix("@self/") {
        caller_dir.join(rest)
    } else if let Some(aliased) = path.strip_prefix('@') {
        let (alias, rest) = aliased.split_once('/').unwrap_or((aliased, ""));
        let target = find_alias(caller_dir, alias)?;
        if rest.is_empty() {
            target
        } else {
            target.join(rest)
        }
    } else {
        return Err(format!(
            "Invalid require path '{path}' - paths must start with './', '../', '@self/', '@lune/' or an alias such as '@alias/'"
        ));
    };
    find_module_file(&base).ok_or_else(|| {
        format!(
            "Module not found: '{path}' (looked for {} with .luau, .lua, or an init file)",
            display_path(&base)
        )
    })
}

fn find_module_file(base: &Path) -> Option<PathBuf> {
    let name = base.file_name()?.to_string_lossy().into_owned();
    let candidates = [
        base.with_file_name(format!("{name}.luau")),
        base.with_file_name(format!("{name}.lua")),
        base.join("init.luau"),
        base.join("init.lua"),
        base.to_path_buf(),
    ];
    candidates
        .into_iter()
        .find(|c| c.is_file())
        .and_then(|c| c.canonicalize().ok())
}

/// Looks up `alias` in the nearest `.luaurc` above `dir` that defines it.
fn find_alias(dir: &Path, alias: &str) -> Result<PathBuf, String> {
    let mut current = Some(dir);
    while let Some(d) = current {
        let rc = d.join(".luaurc");
        if let Ok(text) = std::fs::read_to_string(&rc) {
            let config: serde_json::Value = serde_json::from_str(&lune_utils::jsonc::strip(&text))
                .map_err(|e| format!("Invalid .luaurc at '{}': {e}", rc.display()))?;
            if let Some(aliases) = config.get("aliases").and_then(|a| a.as_object()) {
                let found = aliases
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(alias))
                    .and_then(|(_, v)| v.as_str());
                if let Some(target) = found {
                    return Ok(d.join(target));
                }
            }
        }
        current = d.parent();
    }
    Err(format!(
        "Unknown require alias '@{alias}' - no .luaurc above '{}' defines it",
        display_path(dir)
    ))
}
