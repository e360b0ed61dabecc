//! The response `net.request` returns: its body read whole (decompressed within
//! `options.maxBodySize`) or as a `BodyReader` (`options.stream`).

use std::rc::Rc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, Version, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use mlua::prelude::*;
use url::Url;

use super::{RequestError, config::RequestOptions, pool::Lease};
use crate::{
    rt::ConnTasks,
    shared::{
        decode::{self, DecodeError},
        headers::write_headers,
        reader::BodyReader,
    },
};

/// A response as `net.request` returns it.
pub(crate) struct ClientResponse {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) body: ResponseBody,
    pub(crate) url: Url,
}

/// A response body: read whole, or a reader (`options.stream`).
pub(crate) enum ResponseBody {
    Full(Bytes),
    Stream(BodyReader),
}

/// A response head, its body still to read, and its connection (the
/// tasks that deliver the body; the lease for HTTP/1.1).
pub(crate) struct Exchanged {
    pub(crate) parts: http::response::Parts,
    pub(crate) incoming: Incoming,
    pub(crate) lease: Option<Lease>,
    pub(crate) tasks: Rc<ConnTasks>,
}

/// Reads a whole body of at most `limit` bytes: `Ok(Err(limit))` past it.
pub(crate) async fn read_whole(
    incoming: Incoming,
    tasks: &ConnTasks,
    limit: usize,
) -> Result<Result<Bytes, usize>, Box<dyn std::error::Error + Send + Sync>> {
    match tasks.drive(Limited::new(incoming, limit).collect()).await {
        Ok(collected) => Ok(Ok(collected.to_bytes())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Ok(Err(limit)),
        Err(e) => Err(e),
    }
}

/// The response as the script gets it: the body read whole and decompressed
/// within `options.maxBodySize`, or, with `options.stream`, a reader that
/// does that as the bytes arrive.
pub(crate) async fn finish(
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
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let format = encoding
        .as_deref()
        .and_then(decode::format_of)
        .filter(|_| options.decompress);
    if format.is_some() {
        headers.remove(header::CONTENT_ENCODING);
        headers.remove(header::CONTENT_LENGTH);
    }
    let body = if options.stream {
        let reader = BodyReader::new(incoming, tasks, format, options.max_body_size, lease, &url)
            .map_err(|source| RequestError::Decompress {
            encoding: encoding.clone().unwrap_or_default(),
            source,
        })?;
        ResponseBody::Stream(reader)
    } else {
        // Without decompression the received bytes are the body and the limit
        // applies to them; compressed bodies are held to it as received too.
        let limit = options.max_body_size.unwrap_or(usize::MAX);
        let too_large = |limit| RequestError::TooLarge {
            limit,
            url: url.to_string(),
        };
        let received = read_whole(incoming, &tasks, limit)
            .await
            .map_err(|source| RequestError::Body {
                url: url.to_string(),
                source,
            })?
            .map_err(too_large)?;
        if let Some(lease) = lease {
            lease.release();
        }
        match (format, encoding) {
            (Some(format), Some(encoding)) if !received.is_empty() => ResponseBody::Full(
                decode::decode(format, received, options.max_body_size)
                    .await
                    .map_err(|e| match e {
                        DecodeError::TooLarge { limit } => too_large(limit),
                        DecodeError::Invalid(source) => {
                            RequestError::Decompress { encoding, source }
                        }
                    })?,
            ),
            _ => ResponseBody::Full(received),
        }
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
