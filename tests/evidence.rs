//! An investigator needs footage that will stand up in court. The owner
//! exports an evidence package; anyone can check it offline, with
//! `porchlight verify` or with plain OpenSSL, and any changed byte is found
//! and named.

mod support;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{decode_errors, ffprobe, header_value, http_get_bytes, porchlight};

fn url_time(us: i64) -> String {
    porchlight::time::format_utc_us(us)
}

/// A real SNTP server on 127.0.0.1 whose clock runs `offset_s` ahead.
fn time_server(offset_s: f64) -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let port = socket.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            if n < 48 {
                continue;
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs_f64()
                + offset_s
                + 2_208_988_800.0;
            let ntp = ((now.trunc() as u64) << 32) | ((now.fract() * 4_294_967_296.0) as u64);
            let mut reply = [0u8; 48];
            reply[0] = 0b00_100_100; // version 4, server
            reply[1] = 2; // stratum
            reply[24..32].copy_from_slice(&buf[40..48]); // originate = client's transmit
            reply[32..40].copy_from_slice(&ntp.to_be_bytes());
            reply[40..48].copy_from_slice(&ntp.to_be_bytes());
            let _ = socket.send_to(&reply, from);
        }
    });
    port
}

/// The regular files of a tar: (name, data offset, size).
fn tar_entries(bytes: &[u8]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() && bytes[at..at + 512].iter().any(|&b| b != 0) {
        let header = &bytes[at..at + 512];
        let name_end = header[..100].iter().position(|&b| b == 0).unwrap_or(100);
        let name = String::from_utf8_lossy(&header[..name_end]).into_owned();
        let size_text = String::from_utf8_lossy(&header[124..135]).into_owned();
        let size = usize::from_str_radix(size_text.trim_matches(char::from(0)).trim(), 8)
            .expect("octal size");
        out.push((name, at + 512, size));
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

fn entry<'a>(entries: &'a [(String, usize, usize)], suffix: &str) -> &'a (String, usize, usize) {
    entries
        .iter()
        .find(|(name, _, _)| name.ends_with(suffix))
        .unwrap_or_else(|| panic!("no {suffix} in {entries:?}"))
}

fn verify(path: &Path, extra: &[&str]) -> (i32, String) {
    let path = path.to_str().expect("utf-8");
    let mut args = vec!["verify", path];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = porchlight(&args);
    (code, format!("{stdout}{stderr}"))
}

fn openssl(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Writes `bytes` with the byte at `at` changed.
fn flipped(dir: &Path, name: &str, bytes: &[u8], at: usize) -> PathBuf {
    let mut copy = bytes.to_vec();
    copy[at] ^= 0x5a;
    let path = dir.join(name);
    std::fs::write(&path, copy).expect("write");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evidence_package_verifies_offline_and_every_altered_byte_is_named() {
    let ntp_port = time_server(2.5);
    let rec = support::record(
        10.0,
        &format!("[export]\ntime_server = \"127.0.0.1:{ntp_port}\""),
        "1GB",
    )
    .await;
    let dir = rec.dir.path();
    let (from, to) = (rec.first_us + 1_500_000, rec.first_us + 7_500_000);
    let path = format!(
        "/api/cameras/porch/evidence?from={}&to={}&operator=Owner%20Jane&case=DPD-2026-0042",
        url_time(from),
        url_time(to)
    );
    let (status, head, package) =
        tokio::task::block_in_place(|| http_get_bytes(rec.daemon.http, &path, &[]));
    assert_eq!(status, 200, "{head}");
    assert_eq!(
        header_value(&head, "content-type").as_deref(),
        Some("application/x-tar")
    );
    let package_path = dir.join("package.tar");
    std::fs::write(&package_path, &package).expect("write");

    // The export is in the owner's audit log (written as the stream ends).
    let mut export = serde_json::Value::Null;
    tokio::task::block_in_place(|| {
        support::wait_until(
            std::time::Duration::from_secs(10),
            "the export in the audit log",
            || {
                let (_, body) = support::http_get(rec.daemon.http, "/api/audit?camera=porch")
                    .expect("GET /api/audit");
                let audit: serde_json::Value = serde_json::from_str(&body).expect("json");
                if let Some(entry) = audit["entries"]
                    .as_array()
                    .and_then(|e| e.iter().find(|e| e["event"] == "export"))
                {
                    export = entry.clone();
                }
                !export.is_null()
            },
        )
    });
    assert_eq!(export["bytes_served"], package.len() as u64, "{export}");
    assert_eq!(export["details"]["case_id"], "DPD-2026-0042", "{export}");

    // It is an ordinary tar: the system's tar unpacks it.
    let unpacked = dir.join("unpacked");
    std::fs::create_dir(&unpacked).expect("mkdir");
    let tar = Command::new("tar")
        .arg("-xf")
        .arg(&package_path)
        .arg("-C")
        .arg(&unpacked)
        .output()
        .expect("tar");
    assert!(
        tar.status.success(),
        "{}",
        String::from_utf8_lossy(&tar.stderr)
    );
    let folder = std::fs::read_dir(&unpacked)
        .expect("read")
        .next()
        .expect("one folder")
        .expect("entry")
        .path();
    let entries = tar_entries(&package);
    let (mp4_name, mp4_at, mp4_len) = entry(&entries, ".mp4").clone();
    let mp4_path = unpacked.join(&mp4_name);

    // The footage plays in ordinary players from the requested start: the
    // frames back to the keyframe before it are kept (evidence hides
    // nothing) and the edit list places them before time zero.
    let probe = ffprobe(&mp4_path);
    assert_eq!(probe.video_codec, "h264");
    assert_eq!(probe.audio_codec.as_deref(), Some("aac"));
    let frame = 1.0 / 30.0 + 1e-3;
    assert!(
        probe.video_start <= frame,
        "starts at {}",
        probe.video_start
    );
    assert!(
        (probe.video_start + probe.video_duration - 6.0).abs() <= frame,
        "plays {} s after the start for a 6 s request",
        probe.video_start + probe.video_duration
    );
    let errors = decode_errors(&mp4_path);
    assert!(errors.is_empty(), "{errors}");
    let server = support::StaticServer::start(&unpacked);
    let played = tokio::task::block_in_place(|| {
        support::play_in_chromium(&format!("http://{}/{mp4_name}", server.addr), 2.0)
    });
    assert_eq!(
        played["ok"], true,
        "Chromium plays the evidence MP4: {played}"
    );
    drop(server);

    // The manifest says what the investigator needs to know.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["camera"]["name"], "porch");
    assert_eq!(manifest["request"]["case_id"], "DPD-2026-0042");
    assert_eq!(manifest["request"]["operator"], "Owner Jane");
    assert_eq!(manifest["footage"]["from"], url_time(from).as_str());
    assert_eq!(manifest["software"]["name"], "porchlight");
    let offset_us = manifest["clock"]["time_server"]["offset_us"]
        .as_i64()
        .unwrap_or_else(|| panic!("a measured offset: {}", manifest["clock"]));
    assert!(
        (offset_us - 2_500_000).abs() < 100_000,
        "the time server runs 2.5 s ahead; measured {offset_us} µs"
    );
    assert!(manifest["clock"]["kernel"]["synchronized"].is_boolean());
    let listed = manifest["files"].as_array().expect("files");
    assert!(listed.iter().any(
        |f| f["name"] == mp4_name.rsplit('/').next().unwrap_or_default()
            && f["bytes"] == mp4_len as u64
    ));

    // `porchlight verify` passes, pinned to the device's fingerprint.
    let (ok, fingerprint) = openssl(
        &[
            "x509",
            "-in",
            "device-cert.pem",
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
        &folder,
    );
    assert!(ok, "{fingerprint}");
    let fingerprint = fingerprint
        .trim()
        .rsplit('=')
        .next()
        .expect("value")
        .to_string();
    let (code, out) = verify(&package_path, &["--expect-fingerprint", &fingerprint]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("VERIFIED"), "{out}");
    // Another device's fingerprint is not accepted.
    let (code, out) = verify(&package_path, &["--expect-fingerprint", &"ab".repeat(32)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL device identity"), "{out}");

    // Plain OpenSSL checks the manifest signature, with no Porchlight at all.
    let (ok, out) = openssl(
        &[
            "x509",
            "-in",
            "device-cert.pem",
            "-pubkey",
            "-noout",
            "-out",
            "key.pub",
        ],
        &folder,
    );
    assert!(ok, "{out}");
    let (ok, out) = openssl(
        &[
            "dgst",
            "-sha256",
            "-verify",
            "key.pub",
            "-signature",
            "manifest.json.sig",
            "manifest.json",
        ],
        &folder,
    );
    assert!(ok, "{out}");
    // ... and the ONVIF seal inside the MP4: the signature covers the whole
    // file with the signature bytes zeroed.
    let mp4 = std::fs::read(&mp4_path).expect("mp4");
    let seal = porchlight_mp4::read_seal(std::io::Cursor::new(&mp4), mp4.len() as u64)
        .expect("the MP4 carries an export seal");
    assert_eq!(seal.contents.description.operator, "Owner Jane");
    assert_eq!(seal.contents.description.sources[0].name, "porch");
    assert!(!seal.contents.description.sources[0].url.is_empty());
    let mut zeroed = mp4.clone();
    let range = seal.signature_in_file.start as usize..seal.signature_in_file.end as usize;
    zeroed[range].fill(0);
    std::fs::write(folder.join("zeroed.mp4"), &zeroed).expect("write");
    std::fs::write(folder.join("seal.sig"), &seal.signature).expect("write");
    let (ok, out) = openssl(
        &[
            "dgst",
            "-sha256",
            "-verify",
            "key.pub",
            "-signature",
            "seal.sig",
            "zeroed.mp4",
        ],
        &folder,
    );
    assert!(ok, "the seal verifies with OpenSSL: {out}");
    // A bare MP4 handed on without its package still verifies by its seal.
    let (code, out) = verify(&mp4_path, &[]);
    assert_eq!(code, 0, "{out}");

    // One changed byte of video: both the hash and the seal name the file.
    let bad = flipped(dir, "video-flip.tar", &package, mp4_at + mp4_len / 2);
    let (code, out) = verify(&bad, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL") && out.contains("SHA-256 is"), "{out}");
    assert!(
        out.contains("(embedded seal): the signature does not match the file"),
        "{out}"
    );
    assert!(!out.contains("FAIL manifest.json.sig"), "{out}");

    // One changed byte of the manifest.
    let (_, manifest_at, manifest_len) = entry(&entries, "manifest.json").clone();
    let bad = flipped(
        dir,
        "manifest-flip.tar",
        &package,
        manifest_at + manifest_len / 2,
    );
    let (code, out) = verify(&bad, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL manifest.json.sig: the signature does not match manifest.json"),
        "{out}"
    );

    // One changed byte of the manifest's signature.
    let (_, sig_at, sig_len) = entry(&entries, "manifest.json.sig").clone();
    let bad = flipped(dir, "signature-flip.tar", &package, sig_at + sig_len - 3);
    let (code, out) = verify(&bad, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL manifest.json.sig"), "{out}");
    assert!(
        !out.contains("SHA-256 is"),
        "the footage itself is intact: {out}"
    );

    // One changed byte of the signature inside the MP4's seal.
    let bad = flipped(
        dir,
        "seal-flip.tar",
        &package,
        mp4_at + seal.signature_in_file.start as usize + 10,
    );
    let (code, out) = verify(&bad, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("(embedded seal): the signature does not match"),
        "{out}"
    );

    // A second, doctored copy of the footage appended to the tar (which
    // `tar -xf` would write over the first) is refused, as is a link.
    let folder_name = folder
        .file_name()
        .expect("folder")
        .to_string_lossy()
        .to_string();
    let doctored_dir = dir.join("doctored");
    let doctored_folder = doctored_dir.join(&folder_name);
    std::fs::create_dir_all(&doctored_folder).expect("mkdir");
    let mut doctored = mp4.clone();
    let middle = doctored.len() / 2;
    doctored[middle] ^= 0xff;
    let mp4_file = mp4_name.rsplit('/').next().expect("file name").to_string();
    std::fs::write(doctored_folder.join(&mp4_file), &doctored).expect("write");
    std::os::unix::fs::symlink("/etc/passwd", doctored_folder.join("extra.txt")).expect("symlink");
    for (label, member) in [("duplicate", mp4_file.as_str()), ("symlink", "extra.txt")] {
        let copy = dir.join(format!("{label}.tar"));
        std::fs::copy(&package_path, &copy).expect("copy");
        let appended = Command::new("tar")
            .arg("--append")
            .arg("-f")
            .arg(&copy)
            .arg("-C")
            .arg(&doctored_dir)
            .arg(format!("{folder_name}/{member}"))
            .output()
            .expect("tar");
        assert!(
            appended.status.success(),
            "{}",
            String::from_utf8_lossy(&appended.stderr)
        );
        let (code, out) = verify(&copy, &[]);
        assert_eq!(code, 1, "{label}: {out}");
        assert!(out.contains("FAIL package"), "{label}: {out}");
    }

    // The CLI makes a package too, and it verifies.
    let out_path = dir.join("cli.tar");
    let config = rec.daemon.config_path.to_str().expect("utf-8").to_string();
    let (code, _, stderr) = porchlight(&[
        "export",
        "--config",
        &config,
        "--camera",
        "porch",
        "--from",
        &url_time(from),
        "--to",
        &url_time(to),
        "--evidence",
        "--case-id",
        "DPD-2026-0042",
        "-o",
        out_path.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (code, out) = verify(&out_path, &["--expect-fingerprint", &fingerprint]);
    assert_eq!(code, 0, "{out}");

    // The device key is the owner's alone.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("data/device-key.pem"))
        .expect("device key exists after first start")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_evidence_requests_are_refused_with_the_reason() {
    let rec = support::record(3.0, "", "1GB").await;
    let from = url_time(rec.first_us);
    let to = url_time(rec.first_us + 2_000_000);
    let cases = [
        (
            format!("/api/cameras/porch/evidence?from={to}&to={from}"),
            400,
            "before",
        ),
        (
            format!("/api/cameras/garage/evidence?from={from}&to={to}"),
            404,
            "unknown camera",
        ),
        (
            format!("/api/cameras/porch/evidence?from=yesterday&to={to}"),
            400,
            "`from`",
        ),
        (
            format!("/api/cameras/porch/evidence?to={to}"),
            400,
            "`from` is required",
        ),
        (
            format!("/api/cameras/porch/evidence?from={from}&to={to}&operator=a%0Ab"),
            400,
            "`operator`",
        ),
        (
            "/api/cameras/porch/evidence?from=2001-01-01T00:00:00Z&to=2001-01-01T00:01:00Z".into(),
            404,
            "no footage",
        ),
    ];
    tokio::task::block_in_place(|| support::assert_json_errors(rec.daemon.http, &cases));
    // Garbage is not evidence.
    let junk = rec.dir.path().join("junk.tar");
    std::fs::write(&junk, vec![7u8; 4096]).expect("write");
    let (code, out) = verify(&junk, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("neither an evidence package"), "{out}");
}
