//! The CLI's side of the owner API: commands that change what the running
//! daemon holds (the audit log's single writer, the live policy) ask it over
//! `[http] bind` with the local CLI token, so a change from the shell is
//! checked, audited and announced like one from the page.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

use crate::config::Config;

/// The daemon's 2xx answer, `None` when nothing listens at `http.bind`, or
/// an error carrying what the daemon said and its status.
pub fn call_if_running(
    config: &Config,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<Option<Value>> {
    match call_daemon(config, method, path, body)? {
        Some((status, answer)) if (200..300).contains(&status) => Ok(Some(answer)),
        Some((status, answer)) => {
            let message = answer["error"]
                .as_str()
                .map_or_else(|| answer.to_string(), str::to_string);
            Err(anyhow!("{message} (daemon answered {status})"))
        }
        None => Ok(None),
    }
}

/// The daemon's answer, or `None` when nothing listens at `http.bind`.
/// Sends the daemon's local CLI token (`<data_dir>/owner-api.token`) when
/// this user can read it: with owner accounts, nothing works without it.
pub fn call_daemon(
    config: &Config,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<Option<(u16, Value)>> {
    let token_path = config.data_dir.join(crate::http::auth::CLI_TOKEN_FILE);
    let token = std::fs::read_to_string(&token_path).map(|t| t.trim().to_string());
    let authorization = match &token {
        Ok(token) if !token.is_empty() => format!("Authorization: Bearer {token}\r\n"),
        _ => String::new(),
    };
    let answer = send(config.http.bind, method, path, body, &authorization)?;
    if let (Some((401, _)), Err(e)) = (&answer, &token) {
        bail!(
            "the daemon needs a login, and this user cannot read its token {} ({e}): \
             run this command as the user the daemon runs as (e.g. `sudo -u porchlight ...`)",
            token_path.display()
        );
    }
    Ok(answer)
}

fn send(
    bind: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
    authorization: &str,
) -> anyhow::Result<Option<(u16, Value)>> {
    // A daemon bound to every address is reached on loopback.
    let addr = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), bind.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), bind.port())
        }
        _ => bind,
    };
    let mut stream = match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Ok(stream) => stream,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot reach the daemon at http.bind = {addr}"))
        }
    };
    let fail = |e: std::io::Error| anyhow!("talking to the daemon at {addr}: {e}");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(fail)?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{authorization}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(fail)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(fail)?;
    let text = String::from_utf8_lossy(&response);
    let (head, payload) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("the daemon at {addr} sent no HTTP answer"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("the daemon at {addr} sent a malformed status line"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let payload = if chunked {
        dechunk(payload)
    } else {
        payload.to_string()
    };
    let value = serde_json::from_str(&payload).with_context(|| {
        format!("the service at {addr} did not answer in JSON (is it the Porchlight daemon?)")
    })?;
    Ok(Some((status, value)))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}
