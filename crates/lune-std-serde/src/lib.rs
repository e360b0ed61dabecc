//! `@lune/serde`: encode and decode JSON, JSONC, TOML and YAML; compress and
//! decompress with brotli, gzip, lz4, zlib and zstd. The codecs are public
//! in [`compression`] for the net library's body decompression.

use lune_utils::TableBuilder;
use mlua::prelude::*;

pub mod compression;
mod encoding;

use compression::CompressionFormat;

/// Inputs this large are (de)compressed off the Luau thread.
const BLOCKING_THRESHOLD: usize = 64 * 1024;

/// Builds the `@lune/serde` table.
pub fn module(lua: Lua) -> LuaResult<LuaTable> {
    TableBuilder::new(lua)?
        .with_function("encode", encoding::encode)?
        .with_function("decode", encoding::decode)?
        .with_async_function("compress", compress)?
        .with_async_function("decompress", decompress)?
        .build_readonly()
}

/// The `@lune/serde` type definitions.
#[must_use]
pub fn typedefs() -> String {
    include_str!("../types.d.luau").to_string()
}

fn compression_format(name: &str) -> LuaResult<CompressionFormat> {
    match name {
        "brotli" => Ok(CompressionFormat::Brotli),
        "gzip" => Ok(CompressionFormat::Gzip),
        "lz4" => Ok(CompressionFormat::Lz4),
        "zlib" => Ok(CompressionFormat::Zlib),
        "zstd" => Ok(CompressionFormat::Zstd),
        other => Err(LuaError::runtime(format!(
            "Invalid compression format '{other}' - expected one of brotli, gzip, lz4, zlib, zstd"
        ))),
    }
}

fn input_bytes(value: &LuaValue, what: &str) -> LuaResult<Vec<u8>> {
    match value {
        LuaValue::String(s) => Ok(s.as_bytes().to_vec()),
        LuaValue::Buffer(b) => Ok(b.to_vec()),
        other => Err(LuaError::runtime(format!(
            "Invalid {what} input - expected a string or buffer, got {}",
            lune_utils::type_name(other)
        ))),
    }
}

/// Runs `work` on the blocking pool when the input is large.
async fn run_codec(
    data: Vec<u8>,
    work: impl FnOnce(&[u8]) -> std::io::Result<Vec<u8>> + Send + 'static,
) -> std::io::Result<Vec<u8>> {
    if data.len() >= BLOCKING_THRESHOLD {
        blocking::unblock(move || work(&data)).await
    } else {
        work(&data)
    }
}

async fn compress(
    lua: Lua,
    (format, data, level): (String, LuaValue, Option<i32>),
) -> LuaResult<LuaString> {
    let format = compression_format(&format)?;
    let data = input_bytes(&data, "compress")?;
    let packed = run_codec(data, move |d| compression::compress(format, d, level))
        .await
        .map_err(|e| LuaError::runtime(format!("Failed to compress as {format:?}: {e}")))?;
    lua.create_string(packed)
}

async fn decompress(lua: Lua, (format, data): (String, LuaValue)) -> LuaResult<LuaString> {
    let format = compression_format(&format)?;
    let data = input_bytes(&data, "decompress")?;
    let unpacked = run_codec(data, move |d| compression::decompress(format, d))
        .await
        .map_err(|e| {
            LuaError::runtime(format!(
                "Failed to decompress {format:?} data - it is not valid {format:?} ({e})"
            ))
        })?;
    lua.create_string(unpacked)
}
