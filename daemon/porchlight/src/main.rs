//! The `porchlight` command.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use porchlight::config::Config;

#[derive(Parser)]
#[command(
    name = "porchlight",
    version,
    about = "Home NVR: records your cameras; you decide what the police can see"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file and print the effective config (secrets masked).
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Verify the recording index against the files on disk (like fsck).
    Check {
        #[arg(long, short)]
        config: PathBuf,
        /// Fix what is found: truncate partial tails, re-index whole
        /// fragments, forget missing files, delete orphans.
        #[arg(long)]
        repair: bool,
    },
    /// Export a time range of one camera as an MP4 file (no re-encoding).
    Export {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        camera: String,
        /// Start, RFC 3339 (e.g. 2026-11-23T21:04:05Z).
        #[arg(long)]
        from: String,
        /// End, RFC 3339.
        #[arg(long)]
        to: String,
        /// Leave the camera's audio out.
        #[arg(long)]
        no_audio: bool,
        /// Write a signed evidence package (tar: ONVIF-format MP4, manifest,
        /// signature, certificate) instead of a plain MP4.
        #[arg(long)]
        evidence: bool,
        /// Who is exporting (recorded in the evidence package).
        #[arg(long, requires = "evidence")]
        operator: Option<String>,
        /// Case or incident number (recorded in the evidence package).
        #[arg(long, requires = "evidence")]
        case_id: Option<String>,
        /// Where to write the clip or package.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Check an evidence package (or a sealed MP4) offline: hashes, the
    /// manifest signature and the signature inside each MP4.
    Verify {
        /// The package (.tar) or MP4 file.
        file: PathBuf,
        /// The device certificate's SHA-256 fingerprint you expect (from the
        /// owner or the registry); without it, any valid signer is reported.
        #[arg(long)]
        expect_fingerprint: Option<String>,
    },
    /// Read and verify the owner's audit log (also while the daemon runs).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The police relay: enrol (pin the agency CA, register the chosen
    /// cameras), status, leave.
    Relay {
        #[command(subcommand)]
        command: RelayCommand,
    },
    /// Police footage requests: list them, approve or deny (through the
    /// running daemon, or on the files when it is not running).
    Requests {
        #[command(subcommand)]
        command: RequestsCommand,
    },
    /// Live shares to the police relay: list the running ones, end one or
    /// all at once (through the running daemon).
    LiveShares {
        #[command(subcommand)]
        command: LiveSharesCommand,
    },
    /// Police-sharing settings: schedules, outside-schedule levels, clip
    /// limits, audio and request limits (through the running daemon).
    Sharing {
        #[command(subcommand)]
        command: SharingCommand,
    },
    /// Find ONVIF cameras on the network and list their streams.
    Discover {
        /// IPv4 address or interface name to search from (repeatable);
        /// default: every non-loopback interface.
        #[arg(long = "interface")]
        interfaces: Vec<String>,
        /// Seconds to wait for answers.
        #[arg(long, default_value_t = 3.0)]
        timeout: f64,
        /// Camera login (ONVIF user), to ask each camera for its streams.
        #[arg(long)]
        user: Option<String>,
        /// Password; or set PORCHLIGHT_ONVIF_PASSWORD (kept out of shell history).
        #[arg(long, requires = "user")]
        password: Option<String>,
    },
    /// Cameras found by the daemon's background discovery: list them, add
    /// one (through the running daemon).
    Cameras {
        #[command(subcommand)]
        command: CamerasCommand,
    },
    /// Health per camera, storage and its forecast, and what is shared with
    /// police: from the running daemon, or from the files when it is down.
    Status {
        #[arg(long, short, default_value = "/etc/porchlight/config.toml")]
        config: PathBuf,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Owner accounts for the owner API and web UI: add, list, remove, passwd.
    /// With at least one account, everything there needs a login.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Record the built-in simulated cameras into a temporary directory.
    Demo(porchlight::demo::DemoArgs),
    /// Benchmark helper: write SECONDS of the simulated clip into the store as
    /// if CAMERA had recorded it (through the real write path).
    #[command(hide = true)]
    BenchFill {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        camera: String,
        #[arg(long)]
        seconds: u64,
        #[arg(long, default_value = "hd")]
        clip: porchlight_simcam::Clip,
    },
    /// Serve the built-in simulated camera over RTSP (for tests and benchmarks).
    Simcam(porchlight_simcam::SimCamArgs),
}

#[derive(Subcommand)]
enum RelayCommand {
    /// Pin the agency's CA certificate (copied to `[relay] agency_ca`) and
    /// record the relay's URL. Prints this box's certificate fingerprint, to
    /// give the agency. The daemon applies it (and logs it) at its next start.
    Enroll {
        #[arg(long, short)]
        config: PathBuf,
        /// PEM file of the agency CA; default: the configured `agency_ca`.
        #[arg(long)]
        agency_ca: Option<PathBuf>,
        /// The relay's https URL.
        #[arg(long)]
        relay_url: Option<String>,
        /// PEM file of the registry's CA (copied to `[relay] registry_ca`).
        #[arg(long)]
        registry_ca: Option<PathBuf>,
    },
    /// Leave the relay program: revoke every grant and token, end live
    /// shares, ask the relay to delete this box's registry entry and any
    /// footage it holds, record its confirmation, wipe the relay credentials.
    Leave {
        #[arg(long, short)]
        config: PathBuf,
        /// Seconds to wait for the relay's confirmation (the daemon keeps
        /// trying after that).
        #[arg(long, default_value_t = 20)]
        wait: u64,
    },
    /// Where this box stands with the relay and its registry.
    Status {
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add an owner account (argon2id-hashed password, at least 10 characters).
    Add {
        #[arg(long, short, default_value = "/etc/porchlight/config.toml")]
        config: PathBuf,
        /// The user name (a-z, 0-9, `.`, `_`, `-`).
        name: String,
        /// Read the password from this file's first line; default: prompt
        /// on a terminal, else the first line of standard input.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List the owner accounts.
    List {
        #[arg(long, short, default_value = "/etc/porchlight/config.toml")]
        config: PathBuf,
    },
    /// Remove an owner account (its sessions end).
    Remove {
        #[arg(long, short, default_value = "/etc/porchlight/config.toml")]
        config: PathBuf,
        name: String,
    },
    /// Set a new password (the account's sessions end).
    Passwd {
        #[arg(long, short, default_value = "/etc/porchlight/config.toml")]
        config: PathBuf,
        name: String,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Print entries, oldest first: who asked for, was given or refused what.
    Show {
        #[arg(long, short)]
        config: PathBuf,
        /// Only entries from this time on: RFC 3339, or a duration back from now (24h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// Only entries about this camera.
        #[arg(long)]
        camera: Option<String>,
        /// Only entries about this request id.
        #[arg(long)]
        request: Option<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check that no entry was edited, removed or reordered; exit 1 naming
    /// each problem if any was.
    Verify {
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum RequestsCommand {
    /// Show requests, newest first, with each camera's outcome.
    List {
        #[arg(long, short)]
        config: PathBuf,
        /// Only requests in this state: pending, approved, partially_approved, denied, expired.
        #[arg(long)]
        state: Option<porchlight::requests::RequestState>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Approve a request: every waiting camera, or only those named; the
    /// window may be trimmed with --from and --to (both, inside the asked one).
    Approve {
        #[arg(long, short)]
        config: PathBuf,
        /// The request id (req_...).
        id: String,
        /// A camera to approve (repeat for more); the others waiting are denied.
        #[arg(long = "camera")]
        cameras: Vec<String>,
        /// Start of the window to share, RFC 3339.
        #[arg(long, requires = "to")]
        from: Option<String>,
        /// End of the window to share, RFC 3339.
        #[arg(long, requires = "from")]
        to: Option<String>,
    },
    /// Deny every camera still waiting, with a reason kept in the audit log.
    Deny {
        #[arg(long, short)]
        config: PathBuf,
        /// The request id (req_...).
        id: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum LiveSharesCommand {
    /// The live shares running now.
    List {
        #[arg(long, short)]
        config: PathBuf,
        /// The daemon's JSON instead of a listing.
        #[arg(long)]
        json: bool,
    },
    /// End a live share (its stream stops within a second), or all of them.
    End {
        #[arg(long, short)]
        config: PathBuf,
        /// The share id (ls_...).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// End every running live share.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum SharingCommand {
    /// Every camera's level, schedule, outside level, clip limit and audio,
    /// and the limits for every request.
    Show {
        #[arg(long, short)]
        config: PathBuf,
        /// The daemon's JSON instead of a listing.
        #[arg(long)]
        json: bool,
    },
    /// Change settings (checked like the config; audited).
    Set(Box<SharingSet>),
}

#[derive(clap::Args)]
struct SharingSet {
    #[arg(long, short)]
    config: PathBuf,
    /// The camera to change; without it --max-clip is the device's limit.
    #[arg(long)]
    camera: Option<String>,
    /// The camera's sharing level.
    #[arg(long)]
    level: Option<String>,
    /// A schedule window such as "mon-fri 22:00-06:00" (repeat for more;
    /// replaces the schedule).
    #[arg(long)]
    schedule: Vec<String>,
    /// No schedule: the level applies at all times.
    #[arg(long, conflicts_with = "schedule")]
    always: bool,
    /// The level outside the schedule.
    #[arg(long = "outside")]
    outside_schedule: Option<String>,
    /// Longest clip: "20m", "1h"; with --camera also "none".
    #[arg(long)]
    max_clip: Option<String>,
    /// Send the camera's audio to police: on or off.
    #[arg(long, value_parser = ["on", "off"])]
    audio: Option<String>,
    #[arg(long)]
    requests_per_case: Option<i64>,
    #[arg(long)]
    requests_per_agency_per_day: Option<i64>,
    /// Longest window a request may ask for, such as "6h".
    #[arg(long)]
    max_window: Option<String>,
    #[arg(long)]
    max_radius_m: Option<i64>,
}

#[derive(Subcommand)]
enum CamerasCommand {
    /// ONVIF devices the daemon has discovered: pending ones, and those that
    /// already are cameras.
    Discovered {
        #[arg(long, short)]
        config: PathBuf,
        /// The daemon's JSON instead of a listing.
        #[arg(long)]
        json: bool,
    },
    /// Add a discovered device as a camera: the daemon asks it for its
    /// streams with this login, saves it and starts recording it.
    Add {
        #[arg(long, short)]
        config: PathBuf,
        /// Its endpoint reference (urn:uuid:..., from `cameras discovered`).
        endpoint: String,
        /// The camera's name (a-z, 0-9, `_`, `-`).
        #[arg(long)]
        name: String,
        /// The camera's ONVIF/RTSP user.
        #[arg(long)]
        user: Option<String>,
        /// A file holding the password; or set PORCHLIGHT_ONVIF_PASSWORD.
        #[arg(long, requires = "user")]
        password_file: Option<PathBuf>,
        /// Profile token of the main stream (default: the camera's first).
        #[arg(long)]
        main_profile: Option<String>,
        /// Profile token of the sub stream (default: none).
        #[arg(long)]
        sub_profile: Option<String>,
    },
}

fn main() -> ExitCode {
    porchlight::allocator::tune_for_long_running_daemon();
    let cli = Cli::parse();
    porchlight::logging::init();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("porchlight")
        .build()
        .context("cannot start the async runtime")
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { config } => {
            let config = Config::load(&config)?;
            let exit =
                runtime()?.block_on(porchlight::daemon::run(config, std::future::pending()))?;
            if exit == porchlight::daemon::Exit::Restart {
                // Same process id (systemd and watchers keep following us);
                // the config is read again.
                use std::os::unix::process::CommandExt as _;
                let mut args = std::env::args_os();
                let mut again = std::process::Command::new("/proc/self/exe");
                if let Some(arg0) = args.next() {
                    again.arg0(arg0);
                }
                let error = again.args(args).exec();
                return Err(error).context("cannot restart in place; start porchlight again");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { config } => {
            let config = Config::load(&config)?;
            print!("{}", config.to_masked_toml());
            if let Some(refusal) = porchlight::http::auth::refusal(
                config.http.bind,
                &porchlight::http::auth::AccountStore::new(&config.data_dir),
                config.http.setup_token,
            ) {
                eprintln!("error: `http.bind`: {refusal}");
                return Ok(ExitCode::FAILURE);
            }
            eprintln!("config OK: {} camera(s)", config.cameras.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config, repair } => {
            let config = Config::load(&config)?;
            let report = porchlight::check::run(&config.data_dir, repair)?;
            for problem in &report.problems {
                println!("{problem}");
            }
            println!(
                "checked {} segments, {} fragments: {}{}",
                report.segments_checked,
                report.fragments_checked,
                if report.problems.is_empty() {
                    "clean".to_string()
                } else {
                    format!("{} problem(s)", report.problems.len())
                },
                if repair && !report.problems.is_empty() {
                    ", repaired"
                } else {
                    ""
                }
            );
            Ok(if report.is_clean() || repair {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Export {
            config,
            camera,
            from,
            to,
            no_audio,
            evidence,
            operator,
            case_id,
            output,
        } => {
            let config = Config::load(&config)?;
            let request = porchlight::export::ClipRequest {
                camera,
                stream: porchlight::config::StreamKind::Main,
                from_us: porchlight::time::parse_utc_us(&from)
                    .map_err(|e| anyhow::anyhow!("--from: {e}"))?,
                to_us: porchlight::time::parse_utc_us(&to)
                    .map_err(|e| anyhow::anyhow!("--to: {e}"))?,
                audio: !no_audio,
                max_duration_us: config.export.max_clip.as_micros() as i64,
            };
            let conn = porchlight::store::open_reader(&config.data_dir).with_context(|| {
                format!(
                    "cannot open the recording index in {}",
                    config.data_dir.display()
                )
            })?;
            if evidence {
                let settings = porchlight::evidence::EvidenceSettings::load(&config)?;
                let package = settings.request(&request, operator, case_id, None);
                let summary = porchlight::evidence::export_to_file(
                    &settings,
                    &conn,
                    &config.data_dir,
                    &request,
                    &package,
                    &output,
                )?;
                eprintln!(
                    "wrote {} ({} bytes): evidence package {}, signed by device {}",
                    output.display(),
                    summary.bytes,
                    summary.manifest.export_id,
                    settings.device.fingerprint()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let clip = porchlight::export::plan_clip(&conn, &config.data_dir, &request)?;
            porchlight::export::write_clip(&clip, &output)?;
            eprintln!("wrote {} ({} bytes)", output.display(), clip.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            file,
            expect_fingerprint,
        } => {
            let report = porchlight::evidence::verify_path(&file, expect_fingerprint.as_deref())
                .with_context(|| format!("cannot read {}", file.display()))?;
            for check in &report.checks {
                let mark = if check.passed { "OK  " } else { "FAIL" };
                println!("{mark} {}: {}", check.subject, check.detail);
            }
            if report.passed() {
                println!("VERIFIED: {} is intact", file.display());
                if expect_fingerprint.is_none() {
                    println!(
                        "note: signed by device {}; without --expect-fingerprint this only proves \
                         the file is unchanged since that device signed it, not which device that is",
                        report.device_fingerprint.as_deref().unwrap_or("(unknown)")
                    );
                }
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "NOT VERIFIED: {} check(s) failed",
                    report.failures().count().max(1)
                );
                Ok(ExitCode::from(1))
            }
        }
        Command::Status { config, json } => {
            let config = Config::load(&config)?;
            let status = porchlight::status::gather(&config, porchlight::time::now_utc_us())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", porchlight::status::render(&status));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { command } => audit(command),
        Command::Requests { command } => requests(command),
        Command::Relay {
            command: RelayCommand::Leave { config, wait },
        } => {
            let config = Config::load(&config)?;
            if !(1..=300).contains(&wait) {
                anyhow::bail!("--wait must be between 1 and 300 seconds");
            }
            let report =
                porchlight::relay::leave::run_cli(&config, std::time::Duration::from_secs(wait))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(if report["deletion"] == "pending" {
                eprintln!("left; the relay has not confirmed the deletion yet: the daemon keeps sending it");
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Relay {
            command: RelayCommand::Status { config },
        } => {
            let config = Config::load(&config)?;
            let membership = porchlight::relay::membership::Membership::load(&config.data_dir);
            let status = porchlight::relay::status(&config, &membership)?;
            println!("{}", serde_json::to_string_pretty(&status)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Relay {
            command:
                RelayCommand::Enroll {
                    config,
                    agency_ca,
                    relay_url,
                    registry_ca,
                },
        } => {
            let config = Config::load(&config)?;
            let (enrolment, registration) = porchlight::relay::enrolment::enroll_with_registry(
                &config,
                agency_ca.as_deref(),
                registry_ca.as_deref(),
                relay_url.as_deref(),
            )?;
            if let Some(registration) = &registration {
                println!(
                    "registry: {} ({}); the daemon registers the shared cameras at its next start and keeps the entry up to date",
                    registration.registry_url,
                    registration
                        .registration_id
                        .as_deref()
                        .map_or("not registered yet".to_string(), |id| format!("registered as {id}"))
                );
            }
            let device = porchlight::evidence::EvidenceSettings::load(&config)?;
            for ca in &enrolment.agency_cas {
                println!("pinned agency CA: {} (sha256 {})", ca.agency, ca.sha256);
            }
            if let Some(url) = &enrolment.relay_url {
                println!("relay: {url}");
            }
            println!(
                "this box: certificate sha256 {} (give it to the agency; it signs every evidence package)",
                device.device.fingerprint()
            );
            println!("restart the daemon to apply; the change goes into the audit log");
            Ok(ExitCode::SUCCESS)
        }
        Command::Discover {
            interfaces,
            timeout,
            user,
            password,
        } => {
            if !(0.1..=60.0).contains(&timeout) {
                anyhow::bail!("--timeout must be between 0.1 and 60 seconds");
            }
            let password = password.or_else(|| std::env::var("PORCHLIGHT_ONVIF_PASSWORD").ok());
            let credentials = user.map(|u| (u, password.unwrap_or_default()));
            let report = runtime()?.block_on(porchlight::onvif::discover_cli::run(
                porchlight::onvif::discover_cli::DiscoverArgs {
                    interfaces,
                    timeout: std::time::Duration::from_secs_f64(timeout),
                    credentials,
                },
            ))?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Cameras { command } => cameras(command),
        Command::LiveShares { command } => live_shares(command),
        Command::Sharing { command } => sharing(command),
        Command::User { command } => user(command),
        Command::Demo(args) => {
            runtime()?.block_on(porchlight::demo::run(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchFill {
            config,
            camera,
            seconds,
            clip,
        } => {
            let config = Config::load(&config)?;
            let bytes =
                runtime()?.block_on(porchlight::fill::fill(config, &camera, seconds, clip))?;
            eprintln!("wrote {seconds} s of footage for {camera} ({bytes} bytes)");
            Ok(ExitCode::SUCCESS)
        }
        Command::Simcam(args) => {
            runtime()?.block_on(porchlight_simcam::run_cli(args))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn audit(command: AuditCommand) -> anyhow::Result<ExitCode> {
    use porchlight::audit::{show, AuditQuery, AuditReader};
    match command {
        AuditCommand::Show {
            config,
            since,
            camera,
            request,
            json,
        } => {
            let config = Config::load(&config)?;
            let since = since
                .map(|text| show::parse_since(&text, porchlight::time::now_utc_us()))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
            let reader = AuditReader::open(&config.data_dir)?;
            let mut query = AuditQuery {
                since,
                camera,
                request_id: request,
                ..AuditQuery::default()
            };
            let mut out = std::io::stdout().lock();
            if !json {
                writeln!(out, "{}", show::TABLE_HEADER)?;
            }
            // A page at a time, so a year of entries never sits in memory.
            loop {
                let page = reader.query(&query)?;
                for entry in &page {
                    if json {
                        serde_json::to_writer(&mut out, entry)?;
                        writeln!(out)?;
                    } else {
                        writeln!(out, "{}", show::table_row(entry))?;
                    }
                }
                match page.last() {
                    Some(last) if page.len() == query.effective_limit() => {
                        query.after_seq = Some(last.seq)
                    }
                    _ => break,
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify { config } => {
            let config = Config::load(&config)?;
            let report = AuditReader::open(&config.data_dir)?.verify();
            for problem in &report.problems {
                println!("{problem}");
            }
            for seq in &report.alerts {
                println!(
                    "note: entry {seq} records tampering found earlier (see `porchlight audit show`)"
                );
            }
            let range = match (report.first_seq, &report.head) {
                (Some(first), Some((last, hash))) => {
                    format!("entries {first}–{last}, head {hash}")
                }
                _ => "no entries".to_string(),
            };
            if report.is_intact() {
                println!("audit log intact: {} entries ({range})", report.entries);
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "audit log DAMAGED: {} problem(s) in {} entries ({range})",
                    report.problems.len(),
                    report.entries
                );
                Ok(ExitCode::from(1))
            }
        }
    }
}

fn requests(command: RequestsCommand) -> anyhow::Result<ExitCode> {
    use porchlight::requests::cli::{self, OwnerAction};
    let (config, action, json) = match command {
        RequestsCommand::List {
            config,
            state,
            json,
        } => (config, OwnerAction::List { state }, json),
        RequestsCommand::Approve {
            config,
            id,
            cameras,
            from,
            to,
        } => (
            config,
            OwnerAction::Approve {
                id,
                cameras,
                from,
                to,
            },
            false,
        ),
        RequestsCommand::Deny { config, id, reason } => {
            (config, OwnerAction::Deny { id, reason }, false)
        }
    };
    let config = Config::load(&config)?;
    let requests = cli::run(&config, &action)?;
    let mut out = std::io::stdout().lock();
    if json {
        for request in &requests {
            serde_json::to_writer(&mut out, request)?;
            writeln!(out)?;
        }
    } else {
        writeln!(out, "{}", cli::TABLE_HEADER)?;
        for request in &requests {
            writeln!(out, "{}", cli::render(request))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn sharing(command: SharingCommand) -> anyhow::Result<ExitCode> {
    use porchlight::controls::cli::{render, set, show, SetArgs};
    let (answer, json) = match command {
        SharingCommand::Show { config, json } => (show(&Config::load(&config)?)?, json),
        SharingCommand::Set(set_args) => {
            let SharingSet {
                config,
                camera,
                level,
                schedule,
                always,
                outside_schedule,
                max_clip,
                audio,
                requests_per_case,
                requests_per_agency_per_day,
                max_window,
                max_radius_m,
            } = *set_args;
            let config = Config::load(&config)?;
            let args = SetArgs {
                camera,
                level,
                schedule,
                always,
                outside_schedule,
                max_clip,
                audio: audio.map(|a| a == "on"),
                requests_per_case,
                requests_per_agency_per_day,
                max_window,
                max_radius_m,
            };
            (set(&config, &args)?, false)
        }
    };
    if json {
        println!("{answer:#}");
    } else {
        println!("{}", render(&answer));
    }
    Ok(ExitCode::SUCCESS)
}

fn live_shares(command: LiveSharesCommand) -> anyhow::Result<ExitCode> {
    use porchlight::live::cli::{render, run, LiveSharesAction};
    match command {
        LiveSharesCommand::List { config, json } => {
            let config = Config::load(&config)?;
            let answer = run(&config, &LiveSharesAction::List)?;
            let shares = answer["live_shares"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if json {
                println!("{answer:#}");
            } else if shares.is_empty() {
                println!("no live share is running");
            } else {
                for share in &shares {
                    println!("{}", render(share));
                }
            }
        }
        LiveSharesCommand::End { config, id, all } => {
            let config = Config::load(&config)?;
            let action = LiveSharesAction::End(if all { None } else { id });
            let answer = run(&config, &action)?;
            let ended = answer["ended"].as_array().cloned().unwrap_or_default();
            if ended.is_empty() {
                println!("no live share was running");
            }
            for share in &ended {
                println!("ended {}", render(share));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn user(command: UserCommand) -> anyhow::Result<ExitCode> {
    use porchlight::http::auth::cli::{run, UserAction};
    let (config, action) = match &command {
        UserCommand::Add {
            config,
            name,
            password_file,
        } => (
            config,
            UserAction::Add {
                name,
                password_file: password_file.as_deref(),
            },
        ),
        UserCommand::List { config } => (config, UserAction::List),
        UserCommand::Remove { config, name } => (config, UserAction::Remove { name }),
        UserCommand::Passwd {
            config,
            name,
            password_file,
        } => (
            config,
            UserAction::Passwd {
                name,
                password_file: password_file.as_deref(),
            },
        ),
    };
    let config = Config::load(config)?;
    println!("{}", run(&config.data_dir, action)?);
    Ok(ExitCode::SUCCESS)
}

fn cameras(command: CamerasCommand) -> anyhow::Result<ExitCode> {
    use porchlight::onboard::cli::{print_discovered, run, CamerasAction};
    match command {
        CamerasCommand::Discovered { config, json } => {
            let config = Config::load(&config)?;
            let answer = run(&config, CamerasAction::Discovered)?;
            if json {
                println!("{answer:#}");
            } else {
                print_discovered(&answer);
            }
        }
        CamerasCommand::Add {
            config,
            endpoint,
            name,
            user,
            password_file,
            main_profile,
            sub_profile,
        } => {
            let config = Config::load(&config)?;
            let password = match password_file {
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?
                        .trim_end_matches(['\r', '\n'])
                        .to_string(),
                ),
                None => std::env::var("PORCHLIGHT_ONVIF_PASSWORD").ok(),
            };
            let answer = run(
                &config,
                CamerasAction::Add {
                    endpoint,
                    name,
                    username: user,
                    password,
                    main_profile,
                    sub_profile,
                },
            )?;
            println!(
                "added camera `{}` ({} {}): main {}{}",
                answer["name"].as_str().unwrap_or_default(),
                answer["manufacturer"].as_str().unwrap_or_default(),
                answer["model"].as_str().unwrap_or_default(),
                answer["url"].as_str().unwrap_or_default(),
                answer["sub_url"]
                    .as_str()
                    .map(|s| format!(", sub {s}"))
                    .unwrap_or_default()
            );
            println!("the daemon restarts in place to record it");
        }
    }
    Ok(ExitCode::SUCCESS)
}
