//! The ONVIF Export File Format seal: a file-level `meta` box that says who
//! exported what (`suep`), when the footage starts (`cstb`), and carries a
//! signature over the whole file (`ipro`/`sinf`/`schi` with `sibo`, `cert`
//! and `sigC`).
//!
//! The signature covers every byte of the file with the `sibo` payload set
//! to zero. Porchlight writes the seal last, so an exporter can hash the
//! footage while streaming it and only then sign.

use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;

use crate::boxes::{u16be, u32be, u64be, write_box, write_full_box};
use crate::read::{top_level_boxes, Mp4Error};

/// `schm` scheme type "oeff" (ONVIF Export File Format), version 1.0.
const SCHEME_OEFF: u32 = 0x6F65_6666;
const SCHEME_VERSION: u32 = 0x0001_0000;
/// Bounds for a hostile file: the seal is a few kilobytes.
const MAX_META_LEN: u64 = 1 << 20;

/// One recorded source (camera or microphone) of a track.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportSource {
    pub track_id: u16,
    pub name: String,
    pub url: String,
    pub mac: String,
    pub line: String,
}

/// The `suep` box: the exporting unit, the export time and the operator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportDescription {
    pub unit_name: String,
    pub unit_url: String,
    pub unit_mac: String,
    /// Seconds since 1904-01-01 UTC (the ISO BMFF epoch).
    pub unit_time: u64,
    pub operator: String,
    pub sources: Vec<ExportSource>,
}

/// A `cstb` entry: the UTC time of the start of a track's media timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackStartTime {
    pub track_id: u32,
    /// 100-nanosecond intervals since 1601-01-01 UTC.
    pub start_time: u64,
}

/// What goes into a seal besides the signature itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SealContents {
    pub description: ExportDescription,
    pub start_times: Vec<TrackStartTime>,
    /// DER certificate whose key verifies the signature.
    pub certificate_der: Vec<u8>,
    /// DER AlgorithmIdentifier when not the default RSASSA-PSS (`sigC`).
    pub algorithm_der: Option<Vec<u8>>,
    /// Free text (`auib`), e.g. an export id.
    pub user_information: Option<String>,
}

/// A seal as written: bytes to append to the file, and where in them the
/// signature goes.
#[derive(Clone, Debug)]
pub struct SealBox {
    pub bytes: Vec<u8>,
    pub signature_range: Range<usize>,
}

impl SealBox {
    /// Puts `signature` in place; it must have the length the box was built for.
    pub fn set_signature(&mut self, signature: &[u8]) -> Result<(), Mp4Error> {
        if signature.len() != self.signature_range.len() {
            return Err(Mp4Error::Malformed {
                offset: 0,
                what: format!(
                    "signature is {} bytes; the seal was laid out for {}",
                    signature.len(),
                    self.signature_range.len()
                ),
            });
        }
        self.bytes[self.signature_range.clone()].copy_from_slice(signature);
        Ok(())
    }
}

/// Builds the seal with a zeroed signature of `signature_len` bytes (the
/// form the signature is computed over).
pub fn write_seal(contents: &SealContents, signature_len: usize) -> SealBox {
    let mut out = Vec::with_capacity(1024 + contents.certificate_der.len());
    let mut signature_start = 0;
    write_full_box(&mut out, b"meta", 0, 0, |out| {
        write_full_box(out, b"hdlr", 0, 0, |out| {
            u32be(out, 0);
            out.extend_from_slice(b"null");
            out.extend_from_slice(&[0; 12]);
            out.extend_from_slice(b"ONVIF export\0");
        });
        write_suep(out, &contents.description);
        write_full_box(out, b"ipro", 0, 0, |out| {
            u16be(out, 1); // protection_count
            write_box(out, b"sinf", |out| {
                write_box(out, b"cstb", |out| {
                    u32be(out, contents.start_times.len() as u32);
                    for t in &contents.start_times {
                        u32be(out, t.track_id);
                        u64be(out, t.start_time);
                    }
                });
                write_full_box(out, b"schm", 0, 0, |out| {
                    u32be(out, SCHEME_OEFF);
                    u32be(out, SCHEME_VERSION);
                });
                write_box(out, b"schi", |out| {
                    write_box(out, b"sibo", |out| {
                        signature_start = out.len();
                        out.resize(out.len() + signature_len, 0);
                    });
                    write_box(out, b"cert", |out| {
                        out.extend_from_slice(&contents.certificate_der)
                    });
                    if let Some(algorithm) = &contents.algorithm_der {
                        write_box(out, b"sigC", |out| out.extend_from_slice(algorithm));
                    }
                    if let Some(info) = &contents.user_information {
                        write_box(out, b"auib", |out| c_string(out, info));
                    }
                });
            });
        });
    });
    SealBox {
        bytes: out,
        signature_range: signature_start..signature_start + signature_len,
    }
}

fn write_suep(out: &mut Vec<u8>, d: &ExportDescription) {
    write_full_box(out, b"suep", 1, 0, |out| {
        c_string(out, &d.unit_name);
        c_string(out, &d.unit_url);
        c_string(out, &d.unit_mac);
        u64be(out, d.unit_time);
        c_string(out, &d.operator);
        u32be(out, d.sources.len() as u32);
        for s in &d.sources {
            u16be(out, s.track_id);
            c_string(out, &s.name);
            c_string(out, &s.url);
            c_string(out, &s.mac);
            c_string(out, &s.line);
        }
    });
}

/// A null-terminated UTF-8 string; interior NULs are dropped so the field
/// cannot end early.
fn c_string(out: &mut Vec<u8>, s: &str) {
    out.extend(s.bytes().filter(|&b| b != 0));
    out.push(0);
}

/// A seal found in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundSeal {
    pub contents: SealContents,
    pub signature: Vec<u8>,
    /// Where the signature bytes sit in the file (to zero them when hashing).
    pub signature_in_file: Range<u64>,
    /// How many signing instances (`sinf`) the file holds; only the first
    /// (the exporter's) is returned.
    pub signing_instances: usize,
}

/// Finds and parses the file-level seal. The reader is hostile input:
/// sizes are bounded, and anything malformed is an error, never a panic.
pub fn read_seal<R: Read + Seek>(mut r: R, file_len: u64) -> Result<FoundSeal, Mp4Error> {
    let boxes = top_level_boxes(&mut r, file_len)?;
    let metas: Vec<_> = boxes.iter().filter(|b| &b.box_type == b"meta").collect();
    let meta = match metas.as_slice() {
        [] => return Err(Mp4Error::Missing("file-level meta (the export seal)")),
        [one] => *one,
        _ => {
            return Err(Mp4Error::Malformed {
                offset: metas[1].offset,
                what: "more than one file-level meta box".into(),
            })
        }
    };
    if meta.size > MAX_META_LEN {
        return Err(Mp4Error::Malformed {
            offset: meta.offset,
            what: format!("meta box of {} bytes is implausibly large", meta.size),
        });
    }
    let mut bytes = vec![0u8; meta.size as usize];
    r.seek(SeekFrom::Start(meta.offset))
        .map_err(|e| Mp4Error::Io(e.to_string()))?;
    r.read_exact(&mut bytes)
        .map_err(|e| Mp4Error::Io(e.to_string()))?;
    parse_meta(&bytes, meta.offset)
}

fn parse_meta(meta: &[u8], meta_offset: u64) -> Result<FoundSeal, Mp4Error> {
    let header_len = 12; // box header + version/flags
    let kids = crate::read::children(meta, header_len, meta_offset)?;
    let (suep_h, suep) = crate::read::find(&kids, b"suep").ok_or(Mp4Error::Missing("suep"))?;
    let description = parse_suep(suep, suep_h.offset)?;
    let (ipro_h, ipro) = crate::read::find(&kids, b"ipro").ok_or(Mp4Error::Missing("ipro"))?;
    let ipro_kids = crate::read::children(ipro, 6, ipro_h.offset + u64::from(ipro_h.header_len))?;
    let sinfs: Vec<_> = ipro_kids
        .iter()
        .filter(|(h, _)| &h.box_type == b"sinf")
        .collect();
    let (sinf_h, sinf) = *sinfs.first().ok_or(Mp4Error::Missing("sinf"))?;
    let sinf_kids = crate::read::children(sinf, 0, sinf_h.offset + u64::from(sinf_h.header_len))?;
    let (schm_h, schm) = crate::read::find(&sinf_kids, b"schm").ok_or(Mp4Error::Missing("schm"))?;
    let mut c = crate::read::Cursor::new(schm, schm_h.offset);
    let (_, _) = c.version_flags()?;
    let scheme = c.u32()?;
    if scheme != SCHEME_OEFF {
        return Err(Mp4Error::Malformed {
            offset: schm_h.offset,
            what: format!(
                "protection scheme is `{}`, not `oeff` (ONVIF Export File Format)",
                String::from_utf8_lossy(&scheme.to_be_bytes())
            ),
        });
    }
    let mut start_times = Vec::new();
    if let Some((cstb_h, cstb)) = crate::read::find(&sinf_kids, b"cstb") {
        let mut c = crate::read::Cursor::new(cstb, cstb_h.offset);
        let count = c.u32()?;
        if u64::from(count) * 12 > cstb.len() as u64 {
            return Err(Mp4Error::Malformed {
                offset: cstb_h.offset,
                what: format!("cstb claims {count} entries"),
            });
        }
        for _ in 0..count {
            start_times.push(TrackStartTime {
                track_id: c.u32()?,
                start_time: c.u64()?,
            });
        }
    }
    let (schi_h, schi) = crate::read::find(&sinf_kids, b"schi").ok_or(Mp4Error::Missing("schi"))?;
    let schi_kids = crate::read::children(schi, 0, schi_h.offset + u64::from(schi_h.header_len))?;
    let (sibo_h, sibo) = crate::read::find(&schi_kids, b"sibo").ok_or(Mp4Error::Missing("sibo"))?;
    let (_, cert) = crate::read::find(&schi_kids, b"cert").ok_or(Mp4Error::Missing("cert"))?;
    let algorithm_der = crate::read::find(&schi_kids, b"sigC").map(|(_, b)| b.to_vec());
    let user_information = crate::read::find(&schi_kids, b"auib")
        .map(|(_, b)| String::from_utf8_lossy(b.split(|&x| x == 0).next().unwrap_or(b)).into());
    let signature_start = sibo_h.offset + u64::from(sibo_h.header_len);
    Ok(FoundSeal {
        contents: SealContents {
            description,
            start_times,
            certificate_der: cert.to_vec(),
            algorithm_der,
            user_information,
        },
        signature: sibo.to_vec(),
        signature_in_file: signature_start..signature_start + sibo.len() as u64,
        signing_instances: sinfs.len(),
    })
}

fn parse_suep(body: &[u8], offset: u64) -> Result<ExportDescription, Mp4Error> {
    let mut c = crate::read::Cursor::new(body, offset);
    let (version, _) = c.version_flags()?;
    if version != 1 {
        return Err(Mp4Error::Malformed {
            offset,
            what: format!("suep version {version} (only version 1 is defined)"),
        });
    }
    let read_string = |c: &mut crate::read::Cursor<'_>| -> Result<String, Mp4Error> {
        let rest = c.rest();
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| Mp4Error::Malformed {
                offset,
                what: "suep string without its terminating NUL".into(),
            })?;
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        c.take(end + 1)?;
        Ok(s)
    };
    let unit_name = read_string(&mut c)?;
    let unit_url = read_string(&mut c)?;
    let unit_mac = read_string(&mut c)?;
    let unit_time = c.u64()?;
    let operator = read_string(&mut c)?;
    let count = c.u32()?;
    let mut sources = Vec::new();
    for _ in 0..count {
        // Each entry is at least 6 bytes: a bounded loop even for a huge count.
        if c.rest().len() < 6 {
            return Err(Mp4Error::Malformed {
                offset,
                what: format!("suep claims {count} sources but ends early"),
            });
        }
        let id = c.take(2)?;
        sources.push(ExportSource {
            track_id: u16::from_be_bytes([id[0], id[1]]),
            name: read_string(&mut c)?,
            url: read_string(&mut c)?,
            mac: read_string(&mut c)?,
            line: read_string(&mut c)?,
        });
    }
    Ok(ExportDescription {
        unit_name,
        unit_url,
        unit_mac,
        unit_time,
        operator,
        sources,
    })
}

/// Seconds between 1904-01-01 (ISO BMFF epoch) and 1970-01-01.
pub const ISO_EPOCH_OFFSET_S: u64 = 2_082_844_800;
/// 100 ns intervals between 1601-01-01 and 1970-01-01.
pub const WINDOWS_EPOCH_OFFSET_100NS: u64 = 116_444_736_000_000_000;
