//! A small WebSocket client (RFC 6455) over a blocking TcpStream, for the
//! live-view tests: the real handshake and framing, nothing more.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub enum WsMessage {
    Text(String),
    Binary(Vec<u8>),
    Close,
}

pub struct WsClient {
    reader: BufReader<TcpStream>,
}

/// The upgrade's answer when it was refused: status and body.
pub type Refused = (u16, String);

impl WsClient {
    /// Opens `path` on `addr` with an optional `Origin`.
    pub fn connect(
        addr: SocketAddr,
        path: &str,
        origin: Option<&str>,
    ) -> Result<WsClient, Refused> {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
        )
        .expect("send handshake");
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).expect("status line");
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
                if name.eq_ignore_ascii_case("sec-websocket-accept") {
                    // RFC 6455's example key and its accept value.
                    assert_eq!(value.trim(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
                }
            }
        }
        if status != 101 {
            let mut body = vec![0; content_length];
            reader.read_exact(&mut body).expect("body");
            return Err((status, String::from_utf8_lossy(&body).into_owned()));
        }
        Ok(WsClient { reader })
    }

    /// The next whole message (fragmented messages are joined; pings skipped).
    pub fn next(&mut self) -> std::io::Result<WsMessage> {
        let mut payload = Vec::new();
        let mut kind = 0u8;
        loop {
            let mut head = [0u8; 2];
            self.reader.read_exact(&mut head)?;
            let fin = head[0] & 0x80 != 0;
            let opcode = head[0] & 0x0f;
            let mut len = u64::from(head[1] & 0x7f);
            if len == 126 {
                let mut ext = [0u8; 2];
                self.reader.read_exact(&mut ext)?;
                len = u64::from(u16::from_be_bytes(ext));
            } else if len == 127 {
                let mut ext = [0u8; 8];
                self.reader.read_exact(&mut ext)?;
                len = u64::from_be_bytes(ext);
            }
            let mut data = vec![0u8; len as usize];
            self.reader.read_exact(&mut data)?;
            match opcode {
                0x8 => return Ok(WsMessage::Close),
                0x9 | 0xA => continue,
                0x0 => payload.extend_from_slice(&data),
                op => {
                    kind = op;
                    payload = data;
                }
            }
            if fin {
                return Ok(match kind {
                    0x1 => WsMessage::Text(String::from_utf8_lossy(&payload).into_owned()),
                    _ => WsMessage::Binary(payload),
                });
            }
        }
    }
}
