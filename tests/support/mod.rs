//! Shared helpers for the integration tests: the real `porchlight` binary as
//! a subprocess, plain HTTP over a real socket, ffprobe on what it wrote.
#![allow(dead_code)]

pub mod pki;
pub mod reference_relay;
pub mod relay_client;
pub mod soak;
pub mod ws;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_porchlight");

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Polls `condition` until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// Like [`wait_until`], but a timeout also prints what `explain` says
/// (the daemon's log and figures), so a failure in CI can be diagnosed.
pub fn wait_until_or_explain(
    timeout: Duration,
    what: &str,
    mut condition: impl FnMut() -> bool,
    explain: impl FnOnce() -> String,
) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "timed out after {timeout:?} waiting for {what}\n{}",
        explain()
    );
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// GET over a plain TCP socket; returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_send(addr, "GET", path, None)
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size_line, after)) = rest.split_once("\r\n") else {
            return body.to_string();
        };
        let Ok(size) = usize::from_str_radix(size_line.trim(), 16) else {
            return body.to_string();
        };
        if size == 0 {
            return out;
        }
        if after.len() < size {
            return body.to_string();
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
}

/// The value of one sample in Prometheus text, e.g.
/// `metric(&text, "porchlight_frames_total", &[("camera", "a")])`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric_name, label_text) = match series.split_once('{') {
                Some((n, l)) => (n, l.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric_name != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| label_text.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
            all.then(|| value.parse().ok()).flatten()
        })
}

/// A running daemon; killed on drop.
pub struct Daemon {
    pub child: Child,
    pub http: SocketAddr,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
}

impl Daemon {
    /// Writes `config` (which must use `{HTTP}` where the bind address goes)
    /// and starts `porchlight run`, waiting until /healthz answers.
    pub fn start(dir: &Path, config: &str) -> Daemon {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let config_path = dir.join("config.toml");
        std::fs::write(&config_path, config.replace("{HTTP}", &http.to_string()))
            .expect("write config");
        Daemon::start_with(config_path, http, dir)
    }

    /// Starts (again) with an existing config file and HTTP address.
    pub fn start_with(config_path: PathBuf, http: SocketAddr, dir: &Path) -> Daemon {
        let log_path = dir.join(format!(
            "daemon-{}.log",
            Instant::now().elapsed().as_nanos() ^ rand_suffix()
        ));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config_path)
            .env("RUST_LOG", "info,porchlight=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn porchlight");
        let mut daemon = Daemon {
            child,
            http,
            config_path,
            log_path,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((200, _)) = http_get(http, "/healthz") {
                return daemon;
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("daemon exited early ({status}):\n{}", daemon.log());
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not come up:\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn metrics(&self) -> String {
        http_get(self.http, "/metrics")
            .map(|r| r.1)
            .unwrap_or_default()
    }

    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric(&self.metrics(), name, labels).unwrap_or(0.0)
    }

    pub fn cameras(&self) -> serde_json::Value {
        let (status, body) = http_get(self.http, "/api/cameras").expect("GET /api/cameras");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("cameras JSON")
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) -> String {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = self.log();
                assert!(status.success(), "daemon exited with {status}:\n{log}");
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not stop:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: a crash or power cut, as far as the process can tell.
    pub fn kill9(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log()
    }
}

impl Daemon {
    /// Stops the daemon, lets `edit` change its config file, and starts it
    /// again on the same config and HTTP address.
    pub fn restart_with(self, edit: impl FnOnce(&Path)) -> Daemon {
        let config_path = self.config_path.clone();
        let http = self.http;
        let log_dir = self
            .log_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        self.stop();
        edit(&config_path);
        Daemon::start_with(config_path, http, &log_dir)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Runs a porchlight subcommand; returns (exit code, stdout, stderr).
pub fn porchlight(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run porchlight");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// All segment files under a data dir, sorted by name (= by id).
pub fn segment_files(data_dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![data_dir.join("recordings")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "mp4") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// What ffprobe reads in one file.
#[derive(Debug, Default)]
pub struct Probe {
    pub video_codec: String,
    pub video_frames: u64,
    /// Seconds, as ffprobe computes it from the sample durations.
    pub video_duration: f64,
    /// Seconds; negative when an edit list trims frames before the start.
    pub video_start: f64,
    pub width: u64,
    pub height: u64,
    pub audio_codec: Option<String>,
}

pub fn ffprobe(path: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_type,codec_name,nb_read_frames,width,height,duration,start_time",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe must be installed (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "ffprobe failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "ffprobe complained about {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let mut probe = Probe::default();
    for stream in json["streams"].as_array().into_iter().flatten() {
        match stream["codec_type"].as_str() {
            Some("video") => {
                probe.video_codec = stream["codec_name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                probe.video_frames = stream["nb_read_frames"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                probe.video_duration = stream["duration"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0.0);
                probe.video_start = stream["start_time"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0.0);
                probe.width = stream["width"].as_u64().unwrap_or(0);
                probe.height = stream["height"].as_u64().unwrap_or(0);
            }
            Some("audio") => probe.audio_codec = stream["codec_name"].as_str().map(str::to_string),
            _ => {}
        }
    }
    probe
}

/// Decodes a file fully; returns ffmpeg's error output (empty when clean).
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg must be installed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Opens the recording index read-only.
pub fn index(data_dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        data_dir.join("index.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open index")
}

/// The GStreamer RTSP server from tests/support/gst_rtsp_server.py.
pub struct GstServer {
    child: Child,
    pub base: String,
}

impl GstServer {
    pub fn start(extra_args: &[&str]) -> GstServer {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/support/gst_rtsp_server.py");
        let python =
            std::env::var("PORCHLIGHT_SYSTEM_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
        let child = Command::new(python)
            .arg(&script)
            .args(["--port", "0"])
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect(
                "start the GStreamer RTSP server (needs Debian's python3-gi and gst-rtsp-server)",
            );
        // Owned by the guard from here on, so any panic below still stops it.
        let mut server = GstServer {
            child,
            base: String::new(),
        };
        let stdout = server.child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            line.clear();
            let n = reader.read_line(&mut line).expect("read server output");
            assert!(n > 0, "GStreamer server exited before READY");
            if let Some(url) = line.trim().strip_prefix("READY ") {
                server.base = url.trim_end_matches('/').to_string();
                // Keep draining stdout so the server never blocks on a full pipe.
                std::thread::spawn(move || {
                    let mut sink = String::new();
                    while reader.read_line(&mut sink).unwrap_or(0) > 0 {
                        sink.clear();
                    }
                });
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "GStreamer server did not print READY"
            );
        }
    }

    pub fn url(&self, mount: &str) -> String {
        format!("{}/{}", self.base, mount.trim_start_matches('/'))
    }
}

impl Drop for GstServer {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw HTTP/1.1 GET with extra headers; returns (status, head, body bytes).
/// Chunked bodies (streamed evidence packages) are decoded.
pub fn http_get_bytes(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let mut body = response[split + 4..].to_vec();
    if header_value(&head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk_bytes(&body);
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head, body)
}

/// Decodes a chunked body; panics on a malformed or truncated one (a
/// stream the daemon aborted mid-way must fail the test).
fn dechunk_bytes(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = String::from_utf8_lossy(&raw[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
        raw = &raw[line_end + 2..];
        if size == 0 {
            return body;
        }
        assert!(
            raw.len() >= size + 2,
            "body ends inside a chunk (stream aborted)"
        );
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// A header's value from a response head.
pub fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// The simulated camera on a free loopback port, no login.
pub async fn simcam(clip: porchlight_simcam::Clip, audio: bool) -> porchlight_simcam::SimCam {
    simcam_at("127.0.0.1:0".parse().expect("addr"), clip, audio).await
}

/// The simulated camera on a given address, e.g. the port of one that was
/// shut down (a camera coming back after losing power).
pub async fn simcam_at(
    listen: SocketAddr,
    clip: porchlight_simcam::Clip,
    audio: bool,
) -> porchlight_simcam::SimCam {
    porchlight_simcam::SimCam::start(porchlight_simcam::SimCamConfig {
        listen,
        clip,
        audio,
        auth: None,
    })
    .await
    .expect("start the simulated camera")
}

/// A daemon that has recorded the simulated camera ("porch", SD with AAC).
pub struct Recorded {
    pub dir: tempfile::TempDir,
    pub daemon: Daemon,
    pub cam: porchlight_simcam::SimCam,
    /// UTC µs of the first recorded frame.
    pub first_us: i64,
}

/// Records at least `seconds` of the simulated camera; `extra_config` is
/// added as TOML before the camera table.
pub async fn record(seconds: f64, extra_config: &str, max_bytes: &str) -> Recorded {
    record_camera(seconds, extra_config, max_bytes, "").await
}

/// As [`record`], with `camera_config` added to the camera's table
/// (sharing level, location, ...).
pub async fn record_camera(
    seconds: f64,
    extra_config: &str,
    max_bytes: &str,
    camera_config: &str,
) -> Recorded {
    let dir = tempfile::tempdir().expect("tempdir");
    let cam = simcam(porchlight_simcam::Clip::Sd, true).await;
    let text = format!(
        "data_dir = \"{}\"\n[http]\nbind = \"{{HTTP}}\"\n[retention]\nmin_free = \"100MB\"\nmax_bytes = \"{max_bytes}\"\n[storage]\nsegment_duration = \"4s\"\n{extra_config}\n\
         [[cameras]]\nname = \"porch\"\nurl = \"{}\"\n{camera_config}\n",
        dir.path().join("data").display(),
        cam.url("porch")
    );
    let daemon = tokio::task::block_in_place(|| Daemon::start(dir.path(), &text));
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(60), "footage to accumulate", || {
            daemon.metric(
                "porchlight_frames_total",
                &[("camera", "porch"), ("stream", "main")],
            ) >= seconds * 30.0
        })
    });
    let (status, body) =
        http_get(daemon.http, "/api/cameras/porch/recordings").expect("recordings");
    assert_eq!(status, 200, "{body}");
    let coverage: serde_json::Value = serde_json::from_str(&body).expect("json");
    let first = coverage["spans"][0]["from"]
        .as_str()
        .expect("a span")
        .to_string();
    Recorded {
        dir,
        daemon,
        cam,
        first_us: porchlight::time::parse_utc_us(&first).expect("time"),
    }
}

/// Makes an owner account with `porchlight user add` (the password in a
/// file beside the config): from then on the owner API and pages need a login.
pub fn add_owner_account(config: &Path, user: &str, password: &str) {
    let file = config.with_file_name(format!("{user}.password"));
    std::fs::write(&file, format!("{password}\n")).expect("password file");
    let (code, out, err) = porchlight(&[
        "user",
        "add",
        "--config",
        config.to_str().expect("utf-8"),
        user,
        "--password-file",
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "user add {user}: {out}{err}");
}

/// `Bearer <token>` for the daemon's local CLI token (new at each start).
pub fn cli_bearer(data_dir: &Path) -> String {
    let token = std::fs::read_to_string(data_dir.join("owner-api.token")).expect("CLI token");
    format!("Bearer {}", token.trim())
}

/// Runs `tests/browser/{script}` in Node (headless Chromium through
/// playwright-core) with `env` and `args`; returns the one JSON line it prints.
pub fn run_browser_script<A: AsRef<std::ffi::OsStr>>(
    script: &str,
    env: &[(&str, &str)],
    args: &[A],
) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/browser")
        .join(script);
    let output = Command::new("node")
        .envs(env.iter().copied())
        .arg(path)
        .args(args)
        .output()
        .expect("node must be installed; scripts/test.sh runs npm ci in tests/browser and installs chromium");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "browser run of {script} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("one JSON line")
}

/// Runs `tests/browser/{script}` logged in as `user` (the scripts read
/// PORCHLIGHT_USER and PORCHLIGHT_PASSWORD).
pub fn browser_as_owner<A: AsRef<std::ffi::OsStr>>(
    script: &str,
    user: &str,
    password: &str,
    args: &[A],
) -> serde_json::Value {
    run_browser_script(
        script,
        &[("PORCHLIGHT_USER", user), ("PORCHLIGHT_PASSWORD", password)],
        args,
    )
}

/// A certificate's SHA-256 fingerprint as `openssl x509 -fingerprint`
/// prints it (what a police program would publish).
pub fn openssl_sha256_fingerprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl could not read {}",
        cert.display()
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .rsplit('=')
        .next()
        .expect("value")
        .to_string()
}

/// Plays `url` in headless Chromium for `seconds`; returns what the player
/// reported (`ok`, `currentTime`, `duration`, `width`, `height`, `error`).
pub fn play_in_chromium(url: &str, seconds: f64) -> serde_json::Value {
    run_browser_script(
        "play_clip.mjs",
        &[],
        &[url.to_string(), seconds.to_string()],
    )
}

/// Opens the daemon's `/live` page for `camera` in headless Chromium for
/// `seconds`; returns what the page saw (`framesShown`, `firstFrameMs`,
/// `currentTimes`, `playable`, `codec`, `status`, `snapshotShown`, ...).
pub fn live_in_chromium(http: SocketAddr, camera: &str, seconds: f64) -> serde_json::Value {
    let url = format!("http://{http}/live?camera={camera}");
    run_browser_script("live_view.mjs", &[], &[url, seconds.to_string()])
}

/// Serves the files of `dir` over HTTP on 127.0.0.1 (Python's http.server),
/// for files the daemon does not serve itself; stopped on drop.
pub struct StaticServer {
    child: Child,
    pub addr: SocketAddr,
}

impl StaticServer {
    pub fn start(dir: &Path) -> StaticServer {
        let port = free_port();
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 for a static file server");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        wait_until(Duration::from_secs(10), "the static file server", || {
            TcpStream::connect(addr).is_ok()
        });
        StaticServer { child, addr }
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts each `(path, status, text)`: the daemon answers `status` with a
/// JSON `error` that mentions `text`.
pub fn assert_json_errors(http: SocketAddr, cases: &[(String, u16, &str)]) {
    for (path, expected_status, expected_text) in cases {
        let (status, body) = http_get(http, path).expect("request");
        assert_eq!(status, *expected_status, "{path}: {body}");
        let json: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("JSON error for {path}: {body}"));
        let error = json["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(expected_text),
            "{path}: `{error}` should mention `{expected_text}`"
        );
    }
}

/// Any method with an optional JSON body over a plain TCP socket; returns
/// (status, body). For the owner API's POST endpoints.
pub fn http_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = body.unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, dechunk(&body)))
}

/// The owner's audit log as the owner API gives it, oldest first (up to
/// 1000 entries).
pub fn audit_entries(http: SocketAddr) -> Vec<serde_json::Value> {
    let (status, body) = http_get(http, "/api/audit?limit=1000").expect("GET /api/audit");
    assert_eq!(status, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).expect("audit JSON");
    page["entries"].as_array().cloned().expect("audit entries")
}

/// Debian's Mosquitto on 127.0.0.1 (anonymous, plain), stopped on drop.
pub struct Mosquitto {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        Mosquitto::start_on(free_port())
    }

    /// A broker on `port`: a new one, or one coming back after [`Mosquitto::stop`].
    pub fn start_on(port: u16) -> Mosquitto {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .expect("write mosquitto.conf");
        let child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto must be installed (scripts/test.sh installs it)");
        wait_until(Duration::from_secs(10), "mosquitto to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Mosquitto {
            child,
            port,
            _dir: dir,
        }
    }

    /// Retained and live messages on `topic` for `seconds`: `topic payload` lines.
    pub fn collect(&self, topic: &str, seconds: u32) -> String {
        let out = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-v",
                "-t",
                topic,
            ])
            .args(["-W", &seconds.to_string()])
            .output()
            .expect("mosquitto_sub (mosquitto-clients)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The retained payload of `topic` (empty when none).
    pub fn retained(&self, topic: &str) -> String {
        let out = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-t", topic])
            .args(["--retained-only", "-C", "1", "-W", "2"])
            .output()
            .expect("mosquitto_sub (mosquitto-clients)");
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// Kills the broker (an outage: retained messages are gone with it);
    /// returns its port for [`Mosquitto::start_on`].
    pub fn stop(self) -> u16 {
        self.port
    }

    pub fn publish(&self, topic: &str, payload: &str) {
        let status = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-t",
                topic,
                "-m",
                payload,
            ])
            .status()
            .expect("mosquitto_pub (mosquitto-clients)");
        assert!(status.success(), "mosquitto_pub to {topic}");
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Any request with extra headers and an optional body over a plain TCP
/// socket; returns (status, response head, body). For login, cookies and
/// CSRF headers.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or_default());
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if header_value(head, "transfer-encoding").is_some() {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, head.to_string(), body)
}

/// POSTs `body` as bytes with `Content-Type: content_type`, announcing
/// `Content-Length: declared` (the body's length unless given: a test can
/// claim more than it sends); returns (status, body).
pub fn http_post_bytes(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
    declared: Option<u64>,
) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        declared.unwrap_or(body.len() as u64)
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("send head");
    // A server that refuses on the head alone may close before the body.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if header_value(head, "transfer-encoding").is_some() {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

/// Opens `http://{http}{page}` in headless Chromium: it is sent to the
/// login page, which it fills in (first with `wrong_password`, then with
/// `password`); returns where it landed and what it saw (`finalUrl`,
/// `errorShown`, `session`, `cookieVisibleToScript`, `loginUrl`).
pub fn login_in_chromium(
    http: SocketAddr,
    page: &str,
    user: &str,
    wrong_password: &str,
    password: &str,
) -> serde_json::Value {
    let url = format!("http://{http}{page}");
    run_browser_script(
        "login.mjs",
        &[],
        &[url.as_str(), user, wrong_password, password],
    )
}
