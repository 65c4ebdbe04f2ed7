//! Offline verification of an evidence package (or of a bare sealed MP4):
//! every check is reported by name, so a failure says exactly which file
//! or signature does not match.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use super::certificate::{self, ECDSA_WITH_SHA256_DER};
use super::device_key::{fingerprint, hex};
use super::manifest::Manifest;
use super::{tar, EvidenceError};

/// One named check and its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub subject: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    pub checks: Vec<Check>,
    /// The device certificate fingerprint the package is signed with.
    pub device_fingerprint: Option<String>,
    pub manifest: Option<Manifest>,
}

impl VerifyReport {
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }

    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }

    fn pass(&mut self, subject: &str, detail: impl Into<String>) {
        self.checks.push(Check {
            subject: subject.into(),
            passed: true,
            detail: detail.into(),
        });
    }

    fn fail(&mut self, subject: &str, detail: impl Into<String>) {
        self.checks.push(Check {
            subject: subject.into(),
            passed: false,
            detail: detail.into(),
        });
    }
}

/// Verifies the package or sealed MP4 at `path`. `expected_fingerprint`
/// pins the device (the fingerprint the registry or owner gave).
pub fn verify_path(
    path: &Path,
    expected_fingerprint: Option<&str>,
) -> Result<VerifyReport, EvidenceError> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut first = vec![0u8; 512.min(len as usize)];
    file.read_exact(&mut first)?;
    let mut report = VerifyReport::default();
    if tar::is_tar(&first) {
        verify_package(&mut file, len, &mut report);
    } else if first.get(4..8) == Some(b"ftyp") {
        let name = path
            .file_name()
            .map_or("file".into(), |n| n.to_string_lossy().into_owned());
        if let Some(fp) = verify_sealed_mp4(&mut file, 0, len, &name, None, &mut report) {
            report.device_fingerprint = Some(fp);
        }
    } else {
        report.fail(
            &path.display().to_string(),
            "neither an evidence package (tar) nor an MP4 file",
        );
    }
    if let Some(expected) = expected_fingerprint {
        let expected = expected.replace(':', "").to_ascii_lowercase();
        match &report.device_fingerprint {
            Some(actual) if *actual == expected => report.pass(
                "device identity",
                format!("certificate fingerprint is the expected {actual}"),
            ),
            Some(actual) => report.fail(
                "device identity",
                format!("signed by certificate {actual}, not the expected {expected}"),
            ),
            None => report.fail("device identity", "no device certificate found"),
        }
    }
    Ok(report)
}

fn verify_package(file: &mut File, len: u64, report: &mut VerifyReport) {
    let entries = match tar::entries(file, len) {
        Ok(entries) => entries,
        Err(e) => return report.fail("package", format!("not a readable tar archive: {e}")),
    };
    // What `tar -xf` writes must be exactly what is checked: regular files
    // only, all in one folder, each name once.
    if let Err(problem) = check_layout(&entries) {
        return report.fail("package", problem);
    }
    let base = |name: &str| name.rsplit('/').next().unwrap_or(name).to_string();
    let find = |wanted: &str| entries.iter().find(|e| base(&e.name) == wanted);

    // The certificate and the key it holds.
    let Some(cert_entry) = find("device-cert.pem") else {
        return report.fail("device-cert.pem", "missing from the package");
    };
    let cert_pem = match read_entry(file, cert_entry, 64 << 10) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => return report.fail("device-cert.pem", e),
    };
    let (cert_der, key) = match certificate::der_from_pem(&cert_pem)
        .and_then(|der| certificate::verifying_key(&der).map(|key| (der, key)))
    {
        Ok(pair) => pair,
        Err(e) => return report.fail("device-cert.pem", e),
    };
    let device_fingerprint = fingerprint(&cert_der);
    report.device_fingerprint = Some(device_fingerprint.clone());

    // The manifest and its signature.
    let (Some(manifest_entry), Some(sig_entry)) =
        (find("manifest.json"), find("manifest.json.sig"))
    else {
        return report.fail(
            "manifest.json",
            "manifest.json or manifest.json.sig is missing",
        );
    };
    let manifest_bytes = match read_entry(file, manifest_entry, 4 << 20) {
        Ok(b) => b,
        Err(e) => return report.fail("manifest.json", e),
    };
    match read_entry(file, sig_entry, 1024)
        .and_then(|sig| Signature::from_der(&sig).map_err(|e| format!("not a DER ECDSA signature: {e}")))
    {
        Ok(sig) => match key.verify(&manifest_bytes, &sig) {
            Ok(()) => report.pass(
                "manifest.json.sig",
                format!("manifest.json is signed by device {device_fingerprint}"),
            ),
            Err(_) => report.fail(
                "manifest.json.sig",
                "the signature does not match manifest.json: the manifest or its signature was altered",
            ),
        },
        Err(e) => report.fail("manifest.json.sig", e),
    }
    let manifest: Manifest = match serde_json::from_slice(&manifest_bytes) {
        Ok(m) => m,
        Err(e) => return report.fail("manifest.json", format!("not a valid manifest: {e}")),
    };
    if manifest.device.certificate_sha256 != device_fingerprint {
        report.fail(
            "device-cert.pem",
            format!(
                "the manifest names certificate {}, the package holds {device_fingerprint}",
                manifest.device.certificate_sha256
            ),
        );
    }

    // Every listed file, by size and hash; MP4s also by their own seal.
    for listed in &manifest.files {
        let Some(entry) = find(&listed.name) else {
            report.fail(
                &listed.name,
                "listed in the manifest but missing from the package",
            );
            continue;
        };
        if entry.size != listed.bytes {
            report.fail(
                &listed.name,
                format!("{} bytes, the manifest says {}", entry.size, listed.bytes),
            );
            continue;
        }
        match hash_range(file, entry.offset, entry.size, None) {
            Ok(actual) if actual == listed.sha256 => {
                report.pass(&listed.name, format!("SHA-256 {actual} as in the manifest"))
            }
            Ok(actual) => report.fail(
                &listed.name,
                format!(
                    "SHA-256 is {actual}, the manifest says {}: the file was altered",
                    listed.sha256
                ),
            ),
            Err(e) => report.fail(&listed.name, e),
        }
        if listed.media_type == "video/mp4" {
            verify_sealed_mp4(
                file,
                entry.offset,
                entry.size,
                &listed.name,
                Some(&cert_der),
                report,
            );
        }
    }
    for entry in &entries {
        let name = base(&entry.name);
        let known = ["manifest.json", "manifest.json.sig", "device-cert.pem"]
            .contains(&name.as_str())
            || manifest.files.iter().any(|f| f.name == name);
        if !known {
            report.fail(&name, "in the package but not in the manifest");
        }
    }
    report.manifest = Some(manifest);
}

/// A package is one folder of regular files, each listed once; anything
/// else (links, pax or long-name headers, duplicates, `..`, absolute paths,
/// nested folders) could make the extracted files differ from those checked.
fn check_layout(entries: &[tar::Entry]) -> Result<(), String> {
    let mut folder: Option<&str> = None;
    let mut seen = std::collections::HashSet::new();
    for entry in entries {
        if entry.kind != b'0' {
            return Err(format!(
                "`{}` is not a regular file (tar type `{}`): packages hold files only",
                entry.name,
                char::from(entry.kind)
            ));
        }
        let parts: Vec<&str> = entry.name.split('/').collect();
        let [dir, name] = parts.as_slice() else {
            return Err(format!(
                "`{}` is not `<folder>/<file>`: packages hold one folder of files",
                entry.name
            ));
        };
        if dir.is_empty()
            || name.is_empty()
            || [*dir, *name].iter().any(|p| *p == ".." || *p == ".")
        {
            return Err(format!("`{}` is not a safe path", entry.name));
        }
        if *folder.get_or_insert(dir) != *dir {
            return Err(format!(
                "`{}` is outside the package folder `{}`",
                entry.name,
                folder.unwrap_or_default()
            ));
        }
        if !seen.insert(*name) {
            return Err(format!(
                "`{}` appears twice: which copy is real cannot be told",
                entry.name
            ));
        }
    }
    Ok(())
}

/// Checks the ONVIF export seal of the MP4 at `offset..offset+len`; returns
/// the fingerprint of the certificate in the seal.
fn verify_sealed_mp4(
    file: &mut File,
    offset: u64,
    len: u64,
    name: &str,
    package_cert: Option<&[u8]>,
    report: &mut VerifyReport,
) -> Option<String> {
    let subject = format!("{name} (embedded seal)");
    let seal = match porchlight_mp4::read_seal(Window::new(file, offset, len), len) {
        Ok(seal) => seal,
        Err(e) => {
            report.fail(&subject, format!("no readable ONVIF export seal: {e}"));
            return None;
        }
    };
    if seal.contents.algorithm_der.as_deref() != Some(&ECDSA_WITH_SHA256_DER[..]) {
        report.fail(
            &subject,
            "signature algorithm is not ecdsa-with-SHA256 (not made by Porchlight)",
        );
        return None;
    }
    let cert = &seal.contents.certificate_der;
    let seal_fingerprint = fingerprint(cert);
    if let Some(package_cert) = package_cert {
        if package_cert != cert.as_slice() {
            report.fail(
                &subject,
                "sealed with a different certificate from the package's",
            );
        }
    }
    let key: VerifyingKey = match certificate::verifying_key(cert) {
        Ok(key) => key,
        Err(e) => {
            report.fail(&subject, e);
            return Some(seal_fingerprint);
        }
    };
    let zeroed = (seal.signature_in_file.start, seal.signature_in_file.end);
    let digest = match hash_range_raw(file, offset, len, Some(zeroed)) {
        Ok(d) => d,
        Err(e) => {
            report.fail(&subject, e);
            return Some(seal_fingerprint);
        }
    };
    let verified = Signature::from_der(&seal.signature)
        .map_err(|e| e.to_string())
        .and_then(|sig| key.verify_prehash(&digest, &sig).map_err(|e| e.to_string()));
    match verified {
        Ok(()) => report.pass(
            &subject,
            format!(
                "whole file signed by device {seal_fingerprint}; exported {} by {:?}",
                iso_time(seal.contents.description.unit_time),
                seal.contents.description.unit_name
            ),
        ),
        Err(_) => report.fail(
            &subject,
            "the signature does not match the file: footage or seal was altered",
        ),
    }
    if seal.signing_instances > 1 {
        report.pass(
            &subject,
            format!(
                "{} later signatures present (not checked)",
                seal.signing_instances - 1
            ),
        );
    }
    Some(seal_fingerprint)
}

fn iso_time(iso_seconds: u64) -> String {
    let unix = iso_seconds.saturating_sub(porchlight_mp4::ISO_EPOCH_OFFSET_S) as i64;
    crate::time::format_utc_us(unix.saturating_mul(1_000_000))
}

fn read_entry(file: &mut File, entry: &tar::Entry, max: u64) -> Result<Vec<u8>, String> {
    if entry.size > max {
        return Err(format!("{} bytes is too large for this file", entry.size));
    }
    let mut bytes = vec![0u8; entry.size as usize];
    file.seek(SeekFrom::Start(entry.offset))
        .map_err(|e| e.to_string())?;
    file.read_exact(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

fn hash_range(
    file: &mut File,
    offset: u64,
    len: u64,
    zeroed: Option<(u64, u64)>,
) -> Result<String, String> {
    hash_range_raw(file, offset, len, zeroed).map(|d| hex(&d))
}

/// SHA-256 of `len` bytes at `offset`, with the (relative) range `zeroed`
/// read as zeros.
fn hash_range_raw(
    file: &mut File,
    offset: u64,
    len: u64,
    zeroed: Option<(u64, u64)>,
) -> Result<Vec<u8>, String> {
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| e.to_string())?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < len {
        let n = ((len - at) as usize).min(buf.len());
        file.read_exact(&mut buf[..n]).map_err(|e| e.to_string())?;
        if let Some((start, end)) = zeroed {
            let lo = start.max(at);
            let hi = end.min(at + n as u64);
            if lo < hi {
                buf[(lo - at) as usize..(hi - at) as usize].fill(0);
            }
        }
        hash.update(&buf[..n]);
        at += n as u64;
    }
    Ok(hash.finalize().to_vec())
}

/// A window onto part of a file, so an MP4 inside a tar reads as a file.
struct Window<'a> {
    file: &'a mut File,
    start: u64,
    len: u64,
    pos: u64,
}

impl<'a> Window<'a> {
    fn new(file: &'a mut File, start: u64, len: u64) -> Self {
        Window {
            file,
            start,
            len,
            pos: 0,
        }
    }
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let read = self.file.read(&mut buf[..n])?;
        self.pos += read as u64;
        Ok(read)
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before start")
        })?;
        Ok(self.pos)
    }
}
