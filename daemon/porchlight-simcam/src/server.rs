//! The [`SimCam`] handle: listener, accept loop, shared state, shutdown.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::auth::Auth;
use crate::clip::{Clip, ClipInfo};
use crate::media::Media;
use crate::session;
use crate::stats::{normalize_path, Registry, SimCamStats};

/// Most simultaneous RTSP connections; further ones are closed on accept.
const MAX_CONNECTIONS: usize = 1024;

/// How a [`SimCam`] is set up.
#[derive(Clone, Debug)]
pub struct SimCamConfig {
    /// Address to listen on for RTSP; port 0 picks a free port
    /// (see [`SimCam::local_addr`]). UDP media ports are bound on the IP
    /// each client connected to.
    pub listen: SocketAddr,
    /// Which bundled clip to serve on every path.
    pub clip: Clip,
    /// Whether to add the AAC audio track (`trackID=1`).
    pub audio: bool,
    /// Credentials required for every request but `OPTIONS`, if any.
    pub auth: Option<Auth>,
}

impl Default for SimCamConfig {
    /// `127.0.0.1:0`, the `sd` clip, no audio, no auth.
    fn default() -> Self {
        SimCamConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            clip: Clip::Sd,
            audio: false,
            auth: None,
        }
    }
}

/// State shared by the accept loop and every connection.
pub(crate) struct Shared {
    pub media: Media,
    pub auth: Option<Auth>,
    pub stats: Registry,
    /// SDP `o=` session version: the server's start time.
    pub session_version: u64,
}

/// A running simulated camera. Dropping it without [`SimCam::shutdown`]
/// also stops it (abruptly, without waiting).
pub struct SimCam {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SimCam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCam")
            .field("local_addr", &self.local_addr)
            .field("clip", &self.shared.media.clip)
            .finish_non_exhaustive()
    }
}

impl SimCam {
    /// Loads and packetizes the clip, binds the listener, and spawns the
    /// accept loop on the current tokio runtime.
    pub async fn start(cfg: SimCamConfig) -> anyhow::Result<SimCam> {
        let media = Media::load(cfg.clip, cfg.audio)?;
        let listener = TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("binding RTSP listener on {}", cfg.listen))?;
        let local_addr = listener
            .local_addr()
            .context("getting RTSP listener address")?;
        let session_version = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let shared = Arc::new(Shared {
            media,
            auth: cfg.auth,
            stats: Registry::default(),
            session_version,
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, shared.clone(), stop_rx));
        tracing::info!(%local_addr, clip = %cfg.clip, audio = cfg.audio, "simcam listening");
        Ok(SimCam {
            local_addr,
            shared,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }

    /// The address the RTSP listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL of a camera path, e.g. `url("cam0")` is
    /// `rtsp://127.0.0.1:PORT/cam0`. A wildcard listen IP is replaced by loopback.
    pub fn url(&self, path: &str) -> String {
        let ip = match self.local_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let addr = SocketAddr::new(ip, self.local_addr.port());
        format!("rtsp://{addr}/{}", path.trim_start_matches('/'))
    }

    /// Video frames (access units) fully sent on `path` (leading/trailing
    /// `/` ignored), summed over all its sessions, past and present.
    pub fn frames_sent(&self, path: &str) -> u64 {
        self.shared.stats.frames_sent(path)
    }

    /// Per-path frames and bytes sent, active sessions and auth failures.
    pub fn stats(&self) -> SimCamStats {
        self.shared.stats.snapshot()
    }

    /// Facts about the clip being served.
    pub fn clip_info(&self) -> ClipInfo {
        self.shared.media.info
    }

    /// Closes the listener and every connection and session at once, like
    /// a camera losing power; returns when all of them are gone, with the
    /// final counters (nothing more is sent after this).
    pub async fn shutdown(mut self) -> SimCamStats {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                if e.is_panic() {
                    tracing::error!("simcam accept loop panicked: {e}");
                }
            }
        }
        tracing::info!(local_addr = %self.local_addr, "simcam shut down");
        self.shared.stats.snapshot()
    }
}

impl Drop for SimCam {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if conns.len() >= MAX_CONNECTIONS {
                        tracing::warn!(%peer, "too many connections; refusing");
                        continue;
                    }
                    let shared = shared.clone();
                    conns.spawn(async move {
                        tracing::debug!(%peer, "connection accepted");
                        if let Err(e) = session::serve(shared, stream).await {
                            tracing::debug!(%peer, "connection ended: {e:#}");
                        }
                    });
                }
                Err(e) => {
                    // E.g. out of file descriptors; don't spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(joined) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = joined {
                    if e.is_panic() {
                        tracing::error!("simcam connection task panicked: {e}");
                    }
                }
            }
        }
    }
    drop(listener);
    conns.shutdown().await;
}

/// Normalizes a path the way stats keys are stored (exposed for the CLI).
pub(crate) fn display_path(path: &str) -> &str {
    match normalize_path(path) {
        "" => "/",
        p => p,
    }
}
