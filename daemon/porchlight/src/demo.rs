//! `porchlight demo`: the daemon recording the project's own simulated
//! cameras into a throwaway data dir, so a newcomer sees it work with no
//! camera and nothing else installed.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use porchlight_simcam::{Clip, SimCam, SimCamConfig};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// How many simulated cameras to record.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub cameras: u16,
    /// Where the owner API listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: std::net::SocketAddr,
    /// Keep footage here instead of a temporary directory (kept on exit).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub seconds: Option<u64>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let simcam = SimCam::start(SimCamConfig {
        listen: "127.0.0.1:0".parse()?,
        clip: Clip::Sd,
        audio: true,
        auth: None,
    })
    .await
    .context("cannot start the simulated camera")?;

    // A temporary dir (deleted on exit) unless the owner named one to keep.
    let (data_dir, temp) = match &args.data_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("porchlight-demo-")
                .tempdir()?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };

    let mut text = format!(
        "data_dir = {}\n[http]\nbind = \"{}\"\n[retention]\nmax_bytes = \"1GB\"\nmin_free = \"1GB\"\n[storage]\nsegment_duration = \"10s\"\n",
        toml::Value::String(data_dir.to_string_lossy().into_owned()),
        args.http
    );
    for i in 0..args.cameras {
        text.push_str(&format!(
            "[[cameras]]\nname = \"demo-cam{i}\"\nurl = \"{}\"\n",
            simcam.url(&format!("cam{i}"))
        ));
    }
    let config = crate::config::Config::parse(&text, None).context("demo config")?;

    println!("Porchlight demo");
    println!("  simulated camera: {}", simcam.url("cam0"));
    println!("  footage:          {}", data_dir.display());
    println!("  cameras:          http://{}/api/cameras", args.http);
    println!("  metrics:          http://{}/metrics", args.http);
    println!(
        "  Ctrl-C to stop{}",
        if temp.is_some() {
            " (the temporary footage is then deleted)"
        } else {
            ""
        }
    );

    let progress_dir = data_dir.clone();
    let progress = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        ticker.tick().await;
        loop {
            ticker.tick().await;
            if let Ok(summary) = tokio::task::spawn_blocking({
                let dir = progress_dir.clone();
                move || summarize(&dir)
            })
            .await
            {
                println!(
                    "{}",
                    summary.unwrap_or_else(|e| format!("  (cannot read the index yet: {e})"))
                );
            }
        }
    });

    let stop = async {
        match args.seconds {
            Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
            None => std::future::pending().await,
        }
    };
    let result = crate::daemon::run(config, stop).await.map(|_| ());
    progress.abort();
    println!("{}", summarize(&data_dir).unwrap_or_default());
    simcam.shutdown().await;
    result
}

/// One line per camera: segments, frames and bytes stored so far.
fn summarize(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let conn = crate::store::open_reader(data_dir)?;
    let mut stmt = conn.prepare(
        "SELECT st.camera, COUNT(sg.id), COALESCE(SUM(sg.frames), 0), COALESCE(SUM(sg.bytes), 0),
                COALESCE(MAX(sg.end_utc_us) - MIN(sg.start_utc_us), 0)
         FROM streams st LEFT JOIN segments sg ON sg.stream_id = st.id GROUP BY st.camera ORDER BY st.camera",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(format!(
            "  {:<12} {:>4} segments {:>7} frames {:>8.1} MB  {:>6.1} s of footage",
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)? as f64 / 1e6,
            r.get::<_, i64>(4)? as f64 / 1e6
        ))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?.join("\n"))
}
