//! A clip as a virtual file: generated headers interleaved with byte ranges
//! of the segment files. Its size is known before the first byte is sent, so
//! HTTP Range requests read only what they ask for.

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

/// One piece of a clip: generated box headers, or footage from a segment file.
#[derive(Clone, Debug)]
pub(super) enum Piece {
    Bytes(Arc<[u8]>),
    Footage(Part),
}

impl Piece {
    fn len(&self) -> u64 {
        match self {
            Piece::Bytes(bytes) => bytes.len() as u64,
            Piece::Footage(part) => part.len,
        }
    }
}

#[derive(Debug)]
pub struct ClipFile {
    pieces: Vec<Piece>,
    /// Where each piece starts in the clip.
    piece_starts: Vec<u64>,
    len: u64,
    etag: String,
}

impl ClipFile {
    pub(super) fn new(pieces: Vec<Piece>, etag: String) -> ClipFile {
        let mut piece_starts = Vec::with_capacity(pieces.len());
        let mut at = 0;
        for piece in &pieces {
            piece_starts.push(at);
            at += piece.len();
        }
        ClipFile {
            pieces,
            piece_starts,
            len: at,
            etag,
        }
    }

    /// A whole file on disk (a prepared evidence package) served the same way.
    pub fn from_file(file: File, etag: String) -> std::io::Result<ClipFile> {
        let len = file.metadata()?.len();
        let part = Part {
            file: Arc::new(file),
            offset: 0,
            len,
        };
        Ok(ClipFile::new(vec![Piece::Footage(part)], etag))
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
        // The first piece wanted, found by binary search.
        let mut index = self
            .piece_starts
            .partition_point(|&start| start <= at)
            .saturating_sub(1);
        while filled < buf.len() && index < self.pieces.len() && at < self.len {
            let piece = &self.pieces[index];
            let within = at - self.piece_starts[index];
            index += 1;
            if within >= piece.len() {
                continue;
            }
            let n = ((piece.len() - within) as usize).min(buf.len() - filled);
            let dest = &mut buf[filled..filled + n];
            match piece {
                Piece::Bytes(bytes) => {
                    dest.copy_from_slice(&bytes[within as usize..within as usize + n])
                }
                Piece::Footage(part) => part.file.read_exact_at(dest, part.offset + within)?,
            }
            filled += n;
            at += n as u64;
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
