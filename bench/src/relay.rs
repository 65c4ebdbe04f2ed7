//! `--relay`: request-to-decision latency of the relay API over mutual TLS,
//! against the real daemon binary on 127.0.0.1, under concurrent load.
//!
//! Setup (untimed): a fresh agency PKI (tests/support/pki.rs, rcgen), a
//! config in a temporary directory with one camera (`sharing =
//! "on_request"`, a location; `enabled = false` with its RTSP URL on an
//! unused port, so nothing is recorded and ingest costs nothing: recording
//! is not what is measured), `[relay] calls_per_minute = 100000` and
//! `[policy] requests_per_agency_per_day = 1000`. Every client thread has
//! its own agency certificates (distinct subject O) and switches to a fresh
//! one every [`POSTS_PER_AGENCY`] requests, and every request has its own
//! case id, so neither the daily nor the per-case limit is ever reached and
//! every `POST` goes the whole way: validate → decide → record → answer.
//!
//! For each connection mode and thread count N, N threads first warm up,
//! then, all starting together, time one call after another in three
//! phases: `GET /v1/device` (the baseline: TLS, HTTP, routing and rate
//! limit, no decision, no database), `POST /v1/requests` (a consent request
//! for the camera: it waits for the owner, so it is recorded and audited),
//! and `GET /v1/requests/{id}` on the requests the thread made. The ratios
//! to the baseline isolate the cost of the gate and the stores.
//!
//! - new connection: TCP connect + TLS 1.3 handshake with the client
//!   certificate + one request with `Connection: close`, all timed: what a
//!   relay that does not pool pays per call;
//! - keep-alive: one TLS connection per thread, opened before the timing,
//!   many HTTP/1.1 requests on it: what a pooling relay pays.
//!
//! The client is the reference relay client of the tests
//! (tests/support/relay_client.rs: rustls, ring, TLS 1.3, the device
//! certificate pinned), with its own small keep-alive HTTP/1.1 framing here.
//! Clients and daemon share the machine's cores: figures, not pass/fail.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::latency::{show, Summary};
use crate::pki::{TestPki, Validity};
use crate::relay_client::{footage_request, Basis, RelayClient, TlsStream};

/// The product target for one HTTP round trip.
const TARGET_P99: Duration = Duration::from_millis(5);
/// Requests per agency certificate, below the owner's daily maximum (1000).
const POSTS_PER_AGENCY: usize = 900;
/// Untimed rounds (one call of each kind) per thread before each row.
const WARMUP_ROUNDS: usize = 10;
/// A phase stops calling after this many failed calls in one thread.
const MAX_ERRORS: usize = 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    NewConnection,
    KeepAlive,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::NewConnection => "new TLS connection per call",
            Mode::KeepAlive => "keep-alive (1 connection per thread)",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Call {
    Device,
    Create,
    Status,
}

const PHASES: [Call; 3] = [Call::Device, Call::Create, Call::Status];

impl Call {
    fn label(self) -> &'static str {
        match self {
            Call::Device => "GET /v1/device (baseline)",
            Call::Create => "POST /v1/requests",
            Call::Status => "GET /v1/requests/{id}",
        }
    }
}

/// One (mode, threads) row set: a result per phase.
struct Row {
    mode: Mode,
    threads: usize,
    phases: Vec<PhaseResult>,
}

struct PhaseResult {
    call: Call,
    summary: Option<Summary>,
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    wall: Duration,
    daemon_cpu_s: f64,
}

/// Runs the whole benchmark (see the module docs).
pub fn run(porchlight: &Path, threads: &[usize], calls: usize) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build of the benchmark; its client side is slow. Use --release.");
    }
    let threads: Vec<usize> = threads.iter().copied().filter(|&n| n > 0).collect();
    if threads.is_empty() || calls == 0 {
        bail!("--relay-threads and --relay-calls must be positive");
    }
    let dir = tempfile::Builder::new()
        .prefix("porchlight-relay-bench-")
        .tempdir_in(crate::bench_dir())?;
    let pki = TestPki::generate(&dir.path().join("pki"));
    let mut daemon = Daemon::start(porchlight, dir.path(), &pki)?;
    let result = run_rows(&daemon, &pki, &threads, calls);
    let log = daemon.stop();
    let rows = result?;

    let age = std::fs::metadata(porchlight)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .map(|age| format!(", built {} min ago", age.as_secs() / 60))
        .unwrap_or_default();
    println!(
        "\nrelay API over mutual TLS (TLS 1.3, P-256 certificates) on 127.0.0.1; daemon {}{age}; \
         data dir on {}; {calls} timed calls per endpoint per row, split across the threads",
        porchlight.display(),
        filesystem_of(dir.path()),
    );
    print_table(&rows);
    println!("\n{}", verdict(&rows));
    let noteworthy: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    if !noteworthy.is_empty() {
        println!(
            "\ndaemon log: {} warning/error lines, first: {}",
            noteworthy.len(),
            noteworthy[0]
        );
    }
    Ok(())
}

fn run_rows(
    daemon: &Daemon,
    pki: &TestPki,
    threads: &[usize],
    calls: usize,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut row_index = 0;
    for mode in [Mode::NewConnection, Mode::KeepAlive] {
        for &n in threads {
            row_index += 1;
            let row = run_row(daemon, pki, mode, n, calls.div_ceil(n), row_index)?;
            for phase in &row.phases {
                eprintln!(
                    "{} x{n}: {}: {} ok, {} errors{}",
                    mode.label(),
                    phase.call.label(),
                    phase.ok,
                    phase.errors,
                    phase
                        .summary
                        .map(|s| format!(", p99 {} ms", ms(s.p99)))
                        .unwrap_or_default(),
                );
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The daemon under test, with the relay listener on.
struct Daemon {
    child: Child,
    addr: SocketAddr,
    device_cert_pem: String,
    log_path: PathBuf,
}

impl Daemon {
    fn start(porchlight: &Path, dir: &Path, pki: &TestPki) -> anyhow::Result<Daemon> {
        let relay_port = crate::free_port()?;
        let http_port = crate::free_port()?;
        let data_dir = dir.join("data");
        let config = format!(
            "data_dir = \"{}\"\n\
             [http]\nbind = \"127.0.0.1:{http_port}\"\n\
             [retention]\nmin_free = \"100MB\"\n\
             [relay]\nlisten = \"127.0.0.1:{relay_port}\"\nagency_ca = \"{}\"\ncalls_per_minute = 100000\n\
             [policy]\nrequests_per_agency_per_day = 1000\n\
             [[cameras]]\nname = \"porch\"\n\
             # Not recorded: the relay path is what is measured.\n\
             url = \"rtsp://127.0.0.1:9/unused\"\nenabled = false\n\
             sharing = \"on_request\"\nlocation = {{ lat = 32.7767, lon = -96.7970 }}\n",
            data_dir.display(),
            pki.agency_ca_path.display(),
        );
        let config_path = dir.join("config.toml");
        std::fs::write(&config_path, config)?;
        let log_path = dir.join("daemon.log");
        let child = Command::new(porchlight)
            .args(["run", "--config"])
            .arg(&config_path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path)?)
            .spawn()
            .with_context(|| format!("start {}", porchlight.display()))?;
        let mut daemon = Daemon {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], relay_port)),
            device_cert_pem: String::new(),
            log_path,
        };
        // The device certificate appears when the daemon has its key; the
        // listener is up when an agency call is answered.
        let cert_path = data_dir.join("device-cert.pem");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = daemon.child.try_wait()? {
                bail!(
                    "the daemon exited ({status}) before the relay answered:\n{}",
                    std::fs::read_to_string(&daemon.log_path).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                daemon.stop();
                bail!("the relay listener did not answer within 30 s");
            }
            if let Ok(pem) = std::fs::read_to_string(&cert_path) {
                let client = RelayClient::new(daemon.addr, &pem, Some(pki.client.pem_pair()))?;
                if client.get("/v1/device", &[]).is_ok_and(|r| r.status == 200) {
                    daemon.device_cert_pem = pem;
                    return Ok(daemon);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn cpu_seconds(&self) -> f64 {
        crate::cpu_seconds(self.child.id()).unwrap_or(f64::NAN)
    }

    /// Stops the daemon; returns its log.
    fn stop(&mut self) -> String {
        crate::signal(&self.child, libc::SIGTERM);
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

/// One (mode, N) row: N threads, `calls` timed calls each per phase.
fn run_row(
    daemon: &Daemon,
    pki: &TestPki,
    mode: Mode,
    threads: usize,
    calls: usize,
    row: usize,
) -> anyhow::Result<Row> {
    // Enough agencies per thread that none reaches the daily limit.
    let agencies_per_thread = (WARMUP_ROUNDS + calls).div_ceil(POSTS_PER_AGENCY);
    let mut workers = Vec::with_capacity(threads);
    for t in 0..threads {
        let mut agencies = Vec::with_capacity(agencies_per_thread);
        for k in 0..agencies_per_thread {
            let name = format!("Bench Agency {row}-{t}-{k}");
            let identity = pki.issue_agency_client(
                &format!("bench-{row}-{t}-{k}"),
                Some(&name),
                "Bench Officer",
                Validity::Current,
            );
            let client = RelayClient::new(
                daemon.addr,
                &daemon.device_cert_pem,
                Some(identity.pem_pair()),
            )?
            .with_timeout(Duration::from_secs(30));
            agencies.push((client, name));
        }
        workers.push(Worker {
            mode,
            agencies,
            current: 0,
            posts_on_current: 0,
            ids: Vec::new(),
            conn: None,
            case_prefix: format!("bench-{row}-{t}"),
            cases: 0,
        });
    }

    let barrier = Barrier::new(threads + 1);
    let (samples, marks) = std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .into_iter()
            .map(|mut worker| {
                let barrier = &barrier;
                scope.spawn(move || worker.run(barrier, calls))
            })
            .collect();
        // Phase boundaries as the threads see them: all start together, a
        // phase ends when the slowest thread is done.
        let mut marks = Vec::with_capacity(PHASES.len() + 1);
        for _ in 0..=PHASES.len() {
            barrier.wait();
            marks.push((Instant::now(), daemon.cpu_seconds()));
        }
        let samples: Vec<ThreadSamples> = handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect();
        (samples, marks)
    });

    let mut phases = Vec::new();
    for (p, &call) in PHASES.iter().enumerate() {
        let mut durations: Vec<Duration> = samples
            .iter()
            .flat_map(|s| s.phases[p].durations.iter().copied())
            .collect();
        let errors = samples.iter().map(|s| s.phases[p].errors).sum();
        let first_error = samples.iter().find_map(|s| s.phases[p].first_error.clone());
        phases.push(PhaseResult {
            call,
            ok: durations.len(),
            summary: (!durations.is_empty()).then(|| Summary::of(&mut durations)),
            errors,
            first_error,
            wall: marks[p + 1].0 - marks[p].0,
            daemon_cpu_s: marks[p + 1].1 - marks[p].1,
        });
    }
    Ok(Row {
        mode,
        threads,
        phases,
    })
}

#[derive(Default)]
struct PhaseSamples {
    durations: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
}

struct ThreadSamples {
    phases: Vec<PhaseSamples>,
}

/// One client thread.
struct Worker {
    mode: Mode,
    /// Its agency certificates (client, agency name), used one after another.
    agencies: Vec<(RelayClient, String)>,
    current: usize,
    posts_on_current: usize,
    /// Requests made with the current certificate (only it may read them).
    ids: Vec<String>,
    /// The kept-alive connection (keep-alive mode).
    conn: Option<Conn>,
    case_prefix: String,
    cases: usize,
}

impl Worker {
    /// Warm-up, then the timed phases between the barrier's waits (which
    /// it always reaches, errors or not, so no thread is left waiting).
    fn run(&mut self, barrier: &Barrier, calls: usize) -> ThreadSamples {
        for _ in 0..WARMUP_ROUNDS {
            for call in PHASES {
                let _ = self.call(call, 0);
            }
        }
        let mut phases = Vec::new();
        barrier.wait();
        for call in PHASES {
            let mut samples = PhaseSamples {
                durations: Vec::with_capacity(calls),
                ..PhaseSamples::default()
            };
            for i in 0..calls {
                match self.call(call, i) {
                    Ok(elapsed) => samples.durations.push(elapsed),
                    Err(e) => {
                        samples.errors += 1;
                        samples.first_error.get_or_insert_with(|| format!("{e:#}"));
                        self.conn = None;
                        if samples.errors >= MAX_ERRORS {
                            break;
                        }
                    }
                }
            }
            phases.push(samples);
            barrier.wait();
        }
        ThreadSamples { phases }
    }

    /// One call; returns the time from the start of the connection (new
    /// connection) or of the request (keep-alive) to the last byte of the
    /// response. Bodies are made before and parsed after the timing.
    fn call(&mut self, call: Call, i: usize) -> anyhow::Result<Duration> {
        if call == Call::Create && self.posts_on_current == POSTS_PER_AGENCY {
            // A fresh agency before this one nears the daily limit.
            self.current += 1;
            self.posts_on_current = 0;
            self.ids.clear();
            self.conn = None;
        }
        let (client, agency) = self
            .agencies
            .get(self.current)
            .context("out of agency certificates")?;
        let host = client.addr();
        let message = match call {
            Call::Device => get_message(host, "/v1/device", self.mode),
            Call::Status => {
                let id = self
                    .ids
                    .get(i % self.ids.len().max(1))
                    .context("no request to read")?;
                get_message(host, &format!("/v1/requests/{id}"), self.mode)
            }
            Call::Create => {
                self.cases += 1;
                let case = format!("{}-{}", self.case_prefix, self.cases);
                let body = footage_request()
                    .agency(agency)
                    .case_id(&case)
                    .basis(Basis::Consent)
                    .to_json();
                post_message(host, "/v1/requests", &serde_json::to_vec(&body)?, self.mode)
            }
        };
        if self.mode == Mode::KeepAlive && self.conn.is_none() {
            self.conn = Some(Conn::new(client.connect()?));
        }

        let started = Instant::now();
        let response = match self.mode {
            Mode::NewConnection => {
                let mut conn = Conn::new(client.connect()?);
                conn.exchange(&message)?
            }
            Mode::KeepAlive => {
                let conn = self.conn.as_mut().expect("connected above");
                conn.exchange(&message)?
            }
        };
        let elapsed = started.elapsed();

        if response.close && self.mode == Mode::KeepAlive {
            self.conn = None;
        }
        let expected = if call == Call::Create { 201 } else { 200 };
        if response.status != expected {
            bail!(
                "{}: status {}: {}",
                call.label(),
                response.status,
                String::from_utf8_lossy(&response.body)
            );
        }
        if call == Call::Create {
            let body: serde_json::Value = serde_json::from_slice(&response.body)?;
            let id = body["id"].as_str().context("no id in the answer")?;
            self.ids.push(id.to_string());
            self.posts_on_current += 1;
        }
        Ok(elapsed)
    }
}

fn get_message(host: SocketAddr, path: &str, mode: Mode) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{}\r\n", close(mode)).into_bytes()
}

fn post_message(host: SocketAddr, path: &str, body: &[u8], mode: Mode) -> Vec<u8> {
    let mut message = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
        body.len(),
        close(mode)
    )
    .into_bytes();
    message.extend_from_slice(body);
    message
}

fn close(mode: Mode) -> &'static str {
    match mode {
        Mode::NewConnection => "Connection: close\r\n",
        Mode::KeepAlive => "",
    }
}

/// A TLS connection with HTTP/1.1 framing for one request at a time.
struct Conn {
    stream: TlsStream,
    buf: Vec<u8>,
}

struct Answer {
    status: u16,
    body: Vec<u8>,
    /// The server will close the connection after this answer.
    close: bool,
}

impl Conn {
    fn new(stream: TlsStream) -> Conn {
        Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Sends one request and reads its response (framed by Content-Length).
    fn exchange(&mut self, message: &[u8]) -> anyhow::Result<Answer> {
        self.stream.write_all(message)?;
        self.stream.flush()?;
        let head_end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            self.fill()?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).context("response head")?;
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("status line of {head:?}"))?;
        let mut length = None;
        let mut close = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>()?);
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                bail!("unexpected Transfer-Encoding: {value}");
            }
        }
        let length = length.context("response without Content-Length")?;
        while self.buf.len() < head_end + length {
            self.fill()?;
        }
        let body = self.buf[head_end..head_end + length].to_vec();
        self.buf.drain(..head_end + length);
        Ok(Answer {
            status,
            body,
            close,
        })
    }

    fn fill(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            bail!("the server closed the connection mid-response");
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn print_table(rows: &[Row]) {
    println!("\n| connection | threads | call | calls | p50 ms | p90 ms | p99 ms | max ms | calls/s | daemon CPU per call | p50 ÷ baseline | p99 ÷ baseline |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let baseline = row.phases[0].summary;
        for phase in &row.phases {
            let (p50, p90, p99, max) = match phase.summary {
                Some(s) => (ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max)),
                None => ("-".into(), "-".into(), "-".into(), "-".into()),
            };
            let ratio = |pick: fn(&Summary) -> Duration| match (phase.summary, baseline) {
                (Some(s), Some(b)) if phase.call != Call::Device => format!(
                    "{:.1}",
                    pick(&s).as_secs_f64() / pick(&b).as_secs_f64().max(1e-12)
                ),
                _ => "1".into(),
            };
            let errors = if phase.errors > 0 {
                format!(" ({} failed)", phase.errors)
            } else {
                String::new()
            };
            let per_call_cpu = phase.daemon_cpu_s / phase.ok.max(1) as f64;
            println!(
                "| {} | {} | {} | {}{errors} | {p50} | {p90} | {p99} | {max} | {:.0} | {} | {} | {} |",
                row.mode.label(),
                row.threads,
                phase.call.label(),
                phase.ok,
                phase.ok as f64 / phase.wall.as_secs_f64().max(1e-9),
                show(Duration::from_secs_f64(per_call_cpu.max(0.0))),
                ratio(|s| s.p50),
                ratio(|s| s.p99),
            );
        }
    }
    for row in rows {
        for phase in &row.phases {
            if let Some(e) = &phase.first_error {
                println!(
                    "first failure, {} x{}, {}: {e}",
                    row.mode.label(),
                    row.threads,
                    phase.call.label()
                );
            }
        }
    }
}

/// One line against the 5 ms p99 target, for the calls that decide and
/// record (`POST` and `GET /v1/requests...`), per mode and thread count.
fn verdict(rows: &[Row]) -> String {
    let mut parts = Vec::new();
    for mode in [Mode::KeepAlive, Mode::NewConnection] {
        let mut met = Vec::new();
        let mut missed = Vec::new();
        for row in rows.iter().filter(|r| r.mode == mode) {
            let worst = row
                .phases
                .iter()
                .filter(|p| p.call != Call::Device)
                .map(|p| {
                    let p99 = p.summary.map(|s| s.p99).unwrap_or(Duration::MAX);
                    (if p.errors > 0 { Duration::MAX } else { p99 }, p.call)
                })
                .max_by_key(|(p99, _)| *p99);
            match worst {
                Some((p99, _)) if p99 <= TARGET_P99 => met.push(row.threads.to_string()),
                Some((p99, call)) => missed.push(format!(
                    "{} ({} p99 {})",
                    row.threads,
                    call.label(),
                    if p99 == Duration::MAX {
                        "n/a: failed calls".into()
                    } else {
                        format!("{} ms", ms(p99))
                    }
                )),
                None => {}
            }
        }
        let mut text = format!("{}: ", mode.label());
        if !met.is_empty() {
            text.push_str(&format!("met at {} threads", met.join(", ")));
        }
        if !missed.is_empty() {
            if !met.is_empty() {
                text.push_str("; ");
            }
            text.push_str(&format!("missed at {}", missed.join(", ")));
        }
        parts.push(text);
    }
    format!(
        "verdict, p99 ≤ {} ms per HTTP round trip (POST and GET /v1/requests): {}",
        TARGET_P99.as_millis(),
        parts.join(" | ")
    )
}

/// Milliseconds, to the microsecond.
fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

/// The file system type of the mount holding `path` (fsync cost depends on it).
fn filesystem_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, mount, fs) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(mount)
                .then(|| (mount.len(), format!("{fs} ({mount})")))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, fs)| fs)
        .unwrap_or_else(|| "an unknown file system".into())
}
