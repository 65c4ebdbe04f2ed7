//! Porchlight's simulated IP camera.
//!
//! A real RTSP/1.0 server (RFC 2326) that loops a bundled H.264 clip
//! (optionally with AAC audio) over RTP, interleaved on the RTSP TCP
//! connection or over UDP. It powers `porchlight demo`, the integration
//! tests and the recording benchmark.
//!
//! Every URL path is a separate "camera" with its own [`PathStats`]; all
//! serve the same clip. The clip is parsed and packetized once at start-up
//! and shared by every session, which only stamps per-session RTP header
//! fields and paces frames against absolute deadlines, so one process can
//! serve dozens of 1080p streams cheaply.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use porchlight_simcam::{Clip, SimCam, SimCamConfig};
//! let cam = SimCam::start(SimCamConfig {
//!     clip: Clip::Hd,
//!     ..SimCamConfig::default()
//! })
//! .await?;
//! println!("point a client at {}", cam.url("cam0"));
//! // ...
//! println!("sent {} frames", cam.frames_sent("cam0"));
//! cam.shutdown().await;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod auth;
mod cli;
mod clip;
mod media;
mod rtp;
mod rtsp;
mod server;
mod session;
mod stats;
mod stream;
mod transport;

pub use auth::{Auth, AuthScheme};
pub use cli::{run_cli, SimCamArgs};
pub use clip::{clip_info, clip_samples, Clip, ClipInfo, ClipSamples, UnknownClip};
pub use server::{SimCam, SimCamConfig};
pub use stats::{PathStats, SimCamStats};
