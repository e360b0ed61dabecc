//! The response `net.request` returns: its body read whole (decompressed within
//! `options.maxBodySize`) or as a `BodyReader` (`options.stream`).

use std::rc::Rc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, Version, header};
use hyper::body::Incoming;
use mlua::prelude::*;
use url::Url;

use super::{RequestError, config::RequestOptions, pool::Lease};
use crate::{
    rt::ConnTasks,
    shared::{
        decode,
        reader::{BodyName, BodyReader, IncomingBody, OnEnd},
        stack,
    },
};

/// A response as `net.request` returns it.
pub(crate) struct ClientResponse {
    pub(super) status: StatusCode,
    pub(super) version: Version,
    pub(super) headers: HeaderMap,
    pub(super) body: ResponseBody,
    pub(super) url: Url,
}

/// A response body: read whole, or a reader (`options.stream`).
pub(crate) enum ResponseBody {
    Full(Bytes),
    Stream(BodyReader),
}

/// A response head, its body still to read, and its connection (the
/// tasks that deliver the body; the lease for HTTP/1.1).
pub(super) struct Exchanged {
    pub(super) parts: http::response::Parts,
    pub(super) incoming: Incoming,
    pub(super) lease: Option<Lease>,
    pub(super) tasks: Rc<ConnTasks>,
}

/// The most of a redirect's own body that is read to reuse its connection.
const REDIRECT_BODY_LIMIT: usize = 64 * 1024;

impl Exchanged {
    /// Reads and drops the body of a response that is not the script's (a
    /// redirect), so that its connection is reused when the body is small.
    pub(super) async fn discard_body(self) {
        let body = IncomingBody::new(
            self.incoming,
            Some(self.tasks),
            None,
            Some(REDIRECT_BODY_LIMIT),
            None,
            BodyName::plain("redirect body"),
        );
        // Unread, too large or broken: the connection is not reused.
        if let Ok(mut body) = body
            && body.read_to_end().await.is_ok()
            && let Some(lease) = self.lease
        {
            lease.release();
        }
    }
}

/// The response as the script gets it: the body read whole and decompressed
/// within `options.maxBodySize`, or, with `options.stream`, a reader that
/// does that as the bytes arrive.
pub(super) async fn finish(
    exchanged: Exchanged,
    url: Url,
    options: &RequestOptions,
) -> Result<ClientResponse, RequestError> {
    let Exchanged {
        parts,
        incoming,
        lease,
        tasks,
    } = exchanged;
    let mut headers = parts.headers;
    let format = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .and_then(decode::format_of)
        .filter(|_| options.decompress);
    if format.is_some() {
        headers.remove(header::CONTENT_ENCODING);
        headers.remove(header::CONTENT_LENGTH);
    }
    let mut reading = IncomingBody::new(
        incoming,
        Some(tasks),
        format,
        options.max_body_size,
        None,
        BodyName::response(&url),
    )
    .map_err(RequestError::Body)?;
    let body = if options.stream {
        let on_end = lease.map(|lease| -> OnEnd {
            Box::new(move |ended| {
                // A broken body leaves its connection unusable: dropped.
                if ended.is_ok() {
                    lease.release();
                }
            })
        });
        ResponseBody::Stream(BodyReader::new(reading, on_end))
    } else {
        let bytes = reading.read_to_end().await.map_err(RequestError::Body)?;
        if let Some(lease) = lease {
            lease.release();
        }
        ResponseBody::Full(bytes)
    };
    Ok(ClientResponse {
        status: parts.status,
        version: parts.version,
        headers,
        body,
        url,
    })
}

/// `"HTTP/1.1"`, `"HTTP/2"`, ...: the response's `version` field.
pub(super) fn version_name(version: Version) -> &'static str {
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
        // Built on the Luau stack: this runs for every response.
        let table = stack::build(lua, 7, |table| {
            table.boolean(c"ok", self.status.is_success());
            table.number(c"statusCode", f64::from(self.status.as_u16()));
            let reason = self.status.canonical_reason().unwrap_or_default();
            table.string(c"statusMessage", reason.as_bytes());
            table.headers(c"headers", &self.headers);
            if let ResponseBody::Full(bytes) = &self.body {
                table.string(c"body", bytes);
            }
            table.string(c"version", version_name(self.version).as_bytes());
            table.string(c"url", self.url.as_str().as_bytes());
        })?;
        if let ResponseBody::Stream(reader) = self.body {
            table.raw_set("body", lua.create_userdata(reader)?)?;
        }
        Ok(LuaValue::Table(table))
    }
}
