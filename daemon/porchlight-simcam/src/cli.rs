//! `porchlight simcam`: run a simulated camera from the command line.

use std::net::SocketAddr;

use crate::auth::{Auth, AuthScheme};
use crate::clip::{clip_info, Clip};
use crate::server::{display_path, SimCam, SimCamConfig};

/// Arguments of `porchlight simcam`.
#[derive(Clone, Debug, clap::Args)]
pub struct SimCamArgs {
    /// Address to serve RTSP on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8554")]
    pub listen: SocketAddr,

    /// Bundled clip to loop: hd (1920x1080 ~4 Mbit/s) or sd (640x360 ~1 Mbit/s).
    #[arg(long, value_enum, default_value_t = Clip::Sd)]
    pub clip: Clip,

    /// Also serve an AAC audio track (48 kHz mono).
    #[arg(long)]
    pub audio: bool,

    /// Require this user name (with --password).
    #[arg(long, requires = "password")]
    pub username: Option<String>,

    /// Require this password (with --username).
    #[arg(long, requires = "username")]
    pub password: Option<String>,

    /// Authentication scheme when --username/--password are given.
    #[arg(long, value_enum, default_value_t = AuthScheme::Digest)]
    pub auth: AuthScheme,
}

impl SimCamArgs {
    /// The server configuration these arguments describe.
    pub fn config(&self) -> SimCamConfig {
        let auth = match (&self.username, &self.password) {
            (Some(username), Some(password)) => Some(Auth {
                username: username.clone(),
                password: password.clone(),
                scheme: self.auth,
            }),
            _ => None,
        };
        SimCamConfig {
            listen: self.listen,
            clip: self.clip,
            audio: self.audio,
            auth,
        }
    }
}

/// Runs a simulated camera until Ctrl-C or SIGTERM.
///
/// Prints the URLs it serves; on exit prints one line per path that was
/// used, `frames_sent PATH N`, to stdout (PATH is the URL path without its
/// leading `/`, or `/` for the root).
pub async fn run_cli(args: SimCamArgs) -> anyhow::Result<()> {
    let cfg = args.config();
    let info = clip_info(cfg.clip);
    let cam = SimCam::start(cfg.clone()).await?;
    println!(
        "simcam: serving clip {} ({}x{} {} fps{}{}) at {} (any path is a camera)",
        cfg.clip,
        info.width,
        info.height,
        info.fps,
        if cfg.audio { ", AAC audio" } else { "" },
        match &cfg.auth {
            Some(a) => format!(", {:?} auth as {:?}", a.scheme, a.username),
            None => String::new(),
        },
        cam.url(""),
    );
    println!("simcam: e.g. {}", cam.url("cam0"));
    wait_for_signal().await?;
    let stats = cam.stats();
    cam.shutdown().await;
    for (path, s) in &stats.paths {
        println!("frames_sent {} {}", display_path(path), s.frames_sent);
    }
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() -> anyhow::Result<()> {
    use anyhow::Context as _;
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> anyhow::Result<()> {
    use anyhow::Context as _;
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimCamArgs,
    }

    #[test]
    fn defaults_and_auth() {
        let c = Cli::try_parse_from(["x"]).unwrap().args.config();
        assert_eq!(c.listen, "127.0.0.1:8554".parse().unwrap());
        assert_eq!(c.clip, Clip::Sd);
        assert!(!c.audio && c.auth.is_none());

        let c = Cli::try_parse_from([
            "x",
            "--clip",
            "hd",
            "--audio",
            "--username",
            "u",
            "--password",
            "p",
            "--auth",
            "basic",
            "--listen",
            "0.0.0.0:0",
        ])
        .unwrap()
        .args
        .config();
        assert_eq!(c.clip, Clip::Hd);
        assert!(c.audio);
        let a = c.auth.unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("u", "p"));
        assert_eq!(a.scheme, AuthScheme::Basic);

        assert!(Cli::try_parse_from(["x", "--username", "u"]).is_err());
        assert!(Cli::try_parse_from(["x", "--clip", "4k"]).is_err());
    }
}
