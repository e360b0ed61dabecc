//! The table `net.request` returns.

use http::Version;
use mlua::prelude::*;

use super::headers::write_headers;
use crate::client::{ClientResponse, ResponseBody};

/// `"HTTP/1.1"`, `"HTTP/2"`, ...: the response's `version` field.
pub(crate) fn version_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

impl IntoLua for ClientResponse {
    fn into_lua(self, lua: &Lua) -> LuaResult<LuaValue> {
        let table = lua.create_table_with_capacity(0, 7)?;
        table.raw_set("ok", self.status.is_success())?;
        table.raw_set("statusCode", self.status.as_u16())?;
        table.raw_set(
            "statusMessage",
            self.status.canonical_reason().unwrap_or_default(),
        )?;
        table.raw_set("headers", write_headers(lua, &self.headers)?)?;
        match self.body {
            ResponseBody::Full(bytes) => table.raw_set("body", lua.create_string(&bytes)?)?,
            ResponseBody::Stream(reader) => table.raw_set("body", lua.create_userdata(reader)?)?,
        }
        table.raw_set("version", version_name(self.version))?;
        table.raw_set("url", self.url.as_str())?;
        Ok(LuaValue::Table(table))
    }
}
