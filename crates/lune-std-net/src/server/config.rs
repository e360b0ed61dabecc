//! `net.serve` arguments: a handler function or a config table.

use std::{net::IpAddr, sync::Arc, time::Duration};

use mlua::prelude::*;
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use crate::shared::fields::optional;

/// Requests with bodies larger than this get 413 unless `maxBodySize` says otherwise.
pub(crate) const DEFAULT_MAX_BODY_SIZE: usize = 128 * 1024 * 1024;
/// Connections that do not finish sending request headers within this are closed.
pub(crate) const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything `net.serve` was asked to do.
pub(crate) struct ServeConfig {
    pub(crate) address: IpAddr,
    pub(crate) handle_request: Option<LuaFunction>,
    pub(crate) handle_web_socket: Option<LuaFunction>,
    pub(crate) tls: Option<Arc<ServerConfig>>,
    pub(crate) max_body_size: usize,
    pub(crate) header_timeout: Duration,
}

impl FromLua for ServeConfig {
    fn from_lua(value: LuaValue, lua: &Lua) -> LuaResult<Self> {
        let mut config = Self {
            address: IpAddr::from([127, 0, 0, 1]),
            handle_request: None,
            handle_web_socket: None,
            tls: None,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
        };
        let table = match value {
            LuaValue::Function(f) => {
                config.handle_request = Some(f);
                return Ok(config);
            }
            LuaValue::Table(t) => t,
            other => {
                return Err(LuaError::runtime(format!(
                    "net.serve expects a handler function or a config table, got {}",
                    lune_utils::type_name(&other)
                )));
            }
        };
        config.handle_request = optional(lua, &table, "handleRequest", "a function")?;
        config.handle_web_socket = optional(lua, &table, "handleWebSocket", "a function")?;
        if config.handle_request.is_none() && config.handle_web_socket.is_none() {
            return Err(LuaError::runtime(
                "net.serve config needs 'handleRequest' or 'handleWebSocket' (a function)",
            ));
        }
        match table.get::<LuaValue>("address")? {
            LuaValue::Nil => {}
            LuaValue::String(s) => config.address = parse_address(&s.to_string_lossy())?,
            other => {
                return Err(LuaError::runtime(format!(
                    "Invalid 'address' - expected a string, got {}",
                    lune_utils::type_name(&other)
                )));
            }
        }
        match table.get::<LuaValue>("tls")? {
            LuaValue::Nil => {}
            LuaValue::Table(tls) => {
                let cert: LuaString = tls.get("cert").map_err(|_| {
                    LuaError::runtime("Invalid 'tls' - 'cert' must be a PEM string")
                })?;
                let key: LuaString = tls
                    .get("key")
                    .map_err(|_| LuaError::runtime("Invalid 'tls' - 'key' must be a PEM string"))?;
                config.tls = Some(server_tls(&cert.as_bytes(), &key.as_bytes())?);
            }
            other => {
                return Err(LuaError::runtime(format!(
                    "Invalid 'tls' - expected a table {{ cert, key }}, got {}",
                    lune_utils::type_name(&other)
                )));
            }
        }
        if let Some(size) = positive_number(&table, "maxBodySize")? {
            config.max_body_size = size.min(usize::MAX as f64) as usize;
        }
        if let Some(secs) = positive_number(&table, "headerTimeout")? {
            config.header_timeout = Duration::from_secs_f64(secs);
        }
        Ok(config)
    }
}

fn positive_number(table: &LuaTable, key: &str) -> LuaResult<Option<f64>> {
    match table.get::<LuaValue>(key)? {
        LuaValue::Nil => Ok(None),
        LuaValue::Integer(n) if n > 0 => Ok(Some(n as f64)),
        LuaValue::Number(n) if n > 0.0 && n.is_finite() => Ok(Some(n)),
        other => Err(LuaError::runtime(format!(
            "Invalid '{key}' - expected a positive number, got {}",
            other
                .to_string()
                .unwrap_or_else(|_| lune_utils::type_name(&other).to_string())
        ))),
    }
}

/// `127.0.0.1`, `::1`, `[::1]`, `http://0.0.0.0`, `https://localhost`.
pub(crate) fn parse_address(text: &str) -> LuaResult<IpAddr> {
    let trimmed = text.trim();
    let bare = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .unwrap_or(trimmed)
        .trim_end_matches('/');
    if bare.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::from([127, 0, 0, 1]));
    }
    let bare = bare.trim_start_matches('[').trim_end_matches(']');
    bare.parse().map_err(|_| {
        LuaError::runtime(format!(
            "Invalid address '{text}' - expected an IPv4 or IPv6 address such as 127.0.0.1 or ::1, optionally prefixed with http://"
        ))
    })
}

/// A TLS server configuration from PEM text, offering HTTP/2 and HTTP/1.1.
pub(crate) fn server_tls(cert_pem: &[u8], key_pem: &[u8]) -> LuaResult<Arc<ServerConfig>> {
    server_tls_with_alpn(cert_pem, key_pem, &[b"h2", b"http/1.1"])
}

/// A TLS server configuration from PEM text with the given ALPN protocols.
pub(crate) fn server_tls_with_alpn(
    cert_pem: &[u8],
    key_pem: &[u8],
    alpn: &[&[u8]],
) -> LuaResult<Arc<ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| LuaError::runtime(format!("Invalid TLS certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(LuaError::runtime(
            "Invalid TLS certificate - no 'BEGIN CERTIFICATE' block found in 'cert'",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| LuaError::runtime(format!("Invalid TLS private key PEM in 'key': {e}")))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| LuaError::runtime(format!("TLS setup failed: {e}")))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| LuaError::runtime(format!("Invalid TLS certificate or key: {e}")))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::parse_address;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("http://0.0.0.0").unwrap().to_string(),
            "0.0.0.0"
        );
        assert_eq!(parse_address("[::1]").unwrap().to_string(), "::1");
        assert_eq!(
            parse_address("https://localhost").unwrap().to_string(),
            "127.0.0.1"
        );
        assert!(parse_address("300.1.1.1").is_err());
        assert!(parse_address("example.com").is_err());
    }
}
