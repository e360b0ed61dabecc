//! `compress` in the serve config: responses compressed by the request's
//! `Accept-Encoding` (q-values honoured, the server's order breaking ties),
//! with `Vary: Accept-Encoding`; never when the handler set
//! `Content-Encoding`, for `HEAD`, 1xx, 204, 206 or 304, with
//! `Cache-Control: no-transform`, for types that are compressed already
//! (`image/*` but svg, `video/*`, `audio/*`, zip, gzip), nor for a complete
//! body under `minSize`. The encoding itself is `shared::encode`.

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use lune_std_serde::compression::CompressionFormat;
use mlua::prelude::*;

use super::response::HttpResponse;
use crate::shared::{body::OutBody, encode, options::Options};

/// Bodies smaller than this are sent as they are unless `minSize` says.
const DEFAULT_MIN_SIZE: usize = 1024;

/// How responses are compressed.
#[derive(Clone)]
pub(crate) struct Compress {
    min_size: usize,
    /// In the server's order of preference.
    encodings: Vec<CompressionFormat>,
}

impl Compress {
    /// `compress = true | { minSize = bytes, encodings = { "br", "zstd",
    /// "gzip" } }`; `None` when nil or false.
    pub(super) fn from_options(fields: &Options<'_>) -> LuaResult<Option<Self>> {
        let defaults = Self {
            min_size: DEFAULT_MIN_SIZE,
            encodings: vec![
                CompressionFormat::Brotli,
                CompressionFormat::Zstd,
                CompressionFormat::Gzip,
            ],
        };
        let table = match fields.raw("compress")? {
            LuaValue::Nil | LuaValue::Boolean(false) => return Ok(None),
            LuaValue::Boolean(true) => return Ok(Some(defaults)),
            LuaValue::Table(table) => table,
            other => {
                return Err(LuaError::runtime(format!(
                    "Invalid 'compress' - expected true or a table {{ minSize?, encodings? }}, got {}",
                    crate::shared::options::describe(&other)
                )));
            }
        };
        let options = Options::new(&table);
        let mut config = defaults;
        if let Some(size) = options.whole("minSize", 0, u64::from(u32::MAX))? {
            config.min_size = usize::try_from(size).unwrap_or(usize::MAX);
        }
        let names = options.strings("encodings")?;
        if !names.is_empty() {
            config.encodings = names
                .iter()
                .map(|name| match name.as_str() {
                    "br" => Ok(CompressionFormat::Brotli),
                    "zstd" => Ok(CompressionFormat::Zstd),
                    "gzip" => Ok(CompressionFormat::Gzip),
                    "deflate" => Ok(CompressionFormat::Zlib),
                    other => Err(LuaError::runtime(format!(
                        "Invalid 'compress.encodings' - expected 'br', 'zstd', 'gzip' or 'deflate', got '{other}'"
                    ))),
                })
                .collect::<LuaResult<_>>()?;
        }
        Ok(Some(config))
    }

    /// What a request with `method` and `headers` takes: `None` for
    /// `HEAD`, else the encoding its `Accept-Encoding` prefers, if any.
    pub(super) fn wanted(&self, method: &Method, headers: &HeaderMap) -> Wanted {
        if method == Method::HEAD {
            return Wanted::Nothing;
        }
        let accept = headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        Wanted::Varies(choose(&accept, &self.encodings))
    }

    /// `response` to a request that wants `wanted`, compressed when the
    /// rules above allow.
    pub(super) fn apply(
        &self,
        lua: &Lua,
        wanted: Wanted,
        mut response: HttpResponse,
    ) -> HttpResponse {
        let Wanted::Varies(format) = wanted else {
            return response;
        };
        if !eligible(&response) {
            return response;
        }
        let map = response.headers_mut();
        map.append(header::VARY, HeaderValue::from_static("accept-encoding"));
        let Some(format) = format else {
            return response;
        };
        if let OutBody::Bytes(bytes) = response.body()
            && bytes.as_ref().map_or(0, bytes::Bytes::len) < self.min_size
        {
            return response;
        }
        let (mut parts, body) = response.into_parts();
        parts.headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(format.header_name()),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        // The compressed body is another representation: a strong
        // validator of the plain one does not apply to it.
        if let Some(tag) = parts.headers.get(header::ETAG)
            && !tag.as_bytes().starts_with(b"W/")
            && let Ok(weak) = HeaderValue::from_bytes(&[b"W/", tag.as_bytes()].concat())
        {
            parts.headers.insert(header::ETAG, weak);
        }
        HttpResponse::from_parts(parts, encode::encode(lua, body, format))
    }
}

/// What compression a request allows.
#[derive(Clone, Copy)]
pub(super) enum Wanted {
    /// Its response is never compressed (`HEAD`).
    Nothing,
    /// Its response depends on `Accept-Encoding`: this encoding, or none.
    Varies(Option<CompressionFormat>),
}

/// Whether a response may be compressed at all (whatever the client takes).
fn eligible(response: &HttpResponse) -> bool {
    let status = response.status();
    if status.is_informational()
        || matches!(
            status,
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED | StatusCode::PARTIAL_CONTENT
        )
    {
        return false;
    }
    let headers = response.headers();
    if headers.contains_key(header::CONTENT_ENCODING) {
        return false;
    }
    let no_transform = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("no-transform"));
    if no_transform {
        return false;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let compressed_already = (content_type.starts_with("image/")
        && content_type != "image/svg+xml")
        || content_type.starts_with("video/")
        || content_type.starts_with("audio/")
        || matches!(
            content_type.as_str(),
            "application/zip" | "application/gzip" | "application/x-gzip"
        );
    !compressed_already
}

/// The encoding to use for `accept` (an `Accept-Encoding` value): the one
/// of `offered` the client gives the highest q-value (above 0), the
/// server's order breaking ties; `*` stands for encodings not named. None
/// when the client takes none of them (the body then goes as it is).
fn choose(accept: &str, offered: &[CompressionFormat]) -> Option<CompressionFormat> {
    let mut named: Vec<(String, f32)> = Vec::new();
    for entry in accept.split(',') {
        let mut parts = entry.split(';');
        let name = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        let mut q = Some(1.0);
        for param in parts {
            if let Some((key, value)) = param.split_once('=')
                && key.trim().eq_ignore_ascii_case("q")
            {
                q = value
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q));
            }
        }
        // An entry whose q-value does not parse is ignored.
        if let Some(q) = q {
            let name = if name == "x-gzip" {
                "gzip".to_string()
            } else {
                name
            };
            named.push((name, q));
        }
    }
    let q_of = |format: CompressionFormat| {
        let name = format.header_name();
        named
            .iter()
            .find(|(n, _)| n == name)
            .or_else(|| named.iter().find(|(n, _)| n == "*"))
            .map_or(0.0, |(_, q)| *q)
    };
    let mut best: Option<(CompressionFormat, f32)> = None;
    for &format in offered {
        let q = q_of(format);
        if q > 0.0 && best.is_none_or(|(_, top)| q > top) {
            best = Some((format, q));
        }
    }
    best.map(|(format, _)| format)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[CompressionFormat] = &[
        CompressionFormat::Brotli,
        CompressionFormat::Zstd,
        CompressionFormat::Gzip,
    ];

    #[test]
    fn q_values_choose_the_encoding() {
        assert_eq!(choose("gzip", ALL), Some(CompressionFormat::Gzip));
        assert_eq!(choose("gzip, br", ALL), Some(CompressionFormat::Brotli));
        assert_eq!(
            choose("br;q=0.5, gzip;q=0.9", ALL),
            Some(CompressionFormat::Gzip)
        );
        assert_eq!(choose("zstd;q=0, gzip", ALL), Some(CompressionFormat::Gzip));
        assert_eq!(
            choose("*;q=0.1, br;q=0", ALL),
            Some(CompressionFormat::Zstd)
        );
        assert_eq!(choose("identity", ALL), None);
        assert_eq!(choose("identity;q=0", ALL), None);
        assert_eq!(choose("", ALL), None);
        assert_eq!(choose("gzip;q=bogus", ALL), None);
        assert_eq!(choose("X-GZIP", ALL), Some(CompressionFormat::Gzip));
    }
}
