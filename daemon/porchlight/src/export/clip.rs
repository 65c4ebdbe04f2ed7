//! A clip as a virtual file: a generated header, then byte ranges of the
//! segment files. Its size is known before the first byte is sent, so HTTP
//! Range requests read only what they ask for.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Bytes of one segment file that appear in the clip. The file is opened
/// when the clip is planned: if retention deletes it meanwhile, the open
/// handle still reads the footage, so an export never breaks half-way.
#[derive(Clone, Debug)]
pub(super) struct Part {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: u64,
}

#[derive(Debug)]
pub struct ClipFile {
    header: Vec<u8>,
    parts: Vec<Part>,
    /// Where each part starts in the clip.
    part_starts: Vec<u64>,
    len: u64,
    etag: String,
}

impl ClipFile {
    pub(super) fn new(header: Vec<u8>, parts: Vec<Part>, etag: String) -> ClipFile {
        let mut part_starts = Vec::with_capacity(parts.len());
        let mut at = header.len() as u64;
        for part in &parts {
            part_starts.push(at);
            at += part.len;
        }
        ClipFile {
            header,
            parts,
            part_starts,
            len: at,
            etag,
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A strong validator: the same footage and trim give the same tag.
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// Fills `buf` with the clip's bytes from `offset`; returns how many.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let mut filled = 0;
        let mut at = offset;
        // The header.
        if at < self.header.len() as u64 {
            let from = at as usize;
            let n = (self.header.len() - from).min(buf.len());
            buf[..n].copy_from_slice(&self.header[from..from + n]);
            filled += n;
            at += n as u64;
        }
        // The parts, found by binary search.
        let mut index = self
            .part_starts
            .partition_point(|&start| start <= at)
            .saturating_sub(1);
        while filled < buf.len() && index < self.parts.len() && at < self.len {
            let part = &self.parts[index];
            let start = self.part_starts[index];
            let within = at - start;
            if within >= part.len {
                index += 1;
                continue;
            }
            let n = ((part.len - within) as usize).min(buf.len() - filled);
            part.file
                .read_exact_at(&mut buf[filled..filled + n], part.offset + within)?;
            filled += n;
            at += n as u64;
            index += 1;
        }
        Ok(filled)
    }
}

/// Writes the whole clip to `path` (via a temporary name, then renamed, so a
/// failed export never leaves a truncated file under the final name).
pub fn write_clip(clip: &ClipFile, path: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    let temp = path.with_extension("partial");
    let result = (|| {
        let mut out = std::io::BufWriter::new(File::create(&temp)?);
        let mut buf = vec![0u8; 1 << 20];
        let mut at = 0;
        while at < clip.len() {
            let n = clip.read_at(at, &mut buf)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "clip ended early",
                ));
            }
            out.write_all(&buf[..n])?;
            at += n as u64;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}
