//! The HTTP client behind `net.request`: pooled connections, HTTP/2 by ALPN,
//! redirects, timeouts, proxies and response decompression.

pub(crate) mod config;
pub(crate) mod connect;
mod error;
pub(crate) mod fetch;
mod pool;
pub(crate) use pool::Lease;
mod proxy;
pub(crate) mod redirect;
pub(crate) mod sse;
pub(crate) mod tcp;
pub(crate) mod tls;
pub(crate) mod ws;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Version, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use mlua::Lua;
use url::Url;

pub(crate) use self::error::RequestError;
use self::{
    config::{RequestConfig, RequestOptions},
    pool::{Liveness, Origin, Pool, Sender},
};
use crate::shared::{
    body::{BodySource, OutBody},
    decode::{self, DecodeError},
    framing,
    reader::BodyReader,
};

/// The default `User-Agent` of requests made from Luau: `lune/` and the
/// second word of `_VERSION` as it reads when the request is made, whenever
/// the host runtime set it. Read with `get`, not `raw_get`: Lune sandboxes
/// its state, after which the globals table reaches `_VERSION` only through
/// `__index`. Without a usable `_VERSION`, the same as [`default_user_agent`].
pub(crate) fn user_agent(lua: &Lua) -> HeaderValue {
    let version: Option<String> = lua.globals().get("_VERSION").ok();
    version
        .as_deref()
        .and_then(|v| v.split_whitespace().nth(1))
        .and_then(|word| HeaderValue::from_str(&format!("lune/{word}")).ok())
        .unwrap_or_else(default_user_agent)
}

/// The default `User-Agent` where there is no Luau state (`fetch`):
/// `lune/<this crate's version>`.
pub(crate) fn default_user_agent() -> HeaderValue {
    HeaderValue::from_static(concat!("lune/", env!("CARGO_PKG_VERSION")))
}

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

/// The client: one pool per Luau state.
pub(crate) struct Client {
    pool: Pool,
}

impl Client {
    pub(crate) fn new() -> Self {
        Self { pool: Pool::new() }
    }

    /// Sends the request, following redirects, within the timeout if set.
    pub(crate) async fn request(
        &self,
        config: RequestConfig,
    ) -> Result<ClientResponse, RequestError> {
        match config.options.timeout {
            Some(limit) => {
                futures_lite::future::or(self.request_inner(config), async move {
                    async_io::Timer::after(limit).await;
                    Err(RequestError::Timeout(limit))
                })
                .await
            }
            None => self.request_inner(config).await,
        }
    }

    async fn request_inner(&self, config: RequestConfig) -> Result<ClientResponse, RequestError> {
        let RequestConfig {
            url,
            mut method,
            query,
            mut headers,
            mut body,
            options,
            lua,
            caller,
            user_agent,
        } = config;
        let mut url = crate::url::parse(&url, &["http", "https"]).map_err(RequestError::Url)?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &query {
                pairs.append_pair(k, v);
            }
        }
        // The default User-Agent goes out unless the script set its own; a
        // proxy's CONNECT carries the same one.
        if !headers.iter().any(|(name, _)| name == header::USER_AGENT) {
            headers.push((header::USER_AGENT, user_agent));
        }
        let mut redirects = 0;
        loop {
            let exchange = Exchange {
                url: &url,
                method: &method,
                headers: &headers,
                body: &body,
                lua: lua.as_ref(),
                options: &options,
                caller: &caller,
            };
            let exchanged = self.exchange(exchange).await?;
            let policy = redirect::Policy {
                follow: options.follow_redirects,
                max: options.max_redirects,
            };
            let location = exchanged.parts.headers.get(header::LOCATION);
            if let Some(hop) =
                redirect::next_hop(policy, redirects, &url, exchanged.parts.status, location)
                    .map_err(RequestError::Redirect)?
            {
                if !hop.to_get && body.is_stream() {
                    return Err(RequestError::StreamRedirect {
                        url: url.to_string(),
                        status: exchanged.parts.status.as_u16(),
                    });
                }
                // The redirect's own body is read so its connection is reused.
                if let Ok(Ok(_)) = read_whole(exchanged.incoming, REDIRECT_BODY_LIMIT).await
                    && let Some(lease) = exchanged.lease
                {
                    lease.release();
                }
                redirects += 1;
                let mut next_body = Some(body);
                redirect::apply(&hop, &mut method, &mut next_body, &mut headers);
                body = next_body.unwrap_or(BodySource::Empty);
                url = hop.url;
                continue;
            }
            return finish(exchanged, url, &options).await;
        }
    }

    /// One request/response exchange, up to the response head. When a
    /// reused keep-alive connection turns out to be closed, the request goes
    /// out again on another connection: always if it was never sent, and for
    /// idempotent methods if the connection closed before the response; a
    /// streamed body is never sent twice.
    async fn exchange(&self, exchange: Exchange<'_>) -> Result<Exchanged, RequestError> {
        let Exchange {
            url,
            method,
            headers,
            body,
            lua,
            options,
            caller,
        } = exchange;
        let origin = Origin {
            https: url.scheme() == "https",
            host: url.host_str().unwrap_or_default().to_string(),
            port: url.port_or_known_default().unwrap_or(80),
            proxy: proxy::for_url(url).map_err(RequestError::Proxy)?,
        };
        let (headers, declared) = framing::take_declared_length(headers.to_vec(), body.is_stream())
            .map_err(|e| RequestError::Url(e.to_string()))?;
        let user_agent = headers
            .iter()
            .find_map(|(name, value)| (name == header::USER_AGENT).then_some(value));
        loop {
            let checkout = self
                .pool
                .checkout(&origin, caller, user_agent)
                .await
                .map_err(RequestError::Connect)?;
            let reused = checkout.reused;
            let is_h2 = matches!(checkout.sender, Sender::H2(_));
            let out = body.clone().into_body(lua, declared, "request body", false);
            let request = build_request(
                url,
                &origin,
                is_h2,
                method,
                &headers,
                out,
                options.decompress,
            )
            .map_err(RequestError::Url)?;
            let (result, h1) = match checkout.sender {
                Sender::H1(mut sender) => (sender.send_request(request).await, Some(sender)),
                Sender::H2(mut sender) => (sender.send_request(request).await, None),
            };
            let response = match result {
                Ok(response) => response,
                Err(e)
                    if reused
                        && !body.is_stream()
                        && (e.is_canceled()
                            || (method.is_idempotent()
                                && (e.is_incomplete_message() || e.is_closed()))) =>
                {
                    continue;
                }
                Err(e) => return Err(RequestError::from_hyper(url, e)),
            };
            let (parts, incoming) = response.into_parts();
            return Ok(Exchanged {
                parts,
                incoming,
                lease: h1.map(|sender| self.pool.lease(origin, sender)),
            });
        }
    }
}

/// What one exchange sends.
struct Exchange<'a> {
    url: &'a Url,
    method: &'a Method,
    headers: &'a [(HeaderName, HeaderValue)],
    body: &'a BodySource,
    lua: Option<&'a Lua>,
    options: &'a RequestOptions,
    caller: &'a Liveness,
}

/// A response head, its body still to read, and its connection.
struct Exchanged {
    parts: http::response::Parts,
    incoming: Incoming,
    lease: Option<Lease>,
}

/// The most of a redirect's own body that is read to reuse its connection.
const REDIRECT_BODY_LIMIT: usize = 64 * 1024;

/// Reads a whole body of at most `limit` bytes: `Ok(Err(limit))` past it.
async fn read_whole(
    incoming: Incoming,
    limit: usize,
) -> Result<Result<Bytes, usize>, Box<dyn std::error::Error + Send + Sync>> {
    match Limited::new(incoming, limit).collect().await {
        Ok(collected) => Ok(Ok(collected.to_bytes())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Ok(Err(limit)),
        Err(e) => Err(e),
    }
}

/// The request as it goes on the wire: origin-form for HTTP/1.1, absolute
/// form through a plain proxy and for HTTP/2, with default headers added
/// where the script did not set them (`User-Agent` is already in `headers`).
fn build_request(
    url: &Url,
    origin: &Origin,
    is_h2: bool,
    method: &Method,
    headers: &[(HeaderName, HeaderValue)],
    body: OutBody,
    decompress: bool,
) -> Result<Request<OutBody>, String> {
    let absolute = is_h2 || (origin.proxy.is_some() && !origin.https);
    let target = if absolute {
        let mut full = url.clone();
        full.set_fragment(None);
        full.to_string()
    } else {
        let mut path = url.path().to_string();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        path
    };
    let mut request = Request::builder()
        .method(method.clone())
        .uri(&target)
        .body(body)
        .map_err(|e| format!("Invalid request to '{url}': {e}"))?;
    let map = request.headers_mut();
    // Framing headers were taken out (`shared::framing`): hyper frames the body.
    for (name, value) in headers {
        map.append(name.clone(), value.clone());
    }
    if !is_h2 && !map.contains_key(header::HOST) {
        let host = match url.port() {
            Some(port) => format!("{}:{port}", origin.host),
            None => origin.host.clone(),
        };
        let value =
            HeaderValue::from_str(&host).map_err(|e| format!("Invalid host '{host}': {e}"))?;
        map.insert(header::HOST, value);
    }
    if is_h2 {
        map.remove(header::HOST);
    }
    if !map.contains_key(header::ACCEPT) {
        map.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
    }
    if decompress && !map.contains_key(header::ACCEPT_ENCODING) {
        map.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate, br, zstd"),
        );
    }
    Ok(request)
}

/// The response as the script gets it: the body read whole and decompressed
/// within `options.maxBodySize`, or, with `options.stream`, a reader that
/// does that as the bytes arrive.
async fn finish(
    exchanged: Exchanged,
    url: Url,
    options: &RequestOptions,
) -> Result<ClientResponse, RequestError> {
    let Exchanged {
        parts,
        incoming,
        lease,
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
        let reader = BodyReader::new(incoming, format, options.max_body_size, lease, &url)
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
        let received = read_whole(incoming, limit)
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

#[cfg(test)]
mod tests {
    use mlua::Lua;

    use super::{default_user_agent, user_agent};

    #[test]
    fn user_agent_follows_version_when_read() {
        let lua = Lua::new();
        lua.globals()
            .set("_VERSION", "Lune 1.2.3+740")
            .expect("set");
        assert_eq!(user_agent(&lua), "lune/1.2.3+740");
        lua.globals()
            .set("_VERSION", "Lune 4.5.6+740")
            .expect("set");
        assert_eq!(user_agent(&lua), "lune/4.5.6+740", "read per request");
        lua.globals().set("_VERSION", "Luau").expect("set");
        assert_eq!(user_agent(&lua), default_user_agent(), "no second word");
    }

    #[test]
    fn user_agent_reads_version_through_a_sandboxed_globals_table() {
        // Lune sets _VERSION, then sandboxes: the globals table a script and
        // a library see is a proxy that reaches it only through __index.
        let lua = Lua::new();
        lua.globals()
            .set("_VERSION", "Lune 0.11.1+740")
            .expect("set");
        lua.sandbox(true).expect("sandbox");
        assert_eq!(user_agent(&lua), "lune/0.11.1+740");
    }
}
