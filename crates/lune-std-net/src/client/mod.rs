//! The HTTP client behind `net.request`. This file is the exchange loop
//! (pool checkout, safe retries, redirects, the timeout); the request on the
//! wire is built in `request.rs`, responses are read in `response.rs`, errors
//! live in `error.rs`, redirect rules in `redirect.rs`, connections in
//! `pool.rs` (sockets from `rt::connect`).

pub(super) mod config;
pub(crate) mod error;
pub(super) mod fetch;
mod pool;
mod proxy;
pub(super) mod redirect;
mod request;
mod response;
pub(super) mod sse;
pub(super) mod tcp;
pub(super) mod ws;

use http::{HeaderName, HeaderValue, Method, header};
use mlua::Lua;
use url::Url;

use self::{
    config::{RequestConfig, RequestOptions},
    pool::{Liveness, Origin, Pool, Sender},
    request::build_request,
    response::{Exchanged, finish},
};
use self::{
    error::RequestError,
    request::{default_user_agent, user_agent},
    response::{ClientResponse, ResponseBody},
};
use crate::shared::{body::BodySource, framing};

/// The client: one pool per Luau state.
pub(super) struct Client {
    pool: Pool,
}

impl Client {
    pub(super) fn new() -> Self {
        Self { pool: Pool::new() }
    }

    /// Sends the request, following redirects, within the timeout if set.
    pub(super) async fn request(
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
                exchanged.discard_body().await;
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
        let origin = origin_of(url, options)?;
        let (headers, declared) = framing::take_declared_length(headers.to_vec(), body.is_stream())
            .map_err(|e| RequestError::InvalidRequest(e.to_string()))?;
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
            let alert = checkout.alert;
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
            .map_err(RequestError::InvalidRequest)?;
            let tasks = checkout.tasks;
            let (result, h1) = match checkout.sender {
                Sender::H1(mut sender) => (
                    tasks.drive(sender.send_request(request)).await,
                    Some(sender),
                ),
                Sender::H2(mut sender) => (tasks.drive(sender.send_request(request)).await, None),
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
                Err(e) => {
                    return Err(match alert.and_then(|alert| alert.get()) {
                        Some(problem) => RequestError::Certificate {
                            host: url.host_str().unwrap_or_default().to_string(),
                            problem,
                        },
                        None => RequestError::from_hyper(url, e),
                    });
                }
            };
            let (parts, incoming) = response.into_parts();
            return Ok(Exchanged {
                parts,
                incoming,
                lease: h1.map(|sender| self.pool.lease(origin, sender, tasks.clone())),
                tasks,
            });
        }
    }
}

/// Where a request goes: its origin, over the proxy the environment names
/// for it, or over `options.unixSocket` (which takes plain HTTP only).
fn origin_of(url: &Url, options: &RequestOptions) -> Result<Origin, RequestError> {
    let https = url.scheme() == "https";
    if https && options.unix_socket.is_some() {
        return Err(RequestError::InvalidRequest(format!(
            "Cannot request '{url}' over a Unix socket - https is not supported there, use http"
        )));
    }
    Ok(Origin {
        https,
        host: url.host_str().unwrap_or_default().to_string(),
        port: url.port_or_known_default().unwrap_or(80),
        // A Unix socket is the way to the server: no proxy in between.
        proxy: match options.unix_socket {
            Some(_) => None,
            None => proxy::for_url(url).map_err(RequestError::Proxy)?,
        },
        unix: options.unix_socket.clone(),
        tls: options.tls.clone(),
    })
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
