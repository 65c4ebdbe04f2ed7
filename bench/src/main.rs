//! `cargo run --release -p porchlight-bench -- --streams 1,16,64 --seconds 60`
//! `cargo run --release -p porchlight-bench -- --export 3600`
//! `cargo run --release -p porchlight-bench -- --decide`
//! `cargo run --release -p porchlight-bench -- --live`
//! `cargo build --release -p porchlight && cargo run --release -p porchlight-bench -- --relay`
//!
//! Every mode but `--decide` runs the daemon binary found next to this one
//! (`target/release/porchlight` for a release build; `cargo run -p
//! porchlight-bench` does not build it) or given with `--porchlight`.
//!
//! Decide mode: p50/p99 of the policy gate, `policy::decide()`, in-process,
//! against parsing the same request bodies (see `decide.rs`).
//!
//! Live mode: p50/p99 latency from a frame reaching the live feed to 1 and
//! 16 WebSocket viewers reading it, and time to the first frame (see
//! `live.rs`).
//!
//! Relay mode: p50/p90/p99/max and throughput of the agency API over mutual
//! TLS against the running daemon, new connection per call and kept alive,
//! at several client thread counts, with `GET /v1/device` as the baseline
//! (see `relay.rs`).
//!
//! Export mode: fills the store with an hour (or the given seconds) of one
//! 4 Mbit/s camera through the real write path, then times a clip of all of
//! it: time to first byte, warm-cache throughput, and in the same run
//! `ffmpeg -f concat -safe 0 -i list -c copy` over the same segment files.
//!
//! For each stream count N: the simulated camera serves N 1080p30 ~4 Mbit/s
//! H.264 streams; first Porchlight records them for T seconds, then N
//! `ffmpeg -c copy -f segment` processes (what Frigate runs) record the same
//! streams for T seconds. Prints CPU seconds, peak RSS and frames lost for
//! both, and the ratios. Figures, not pass/fail: machines are noisy.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;

mod decide;
mod latency;
mod live;
mod relay;

// The relay tests' mutual-TLS client and rcgen PKI, compiled here as they
// are (one client for tests and benchmark; `relay_client` finds the PKI as
// `super::pki`). Not everything in them is used here.
#[allow(dead_code)]
#[path = "../../tests/support/pki.rs"]
mod pki;
#[allow(dead_code)]
#[path = "../../tests/support/relay_client.rs"]
mod relay_client;

#[derive(Parser)]
struct Args {
    /// Comma-separated stream counts.
    #[arg(long, default_value = "1,16,64", value_delimiter = ',')]
    streams: Vec<usize>,
    /// Recording time per run.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// The porchlight binary (default: next to this one).
    #[arg(long)]
    porchlight: Option<PathBuf>,
    /// Skip the ffmpeg baseline.
    #[arg(long)]
    no_baseline: bool,
    /// Export benchmark over this many seconds of footage instead.
    #[arg(long)]
    export: Option<u64>,
    /// Policy-gate benchmark instead (in-process; needs no porchlight binary).
    #[arg(long)]
    decide: bool,
    /// Timed calls per row of the --decide table.
    #[arg(long, default_value_t = 200_000)]
    decide_samples: usize,
    /// Distinct random requests the --decide samples cycle through.
    #[arg(long, default_value_t = 10_000)]
    decide_requests: usize,
    /// Live view instead: frame-to-viewer latency with each viewer count
    /// and time to the first frame (in-process; needs no porchlight binary).
    #[arg(long)]
    live: bool,
    /// Comma-separated viewer counts for --live.
    #[arg(long, default_value = "1,16", value_delimiter = ',')]
    live_viewers: Vec<usize>,
    /// Seconds of 30 fps video per --live row.
    #[arg(long, default_value_t = 20)]
    live_seconds: u64,
    /// Relay API latency over mutual TLS against the daemon instead.
    #[arg(long)]
    relay: bool,
    /// Comma-separated client thread counts for --relay.
    #[arg(long, default_value = "1,4,16", value_delimiter = ',')]
    relay_threads: Vec<usize>,
    /// Timed calls per endpoint per --relay row, split across its threads.
    #[arg(long, default_value_t = 2000)]
    relay_calls: usize,
}

/// CPU and memory of a set of processes over one run.
#[derive(Default, Debug, Clone, Copy)]
struct Usage {
    cpu_seconds: f64,
    peak_rss_bytes: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.decide {
        return decide::run(args.decide_samples, args.decide_requests);
    }
    if args.live {
        return live::run(&args.live_viewers, args.live_seconds);
    }
    let porchlight = match &args.porchlight {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("porchlight"),
    };
    if !porchlight.exists() {
        bail!(
            "{} not found: this benchmark runs the daemon binary next to itself, \
             which `cargo run -p porchlight-bench` does not build. Build it in the same \
             profile first (`cargo build --release -p porchlight`) or pass --porchlight PATH",
            porchlight.display()
        );
    }
    if args.relay {
        return relay::run(&porchlight, &args.relay_threads, args.relay_calls);
    }
    if let Some(seconds) = args.export {
        return run_export(&porchlight, seconds);
    }
    println!("| streams | seconds | porchlight CPU s/stream-min | ffmpeg CPU s/stream-min | CPU ratio | porchlight RSS MiB/stream | ffmpeg RSS MiB/stream | porchlight frames lost | ffmpeg frames lost |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for &n in &args.streams {
        let ours = run_porchlight(&porchlight, n, args.seconds)?;
        let theirs = if args.no_baseline {
            None
        } else {
            Some(run_ffmpeg(&porchlight, n, args.seconds)?)
        };
        let per_min = |u: &Usage| u.cpu_seconds / (n as f64 * args.seconds as f64 / 60.0);
        let rss = |bytes: f64| bytes / n as f64 / (1 << 20) as f64;
        let (theirs_cpu, ratio, theirs_rss, theirs_lost) = match &theirs {
            Some((usage, lost)) => (
                format!("{:.3}", per_min(usage)),
                format!("{:.2}", per_min(&ours.0) / per_min(usage).max(1e-9)),
                format!("{:.1}", rss(usage.peak_rss_bytes as f64)),
                lost.to_string(),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        println!(
            "| {n} | {} | {:.3} | {theirs_cpu} | {ratio} | {:.2} | {theirs_rss} | {} | {theirs_lost} |",
            args.seconds,
            per_min(&ours.0),
            rss(ours.0.peak_rss_bytes as f64),
            ours.1,
        );
    }
    Ok(())
}

/// Starts `porchlight simcam` for N hd streams; returns the child and its port.
fn start_simcam(porchlight: &Path) -> anyhow::Result<(Child, u16)> {
    let port = free_port()?;
    let child = Command::new(porchlight)
        .args([
            "simcam",
            "--clip",
            "hd",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("start simcam")?;
    wait_for_port(port)?;
    Ok((child, port))
}

/// Stops the simcam and reads the frames it sent, summed over paths.
fn stop_simcam(mut child: Child) -> anyhow::Result<u64> {
    signal(&child, libc::SIGTERM);
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out)?;
    }
    child.wait()?;
    Ok(out
        .lines()
        .filter_map(|l| l.strip_prefix("frames_sent "))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum())
}

fn run_porchlight(porchlight: &Path, n: usize, seconds: u64) -> anyhow::Result<(Usage, i64)> {
    let dir = tempfile::Builder::new()
        .prefix("porchlight-bench-")
        .tempdir_in(bench_dir())?;
    let (simcam, port) = start_simcam(porchlight)?;
    let http_port = free_port()?;
    let mut config = format!(
        "data_dir = \"{}\"\n[http]\nbind = \"127.0.0.1:{http_port}\"\n[retention]\nmin_free = \"2GB\"\n",
        dir.path().join("data").display()
    );
    for i in 0..n {
        config.push_str(&format!(
            "[[cameras]]\nname = \"cam{i}\"\nurl = \"rtsp://127.0.0.1:{port}/cam{i}\"\n"
        ));
    }
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, config)?;
    let daemon = Command::new(porchlight)
        .args(["run", "--config"])
        .arg(&config_path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        // Reconnect warnings after the camera stops are expected; keep them out of the table.
        .stderr(std::fs::File::create(dir.path().join("daemon.log"))?)
        .spawn()?;
    let pid = daemon.id();
    let start_cpu = cpu_seconds(pid)?;
    std::thread::sleep(Duration::from_secs(seconds));
    let usage = Usage {
        cpu_seconds: cpu_seconds(pid)? - start_cpu,
        peak_rss_bytes: peak_rss(pid)?,
    };
    // Stop the camera first so every frame sent has been received and flushed.
    let sent = stop_simcam(simcam)?;
    let mut stored = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = frames_stored(http_port).unwrap_or(0);
        if now == stored && now > 0 || Instant::now() > deadline {
            break;
        }
        stored = now;
        std::thread::sleep(Duration::from_millis(1500));
    }
    let mut daemon = daemon;
    signal(&daemon, libc::SIGTERM);
    daemon.wait()?;
    Ok((usage, sent as i64 - stored as i64))
}

fn run_ffmpeg(porchlight: &Path, n: usize, seconds: u64) -> anyhow::Result<(Usage, String)> {
    let dir = tempfile::Builder::new()
        .prefix("ffmpeg-bench-")
        .tempdir_in(bench_dir())?;
    let (simcam, port) = start_simcam(porchlight)?;
    let mut children = Vec::new();
    for i in 0..n {
        let out = dir.path().join(format!("cam{i}-%05d.mp4"));
        let child = Command::new("ffmpeg")
            .args([
                "-nostdin",
                "-loglevel",
                "error",
                "-rtsp_transport",
                "tcp",
                "-i",
            ])
            .arg(format!("rtsp://127.0.0.1:{port}/cam{i}"))
            .args([
                "-c",
                "copy",
                "-f",
                "segment",
                "-segment_time",
                "60",
                "-reset_timestamps",
                "1",
            ])
            .arg(out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start ffmpeg (apt-get install ffmpeg)")?;
        children.push(child);
    }
    let start: Vec<f64> = children
        .iter()
        .map(|c| cpu_seconds(c.id()).unwrap_or(0.0))
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    let mut usage = Usage::default();
    for (child, start) in children.iter().zip(start) {
        usage.cpu_seconds += cpu_seconds(child.id()).unwrap_or(start) - start;
        usage.peak_rss_bytes += peak_rss(child.id()).unwrap_or(0);
    }
    for child in &children {
        signal(child, libc::SIGINT);
    }
    for mut child in children {
        child.wait()?;
    }
    stop_simcam(simcam)?;
    // ffmpeg keeps no frame counter we can read cheaply; frame loss is not measured for it.
    Ok((usage, "n/a".into()))
}

fn bench_dir() -> PathBuf {
    std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on a child we own.
    unsafe { libc::kill(child.id() as i32, sig) };
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn wait_for_port(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listening on port {port}")
}

/// utime + stime of a process (all threads), from /proc.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields after the name start at field 3 (state); utime is 14, stime 15.
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((utime + stime) / ticks)
}

/// VmHWM: the peak resident set size.
fn peak_rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("VmHWM")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?;
    Ok(kib * 1024)
}

/// Sum of porchlight_frames_total from /metrics.
fn frames_stored(http_port: u16) -> anyhow::Result<u64> {
    let mut stream = TcpStream::connect(("127.0.0.1", http_port))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut total = 0u64;
    for line in BufReader::new(stream).lines() {
        let line = line?;
        if line.starts_with("porchlight_frames_total{") {
            total += line
                .rsplit_once(' ')
                .and_then(|(_, v)| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(total)
}

/// The export benchmark (see the module docs).
fn run_export(porchlight: &Path, seconds: u64) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("porchlight-export-bench-")
        .tempdir_in(bench_dir())?;
    let http_port = free_port()?;
    let config = format!(
        "data_dir = \"{}\"\n[http]\nbind = \"127.0.0.1:{http_port}\"\n[retention]\nmin_free = \"1GB\"\n\
         [export]\nmax_clip = \"24h\"\n[[cameras]]\nname = \"cam\"\nurl = \"rtsp://127.0.0.1:9/unused\"\nenabled = false\n",
        dir.path().join("data").display()
    );
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, config)?;

    let started = Instant::now();
    let status = Command::new(porchlight)
        .args(["bench-fill", "--config"])
        .arg(&config_path)
        .args([
            "--camera",
            "cam",
            "--seconds",
            &seconds.to_string(),
            "--clip",
            "hd",
        ])
        .status()?;
    if !status.success() {
        bail!("bench-fill failed");
    }
    println!(
        "filled {seconds} s of 1080p30 ~4 Mbit/s footage in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut daemon = Command::new(porchlight)
        .args(["run", "--config"])
        .arg(&config_path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    wait_for_port(http_port)?;
    let result = (|| -> anyhow::Result<()> {
        let (_, _, body) = http_request(http_port, "/api/cameras/cam/recordings", true)?;
        let body = String::from_utf8_lossy(&body).into_owned();
        let from = json_field(&body, "\"from\":\"", 2).context("span start")?;
        let to = json_field(&body, "\"to\":\"", 2).context("span end")?;
        let path = format!("/api/cameras/cam/clip.mp4?from={from}&to={to}&audio=false");

        let mut ttfb = Vec::new();
        let mut rates = Vec::new();
        let mut size = 0;
        for _ in 0..4 {
            let t0 = Instant::now();
            let (first_byte, len, _) = http_request(http_port, &path, false)?;
            let total = t0.elapsed().as_secs_f64();
            ttfb.push(first_byte.as_secs_f64() * 1000.0);
            rates.push(len as f64 / total / 1e9);
            size = len;
        }
        // The first run warms the page cache; report the best warm figures.
        let best_ttfb = ttfb[1..].iter().cloned().fold(f64::MAX, f64::min);
        let best_rate = rates[1..].iter().cloned().fold(0.0, f64::max);
        let our_seconds = size as f64 / 1e9 / best_rate;

        let mut list = String::new();
        let mut files = Vec::new();
        let mut stack = vec![dir.path().join("data/recordings")];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d)? {
                let p = entry?.path();
                if p.is_dir() {
                    stack.push(p)
                } else {
                    files.push(p)
                }
            }
        }
        files.sort();
        for f in &files {
            list.push_str(&format!("file '{}'\n", f.display()));
        }
        let list_path = dir.path().join("list.txt");
        std::fs::write(&list_path, list)?;
        let out = dir.path().join("concat.mp4");
        let t0 = Instant::now();
        let status = Command::new("ffmpeg")
            .args([
                "-nostdin",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "concat",
                "-safe",
                "0",
                "-i",
            ])
            .arg(&list_path)
            .args(["-c", "copy"])
            .arg(&out)
            .status()?;
        let ffmpeg_seconds = t0.elapsed().as_secs_f64();
        if !status.success() {
            bail!("ffmpeg concat failed");
        }
        println!("| footage | clip size | first byte (warm) | full clip (warm) | ffmpeg concat -c copy | speed-up |");
        println!("|---|---|---|---|---|---|");
        println!(
            "| {seconds} s | {:.2} GB | {best_ttfb:.1} ms | {best_rate:.2} GB/s ({our_seconds:.2} s) | {ffmpeg_seconds:.2} s | {:.0}x |",
            size as f64 / 1e9,
            ffmpeg_seconds / our_seconds
        );
        Ok(())
    })();
    signal(&daemon, libc::SIGTERM);
    daemon.wait()?;
    result
}

/// The `n`-th value after `marker` up to the next quote.
fn json_field(body: &str, marker: &str, n: usize) -> Option<String> {
    let start = body.match_indices(marker).nth(n - 1)?.0 + marker.len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_string())
}

/// GET; returns the time to the first response byte, the body length, and
/// (when `keep`) the body. Timed runs discard the body as it arrives.
fn http_request(port: u16, path: &str, keep: bool) -> anyhow::Result<(Duration, usize, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    let t0 = Instant::now();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = stream.read(&mut buf)?;
    let first_byte = t0.elapsed();
    let mut head = Vec::new();
    let mut body = Vec::new();
    let mut body_len = 0;
    let mut in_body = false;
    while n > 0 {
        let chunk = &buf[..n];
        if in_body {
            body_len += n;
            if keep {
                body.extend_from_slice(chunk);
            }
        } else {
            head.extend_from_slice(chunk);
            if let Some(split) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                in_body = true;
                if !head.starts_with(b"HTTP/1.1 200") {
                    bail!("GET {path}: {}", String::from_utf8_lossy(&head));
                }
                let rest = head.split_off(split + 4);
                body_len += rest.len();
                if keep {
                    body.extend_from_slice(&rest);
                }
            }
        }
        n = stream.read(&mut buf)?;
    }
    Ok((first_byte, body_len, body))
}
