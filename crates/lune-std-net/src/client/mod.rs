//! The HTTP client behind `net.request`: pooled connections, HTTP/2 by ALPN,
//! redirects, timeouts, proxies and response decompression.

pub(crate) mod config;
pub(crate) mod connect;
mod error;
mod pool;
mod proxy;
mod redirect;
pub(crate) mod tcp;
pub(crate) mod tls;
pub(crate) mod ws;

use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Version, header};
use http_body_util::{BodyExt, Full, Limited};
use mlua::Lua;
use url::Url;

pub(crate) use self::error::RequestError;
use self::{
    config::{RequestConfig, RequestOptions},
    pool::{Liveness, Origin, Pool, Sender},
};
use crate::shared::decode::{self, DecodeError};

static USER_AGENT: OnceLock<String> = OnceLock::new();

/// Sets the default `User-Agent` to `lune/<version>`, where `<version>` is
/// the second word of `_VERSION` as the runtime set it.
pub(crate) fn init_user_agent(lua: &Lua) {
    USER_AGENT.get_or_init(|| {
        let version: String = lua.globals().raw_get("_VERSION").unwrap_or_default();
        let word = version.split_whitespace().nth(1).unwrap_or("unknown");
        format!("lune/{word}")
    });
}

/// The default `User-Agent`.
pub(crate) fn user_agent() -> &'static str {
    USER_AGENT.get().map_or("lune", String::as_str)
}

/// A response as `net.request` returns it.
pub(crate) struct ClientResponse {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) url: Url,
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
            caller,
        } = config;
        let mut url = crate::url::parse(&url, &["http", "https"]).map_err(RequestError::Url)?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &query {
                pairs.append_pair(k, v);
            }
        }
        let mut redirects = 0;
        loop {
            let (parts, raw_body) = self
                .exchange(&url, &method, &headers, body.clone(), &options, &caller)
                .await?;
            let policy = redirect::Policy {
                follow: options.follow_redirects,
                max: options.max_redirects,
            };
            let location = parts.headers.get(header::LOCATION);
            if let Some(hop) = redirect::next_hop(policy, redirects, &url, parts.status, location)
                .map_err(RequestError::Redirect)?
            {
                redirects += 1;
                redirect::apply(&hop, &mut method, &mut body, &mut headers);
                url = hop.url;
                continue;
            }
            return finish(parts, raw_body, url, &options).await;
        }
    }

    /// One request/response exchange with the whole body read. When a reused
    /// keep-alive connection turns out to be closed, the request goes out
    /// again on another connection: always if it was never sent, and for
    /// idempotent methods if the connection closed before the response.
    async fn exchange(
        &self,
        url: &Url,
        method: &Method,
        headers: &[(HeaderName, HeaderValue)],
        body: Option<Bytes>,
        options: &RequestOptions,
        caller: &Liveness,
    ) -> Result<(http::response::Parts, Bytes), RequestError> {
        let https = url.scheme() == "https";
        if https && options.unix_socket.is_some() {
            return Err(RequestError::Url(format!(
                "Cannot request '{url}' over a Unix socket - https is not supported there, use http"
            )));
        }
        let origin = Origin {
            https,
            host: url.host_str().unwrap_or_default().to_string(),
            port: url.port_or_known_default().unwrap_or(80),
            // A Unix socket is the way to the server: no proxy in between.
            proxy: match options.unix_socket {
                Some(_) => None,
                None => proxy::for_url(url).map_err(RequestError::Proxy)?,
            },
            unix: options.unix_socket.clone(),
        };
        let http_error = |source| RequestError::Http {
            url: url.to_string(),
            source,
        };
        loop {
            let checkout = self
                .pool
                .checkout(&origin, caller)
                .await
                .map_err(RequestError::Connect)?;
            let reused = checkout.reused;
            let is_h2 = matches!(checkout.sender, Sender::H2(_));
            let request = build_request(
                url,
                &origin,
                is_h2,
                method,
                headers,
                body.clone(),
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
                        && (e.is_canceled()
                            || (method.is_idempotent()
                                && (e.is_incomplete_message() || e.is_closed()))) =>
                {
                    continue;
                }
                Err(e) => return Err(http_error(e)),
            };
            let (parts, incoming) = response.into_parts();
            // Without decompression the received bytes are the body, and the
            // limit applies to them; compressed bodies are bounded when
            // decoded (and as received, by the same limit: no encoding we
            // decode makes data larger).
            let limit = options.max_body_size.unwrap_or(usize::MAX);
            let bytes = match Limited::new(incoming, limit).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                    return Err(RequestError::TooLarge {
                        limit,
                        url: url.to_string(),
                    });
                }
                Err(e) => {
                    return Err(RequestError::Body {
                        url: url.to_string(),
                        source: e,
                    });
                }
            };
            if let Some(sender) = h1 {
                self.pool.checkin(origin, sender);
            }
            return Ok((parts, bytes));
        }
    }
}

/// The request as it goes on the wire: origin-form for HTTP/1.1, absolute
/// form through a plain proxy and for HTTP/2, with default headers added
/// where the script did not set them.
fn build_request(
    url: &Url,
    origin: &Origin,
    is_h2: bool,
    method: &Method,
    headers: &[(HeaderName, HeaderValue)],
    body: Option<Bytes>,
    decompress: bool,
) -> Result<Request<Full<Bytes>>, String> {
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
        .body(Full::new(body.unwrap_or_default()))
        .map_err(|e| format!("Invalid request to '{url}': {e}"))?;
    let map = request.headers_mut();
    for (name, value) in headers {
        // hyper frames the body itself; a script's own framing headers could
        // only contradict it.
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            map.append(name.clone(), value.clone());
        }
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
    if !map.contains_key(header::USER_AGENT) {
        map.insert(header::USER_AGENT, HeaderValue::from_static(user_agent()));
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

/// Decompresses the body when asked and it is encoded in a known format,
/// within `options.maxBodySize`.
async fn finish(
    parts: http::response::Parts,
    body: Bytes,
    url: Url,
    options: &RequestOptions,
) -> Result<ClientResponse, RequestError> {
    let mut headers = parts.headers;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let format = encoding.as_deref().and_then(decode::format_of);
    let body = match (options.decompress, format, encoding) {
        (true, Some(format), Some(encoding)) if !body.is_empty() => {
            let decoded = decode::decode(format, body, options.max_body_size)
                .await
                .map_err(|e| match e {
                    DecodeError::TooLarge { limit } => RequestError::TooLarge {
                        limit,
                        url: url.to_string(),
                    },
                    DecodeError::Invalid(source) => RequestError::Decompress { encoding, source },
                })?;
            headers.remove(header::CONTENT_ENCODING);
            headers.remove(header::CONTENT_LENGTH);
            decoded
        }
        _ => body,
    };
    Ok(ClientResponse {
        status: parts.status,
        version: parts.version,
        headers,
        body,
        url,
    })
}
