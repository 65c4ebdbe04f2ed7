//! One RTSP connection: reads requests, answers them, and paces the media
//! of the (at most one) session it owns, all from a single task with a
//! single timer.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::{Buf as _, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::auth::{self, Verdict};
use crate::rtsp::{self, Item, Request, Response};
use crate::server::Shared;
use crate::stats::{ActiveSession, PathCounters};
use crate::stream::{self, Sink, TrackStream};
use crate::transport::{self, Requested, Target};

/// Session timeout advertised in `Session: id;timeout=N`.
const SESSION_TIMEOUT_SECS: u64 = 60;
/// A connection with no bytes from the client for this long is closed
/// (the advertised timeout plus some grace for keepalive scheduling).
const IDLE_TIMEOUT: Duration = Duration::from_secs(SESSION_TIMEOUT_SECS + 5);
/// How long and how much to read-and-discard when closing a connection.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_MAX_BYTES: usize = 256 * 1024;
/// Wrong-credential attempts tolerated on one connection before closing it.
const MAX_AUTH_FAILURES: u32 = 10;

const PUBLIC: &str =
    "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, GET_PARAMETER, SET_PARAMETER, TEARDOWN";
const KNOWN_METHODS: [&str; 8] = [
    "OPTIONS",
    "DESCRIBE",
    "SETUP",
    "PLAY",
    "PAUSE",
    "GET_PARAMETER",
    "SET_PARAMETER",
    "TEARDOWN",
];

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// The RTSP session owned by a connection.
struct Session {
    id: String,
    counters: Arc<PathCounters>,
    _active: ActiveSession,
    streams: Vec<TrackStream>,
    playing: bool,
}

struct Conn {
    shared: Arc<Shared>,
    local: SocketAddr,
    peer: SocketAddr,
    nonce: String,
    auth_failures: u32,
    session: Option<Session>,
    /// Reused buffer in which frames are stamped before sending.
    out: Vec<u8>,
}

/// Serves one RTSP connection until the client leaves, idles out, or errs.
pub(crate) async fn serve(shared: Arc<Shared>, stream: TcpStream) -> anyhow::Result<()> {
    let local = stream.local_addr().context("getting local address")?;
    let peer = stream.peer_addr().context("getting peer address")?;
    // Frames are written whole; don't let Nagle delay their tails.
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut conn = Conn {
        shared,
        local,
        peer,
        nonce: auth::new_nonce(),
        auth_failures: 0,
        session: None,
        out: Vec::new(),
    };
    let mut rbuf = BytesMut::with_capacity(4096);
    let mut last_activity = Instant::now();
    let timer = tokio::time::sleep_until(last_activity + IDLE_TIMEOUT);
    tokio::pin!(timer);
    loop {
        if rbuf.capacity() - rbuf.len() < 1024 {
            rbuf.reserve(4096);
        }
        let read = tokio::select! {
            r = rd.read_buf(&mut rbuf) => Some(r),
            () = &mut timer => None,
        };
        let now = Instant::now();
        match read {
            Some(r) => {
                let n = r.with_context(|| format!("reading from {peer}"))?;
                if n == 0 {
                    tracing::debug!(%peer, "client closed connection");
                    return Ok(());
                }
                last_activity = now;
                if conn.process_input(&mut rbuf, &mut wr).await? == Flow::Close {
                    linger_close(rd, wr).await;
                    return Ok(());
                }
            }
            None if now >= last_activity + IDLE_TIMEOUT => {
                tracing::info!(%peer, "closing idle connection");
                return Ok(());
            }
            None => {}
        }
        conn.send_due(&mut wr)
            .await
            .with_context(|| format!("sending media to {peer}"))?;
        let idle_deadline = last_activity + IDLE_TIMEOUT;
        let next = conn
            .next_media_deadline()
            .map_or(idle_deadline, |d| d.min(idle_deadline));
        timer.as_mut().reset(next);
    }
}

impl Conn {
    /// Handles every complete item in `rbuf`.
    async fn process_input(
        &mut self,
        rbuf: &mut BytesMut,
        wr: &mut OwnedWriteHalf,
    ) -> anyhow::Result<Flow> {
        loop {
            match rtsp::parse(rbuf) {
                Ok(None) => return Ok(Flow::Continue),
                Ok(Some(Item::Interleaved { channel, len })) => {
                    // Client RTCP receiver reports; nothing to do with them.
                    tracing::trace!(channel, len, "ignoring interleaved data from client");
                    rbuf.advance(len);
                }
                Ok(Some(Item::Request { req, len })) => {
                    rbuf.advance(len);
                    tracing::debug!(peer = %self.peer, method = %req.method, uri = %req.uri, "request");
                    let (resp, flow) = self.handle(&req).await;
                    stream::write_stalled(wr, &resp.to_bytes(req.cseq()))
                        .await
                        .context("writing response")?;
                    if flow == Flow::Close {
                        return Ok(Flow::Close);
                    }
                }
                Err(bad) => {
                    tracing::info!(peer = %self.peer, error = %bad.error, "bad request");
                    let resp = Response::new(400);
                    // Best effort: the connection is closed either way.
                    let _ = stream::write_stalled(wr, &resp.to_bytes(bad.cseq.as_deref())).await;
                    return Ok(Flow::Close);
                }
            }
        }
    }

    async fn handle(&mut self, req: &Request) -> (Response, Flow) {
        let method = req.method.as_str();
        if !KNOWN_METHODS.contains(&method) {
            return (Response::new(501).header("Public", PUBLIC), Flow::Continue);
        }
        let Some(target) = transport::parse_target(&req.uri) else {
            return (Response::new(400), Flow::Continue);
        };
        if method != "OPTIONS" {
            if let Some(resp) = self.check_auth(req, &target) {
                let flow = if self.auth_failures >= MAX_AUTH_FAILURES {
                    Flow::Close
                } else {
                    Flow::Continue
                };
                return (resp, flow);
            }
        }
        let resp = match method {
            "OPTIONS" => Ok(self.with_session(Response::new(200).header("Public", PUBLIC))),
            "DESCRIBE" => Ok(self.describe(req)),
            "SETUP" => self.setup(req, target).await,
            "PLAY" => self.play(req),
            "PAUSE" => self.pause(req),
            "TEARDOWN" => self.teardown(req),
            // GET_PARAMETER / SET_PARAMETER: keepalives.
            _ => self
                .check_session(req)
                .map(|()| self.with_session(Response::new(200))),
        };
        (resp.unwrap_or_else(|r| r), Flow::Continue)
    }

    /// Returns the `401` to send, or `None` if the request may proceed.
    fn check_auth(&mut self, req: &Request, target: &Target) -> Option<Response> {
        let auth = self.shared.auth.as_ref()?;
        match auth.verify(req.header("Authorization"), &req.method, &self.nonce) {
            Verdict::Ok => None,
            verdict => {
                if verdict == Verdict::Wrong {
                    self.auth_failures += 1;
                    self.shared
                        .stats
                        .path(&target.path)
                        .auth_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(peer = %self.peer, path = %target.path, "wrong credentials");
                }
                Some(Response::new(401).header("WWW-Authenticate", auth.challenge(&self.nonce)))
            }
        }
    }

    /// Adds the `Session` header if a session exists.
    fn with_session(&self, resp: Response) -> Response {
        match &self.session {
            Some(s) => resp.header(
                "Session",
                format!("{};timeout={SESSION_TIMEOUT_SECS}", s.id),
            ),
            None => resp,
        }
    }

    /// Rejects a `Session` header naming a session this connection doesn't own.
    fn check_session(&self, req: &Request) -> Result<(), Response> {
        let Some(h) = req.header("Session") else {
            return Ok(());
        };
        let id = h.split(';').next().unwrap_or_default().trim();
        match &self.session {
            Some(s) if s.id == id => Ok(()),
            _ => Err(Response::new(454)),
        }
    }

    fn describe(&self, req: &Request) -> Response {
        let base = content_base(&req.uri, self.local);
        let sdp = self
            .shared
            .media
            .sdp(self.local.ip(), self.shared.session_version);
        Response::new(200)
            .header("Content-Base", base)
            .body("application/sdp", sdp.into_bytes())
    }

    async fn setup(&mut self, req: &Request, target: Target) -> Result<Response, Response> {
        self.check_session(req)?;
        if self.session.is_none() && req.header("Session").is_some() {
            return Err(Response::new(454));
        }
        if self.session.as_ref().is_some_and(|s| s.playing) {
            return Err(Response::new(455));
        }
        let track = target.track.unwrap_or(0);
        if track >= self.shared.media.tracks.len() {
            return Err(Response::new(404));
        }
        let streams = self.session.as_ref().map_or(&[][..], |s| &s.streams[..]);
        if streams.iter().any(|s| s.track == track) {
            return Err(Response::new(455));
        }
        let requested = req
            .header("Transport")
            .and_then(transport::parse_transport)
            .ok_or_else(|| Response::new(461))?;
        let (sink, transport) = match requested {
            Requested::Tcp { channel } => {
                let channel = channel.unwrap_or((2 * track).min(254) as u8);
                let clash = streams.iter().any(|s| match s.sink {
                    Sink::Tcp { channel: c } => c.abs_diff(channel) < 2,
                    Sink::Udp { .. } => false,
                });
                if clash {
                    return Err(Response::new(461));
                }
                (
                    Sink::Tcp { channel },
                    format!(
                        "RTP/AVP/TCP;unicast;interleaved={}-{}",
                        channel,
                        channel + 1
                    ),
                )
            }
            Requested::Udp {
                rtp_port,
                rtcp_port,
            } => {
                let (rtp, rtcp, server_port) = self.bind_udp(rtp_port, rtcp_port).await?;
                (
                    Sink::Udp { rtp, rtcp },
                    format!(
                        "RTP/AVP;unicast;client_port={}-{};server_port={}-{}",
                        rtp_port,
                        rtcp_port,
                        server_port,
                        server_port + 1
                    ),
                )
            }
        };
        let stream = TrackStream::new(track, req.uri.clone(), sink);
        let transport = format!("{transport};ssrc={:08X}", stream.ssrc);
        let session = self.session.get_or_insert_with(|| {
            let counters = self.shared.stats.path(&target.path);
            Session {
                id: format!("{:016X}", rand::random::<u64>()),
                _active: ActiveSession::new(counters.clone()),
                counters,
                streams: Vec::new(),
                playing: false,
            }
        });
        tracing::debug!(session = %session.id, track, %transport, "setup");
        session.streams.push(stream);
        Ok(self.with_session(Response::new(200).header("Transport", transport)))
    }

    /// Binds a server port pair and connects it to the client's ports.
    async fn bind_udp(
        &self,
        rtp_port: u16,
        rtcp_port: u16,
    ) -> Result<(tokio::net::UdpSocket, tokio::net::UdpSocket, u16), Response> {
        let internal = |e: std::io::Error| {
            tracing::warn!(error = %e, "UDP setup failed");
            Response::new(500)
        };
        let (rtp, rtcp, port) = transport::bind_udp_pair(self.local.ip())
            .await
            .map_err(internal)?;
        let client = self.peer.ip();
        rtp.connect((client, rtp_port)).await.map_err(internal)?;
        rtcp.connect((client, rtcp_port)).await.map_err(internal)?;
        Ok((rtp, rtcp, port))
    }

    fn play(&mut self, req: &Request) -> Result<Response, Response> {
        self.check_session(req)?;
        let Some(session) = self.session.as_mut() else {
            return Err(Response::new(455));
        };
        let media = &self.shared.media;
        if !session.playing {
            let now = Instant::now();
            for s in &mut session.streams {
                s.start(now);
            }
            session.playing = true;
        }
        let rtp_info: Vec<String> = session
            .streams
            .iter()
            .map(|s| {
                format!(
                    "url={};seq={};rtptime={}",
                    s.control_url,
                    s.next_seq(),
                    s.next_rtptime(&media.tracks[s.track])
                )
            })
            .collect();
        tracing::debug!(session = %session.id, "play");
        Ok(self.with_session(
            Response::new(200)
                .header("Range", "npt=now-")
                .header("RTP-Info", rtp_info.join(",")),
        ))
    }

    fn pause(&mut self, req: &Request) -> Result<Response, Response> {
        self.check_session(req)?;
        let Some(session) = self.session.as_mut() else {
            return Err(Response::new(455));
        };
        session.playing = false;
        Ok(self.with_session(Response::new(200)))
    }

    fn teardown(&mut self, req: &Request) -> Result<Response, Response> {
        self.check_session(req)?;
        if let Some(s) = self.session.take() {
            tracing::debug!(session = %s.id, "teardown");
        }
        Ok(Response::new(200))
    }

    /// The earliest deadline of a playing stream.
    fn next_media_deadline(&self) -> Option<Instant> {
        let session = self.session.as_ref().filter(|s| s.playing)?;
        let tracks = &self.shared.media.tracks;
        session
            .streams
            .iter()
            .map(|s| s.deadline(&tracks[s.track]))
            .min()
    }

    /// Sends every frame that is due on every stream.
    async fn send_due(&mut self, wr: &mut OwnedWriteHalf) -> std::io::Result<()> {
        let Conn {
            shared,
            session,
            out,
            ..
        } = self;
        let Some(session) = session.as_mut().filter(|s| s.playing) else {
            return Ok(());
        };
        let now = Instant::now();
        for s in &mut session.streams {
            let track = &shared.media.tracks[s.track];
            s.send_due(track, now, out, wr, &session.counters).await?;
        }
        Ok(())
    }
}

/// Closes a connection gracefully: sends FIN after the final response, then
/// discards what the client still sends for a moment, so the kernel doesn't
/// answer unread input with a reset that could destroy that response.
async fn linger_close(mut rd: OwnedReadHalf, mut wr: OwnedWriteHalf) {
    let _ = wr.shutdown().await;
    let mut sink = [0u8; 4096];
    let mut budget = LINGER_MAX_BYTES;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while budget > 0 {
            match rd.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => budget = budget.saturating_sub(n),
            }
        }
    })
    .await;
}

/// The `Content-Base` for a `DESCRIBE` of `uri`: the absolute URL without
/// query, with a trailing `/` so relative `trackID=N` controls resolve
/// beneath it.
fn content_base(uri: &str, local: SocketAddr) -> String {
    let mut base = if uri
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("rtsp://"))
    {
        uri.split(['?', '#']).next().unwrap_or(uri).to_owned()
    } else {
        let path = if uri == "*" { "" } else { uri };
        format!(
            "rtsp://{local}{}",
            path.split(['?', '#']).next().unwrap_or("")
        )
    };
    if !base.ends_with('/') {
        base.push('/');
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_bases() {
        let local: SocketAddr = "127.0.0.1:8554".parse().unwrap();
        assert_eq!(
            content_base("rtsp://127.0.0.1:8554/cam0", local),
            "rtsp://127.0.0.1:8554/cam0/"
        );
        assert_eq!(content_base("rtsp://h/cam0/?a=b", local), "rtsp://h/cam0/");
        assert_eq!(content_base("/cam1", local), "rtsp://127.0.0.1:8554/cam1/");
        assert_eq!(content_base("*", local), "rtsp://127.0.0.1:8554/");
    }
}
