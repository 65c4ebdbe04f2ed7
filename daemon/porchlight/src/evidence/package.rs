//! Writing an evidence package as a stream: a tar holding the footage as an
//! ONVIF Export File Format MP4 (fragmented, sealed and signed inside),
//! a README for whoever opens it, the manifest, its signature and the
//! device certificate.
//!
//! The footage is hashed while it streams out; the seal and the manifest
//! come after it, so nothing is buffered and no temp file is needed.

use std::io::Write;

use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, Signature};
use sha2::{Digest, Sha256};

use super::certificate::ECDSA_WITH_SHA256_DER;
use super::clock::ClockReport;
use super::device_key::{hex, DeviceKey};
use super::manifest::{self, Manifest};
use super::{tar, EvidenceError};
use crate::export::ClipPlan;
use crate::time::format_utc_us;

/// Length of the DER signature the seal is laid out for. ECDSA DER
/// signatures are 70–72 bytes; the signer retries (changing the seal's
/// attempt counter) until it gets this length, about two tries on average.
const SEAL_SIGNATURE_LEN: usize = 71;
const MAX_SEAL_ATTEMPTS: u32 = 99;

/// What the owner or investigator asked for, and where the footage came from.
#[derive(Clone, Debug)]
pub struct EvidenceRequest {
    pub camera: String,
    /// The camera's stream URL; credentials are removed before use.
    pub camera_source: String,
    pub stream: String,
    pub from_us: i64,
    pub to_us: i64,
    pub audio: bool,
    pub operator: Option<String>,
    pub case_id: Option<String>,
    pub request_id: Option<String>,
    /// Camera clock minus ours, ms, when the camera reports its time.
    pub camera_clock_skew_ms: Option<i64>,
}

/// Who exports: this box.
pub struct Exporter<'a> {
    pub device: &'a DeviceKey,
    pub device_name: String,
    /// Where the exporting unit can be reached (owner UI address), if known.
    pub device_url: String,
    pub clock: ClockReport,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct PackageSummary {
    pub manifest: Manifest,
    pub bytes: u64,
}

/// The file name a package is offered under.
pub fn package_name(camera: &str, from_us: i64) -> String {
    format!("evidence-{}-{}", safe_name(camera), compact_time(from_us))
}

/// Writes the whole package for `plan` to `out`.
pub fn write_package(
    plan: ClipPlan,
    request: &EvidenceRequest,
    exporter: &Exporter<'_>,
    out: &mut impl Write,
) -> Result<PackageSummary, EvidenceError> {
    let mut out = CountingWriter {
        inner: out,
        count: 0,
    };
    let exported_at_us = crate::time::now_utc_us();
    let export_id = hex(&rand::random::<[u8; 16]>());
    let mtime_s = (exported_at_us / 1_000_000).max(0) as u64;
    let folder = package_name(&request.camera, request.from_us);
    let mp4_name = format!("{}.mp4", folder.trim_start_matches("evidence-"));
    let source = strip_credentials(&request.camera_source);

    let start_us = plan.start_us;
    let spans = plan.spans.clone();
    let has_audio = plan.track_origins_us.len() > 1;
    let start_times: Vec<_> = plan
        .track_origins_us
        .iter()
        .map(|&(track_id, origin_us)| porchlight_mp4::TrackStartTime {
            track_id,
            start_time: (origin_us.max(0) as u64) * 10 + porchlight_mp4::WINDOWS_EPOCH_OFFSET_100NS,
        })
        .collect();
    let mut sources = vec![porchlight_mp4::ExportSource {
        track_id: 1,
        name: request.camera.clone(),
        url: source.clone(),
        ..Default::default()
    }];
    if has_audio {
        sources.push(porchlight_mp4::ExportSource {
            track_id: 2,
            name: format!("{} microphone", request.camera),
            url: source.clone(),
            ..Default::default()
        });
    }
    let mut seal_contents = porchlight_mp4::SealContents {
        description: porchlight_mp4::ExportDescription {
            unit_name: exporter.device_name.clone(),
            unit_url: exporter.device_url.clone(),
            unit_mac: String::new(),
            unit_time: mtime_s + porchlight_mp4::ISO_EPOCH_OFFSET_S,
            operator: request.operator.clone().unwrap_or_default(),
            sources,
        },
        start_times,
        certificate_der: exporter.device.certificate_der().to_vec(),
        algorithm_der: Some(ECDSA_WITH_SHA256_DER.to_vec()),
        user_information: Some(seal_note(&export_id, 0)),
    };
    let seal_len = porchlight_mp4::write_seal(&seal_contents, SEAL_SIGNATURE_LEN)
        .bytes
        .len() as u64;

    // The footage, hashed as it goes out.
    let clip = plan.into_fragmented();
    let mp4_len = clip.len() + seal_len;
    tar::write_header(&mut out, &format!("{folder}/{mp4_name}"), mp4_len, mtime_s)?;
    let mut footage_hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < clip.len() {
        let n = clip.read_at(at, &mut buf)?;
        if n == 0 {
            return Err(EvidenceError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "footage ended early",
            )));
        }
        footage_hash.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        at += n as u64;
    }

    // The seal: sign the file with the signature bytes zeroed.
    let mut sealed = None;
    for attempt in 0..MAX_SEAL_ATTEMPTS {
        seal_contents.user_information = Some(seal_note(&export_id, attempt));
        let mut seal = porchlight_mp4::write_seal(&seal_contents, SEAL_SIGNATURE_LEN);
        let mut hash = footage_hash.clone();
        hash.update(&seal.bytes);
        let digest = hash.finalize();
        let signature: Signature = exporter
            .device
            .signing_key()
            .sign_prehash(&digest)
            .map_err(|e| EvidenceError::Signing(e.to_string()))?;
        let der = signature.to_der();
        if der.as_bytes().len() == SEAL_SIGNATURE_LEN {
            seal.set_signature(der.as_bytes())
                .map_err(|e| EvidenceError::Signing(e.to_string()))?;
            sealed = Some(seal);
            break;
        }
    }
    let seal = sealed
        .ok_or_else(|| EvidenceError::Signing("no signature of the expected length".into()))?;
    out.write_all(&seal.bytes)?;
    tar::write_padding(&mut out, mp4_len)?;
    let mut file_hash = footage_hash;
    file_hash.update(&seal.bytes);
    let mut files = vec![manifest::FileEntry {
        name: mp4_name.clone(),
        bytes: mp4_len,
        sha256: hex(&file_hash.finalize()),
        media_type: "video/mp4".into(),
        embedded_signature: Some("ONVIF Export File Format seal, ecdsa-with-SHA256".into()),
    }];

    let readme = readme(&mp4_name, exporter.device.fingerprint());
    tar::write_file(
        &mut out,
        &format!("{folder}/README.txt"),
        readme.as_bytes(),
        mtime_s,
    )?;
    files.push(manifest::FileEntry {
        name: "README.txt".into(),
        bytes: readme.len() as u64,
        sha256: hex(&Sha256::digest(readme.as_bytes())),
        media_type: "text/plain".into(),
        embedded_signature: None,
    });

    let end_us = spans.last().map_or(start_us, |&(_, end)| end);
    let manifest = Manifest {
        format: manifest::FORMAT.into(),
        export_id,
        exported_at: format_utc_us(exported_at_us),
        software: manifest::Software {
            name: "porchlight".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        device: manifest::Device {
            name: exporter.device_name.clone(),
            certificate_sha256: exporter.device.fingerprint().into(),
            signature_algorithm: "ecdsa-p256-sha256".into(),
        },
        camera: manifest::Camera {
            name: request.camera.clone(),
            source,
            stream: request.stream.clone(),
            clock_skew_ms: request.camera_clock_skew_ms,
        },
        request: manifest::RequestInfo {
            from: format_utc_us(request.from_us),
            to: format_utc_us(request.to_us),
            audio: request.audio,
            operator: request.operator.clone(),
            case_id: request.case_id.clone(),
            request_id: request.request_id.clone(),
        },
        footage: manifest::Footage {
            from: format_utc_us(start_us),
            to: format_utc_us(end_us),
            spans: spans.iter().map(|&(a, b)| span(a, b)).collect(),
            gaps: spans.windows(2).map(|w| span(w[0].1, w[1].0)).collect(),
            tracks: if has_audio {
                vec!["video".into(), "audio".into()]
            } else {
                vec!["video".into()]
            },
        },
        clock: manifest::Clock {
            report: exporter.clock.clone(),
            timestamps: "frame times from the camera's RTP clock, anchored to the daemon's \
                         UTC clock on arrival and slewed at most 500 ppm"
                .into(),
        },
        files,
    };
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| EvidenceError::Signing(format!("manifest: {e}")))?;
    manifest_bytes.push(b'\n');
    let manifest_signature: Signature = exporter.device.signing_key().sign(&manifest_bytes);
    let manifest_signature: DerSignature = manifest_signature.to_der();
    tar::write_file(
        &mut out,
        &format!("{folder}/manifest.json"),
        &manifest_bytes,
        mtime_s,
    )?;
    tar::write_file(
        &mut out,
        &format!("{folder}/manifest.json.sig"),
        manifest_signature.as_bytes(),
        mtime_s,
    )?;
    tar::write_file(
        &mut out,
        &format!("{folder}/device-cert.pem"),
        exporter.device.certificate_pem().as_bytes(),
        mtime_s,
    )?;
    tar::write_end(&mut out)?;
    out.flush()?;
    Ok(PackageSummary {
        manifest,
        bytes: out.count,
    })
}

fn seal_note(export_id: &str, attempt: u32) -> String {
    format!("Porchlight export {export_id} (seal {attempt:02})")
}

fn span(from_us: i64, to_us: i64) -> manifest::Span {
    manifest::Span {
        from: format_utc_us(from_us),
        to: format_utc_us(to_us),
    }
}

/// `20261123T210405Z`: sortable and safe in a file name.
fn compact_time(utc_us: i64) -> String {
    format_utc_us(utc_us)
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .take_while(|&c| c != '.')
        .collect::<String>()
        .trim_end_matches('Z')
        .to_string()
        + "Z"
}

fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A stream URL without user, password or credential-like query parameters.
fn strip_credentials(source: &str) -> String {
    let Ok(mut url) = url::Url::parse(source) else {
        return String::new();
    };
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let secretish = ["pass", "pwd", "token", "auth", "user", "key", "sig"];
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            !secretish.iter().any(|s| k.contains(s))
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    url.to_string()
}

fn readme(mp4_name: &str, fingerprint: &str) -> String {
    format!(
        "Evidence package exported by Porchlight (home video recorder).\n\
         \n\
         {mp4_name}   the footage, remuxed without re-encoding; plays in ordinary players.\n\
         \x20            It follows the ONVIF Export File Format: fragmented MP4 with a\n\
         \x20            seal (suep, cstb, sibo, cert, sigC boxes) signing the whole file.\n\
         manifest.json    camera, times, gaps, clock accuracy and the SHA-256 of every file.\n\
         manifest.json.sig  ECDSA P-256 / SHA-256 signature (DER) of manifest.json.\n\
         device-cert.pem  the recorder's certificate. Its SHA-256 fingerprint is\n\
         \x20            {fingerprint}\n\
         \x20            compare it with the one the owner or the registry gave you.\n\
         \n\
         Verify everything at once:   porchlight verify <this package>.tar\n\
         Or with OpenSSL only:\n\
         \x20 openssl x509 -in device-cert.pem -pubkey -noout > device-key.pub\n\
         \x20 openssl dgst -sha256 -verify device-key.pub -signature manifest.json.sig manifest.json\n\
         \x20 sha256sum {mp4_name}    (compare with manifest.json)\n"
    )
}

/// Counts bytes written (the package size for logs and the audit trail).
struct CountingWriter<'a, W: Write> {
    inner: &'a mut W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_the_package() {
        assert_eq!(
            strip_credentials(
                "rtsp://admin:hunter2@10.0.0.5:554/cam/realmonitor?channel=1&subtype=0&password=x"
            ),
            "rtsp://10.0.0.5:554/cam/realmonitor?channel=1&subtype=0"
        );
        assert_eq!(
            strip_credentials("rtsp://cam/stream?token=abc"),
            "rtsp://cam/stream"
        );
        assert_eq!(strip_credentials("not a url"), "");
    }

    #[test]
    fn names_are_safe_and_sortable() {
        let t = crate::time::parse_utc_us("2026-11-23T21:04:05.250Z").unwrap();
        assert_eq!(
            package_name("front door/../x", t),
            "evidence-front_door____x-20261123T210405Z"
        );
    }
}
