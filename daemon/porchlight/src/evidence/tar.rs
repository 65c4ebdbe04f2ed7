//! Just enough POSIX ustar to hold an evidence package: regular files
//! only, written as a stream (each entry's size is known when it starts),
//! read back defensively. Tar opens everywhere (Windows 10+ `tar -xf`,
//! 7-Zip, every Unix) and, unlike zip, needs no index at the end.

use std::io::{self, Read, Seek, SeekFrom, Write};

const BLOCK: u64 = 512;
/// A package holds a handful of files; anything more is not ours.
const MAX_ENTRIES: usize = 64;

/// Writes the 512-byte header of a regular file of `size` bytes.
pub fn write_header(out: &mut impl Write, name: &str, size: u64, mtime_s: u64) -> io::Result<()> {
    let mut header = [0u8; 512];
    let name = name.as_bytes();
    if name.len() > 100 {
        // Split into prefix (155) / name (100) at a '/'.
        let split = name[..name.len().min(156)]
            .iter()
            .rposition(|&b| b == b'/')
            .filter(|&i| name.len() - i - 1 <= 100)
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "file name too long for tar")
            })?;
        header[345..345 + split].copy_from_slice(&name[..split]);
        header[..name.len() - split - 1].copy_from_slice(&name[split + 1..]);
    } else {
        header[..name.len()].copy_from_slice(name);
    }
    octal(&mut header[100..108], 0o644);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    if size < 0o77777777777 {
        octal(&mut header[124..136], size);
    } else {
        // GNU base-256 for files of 8 GiB and more.
        header[124] = 0x80;
        header[128..136].copy_from_slice(&size.to_be_bytes());
    }
    octal(&mut header[136..148], mtime_s);
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].fill(b' ');
    let checksum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    octal(&mut header[148..155], u64::from(checksum));
    header[155] = b' ';
    out.write_all(&header)
}

/// Zero bytes after an entry's data up to the next block.
pub fn write_padding(out: &mut impl Write, size: u64) -> io::Result<()> {
    let pad = (BLOCK - size % BLOCK) % BLOCK;
    out.write_all(&vec![0u8; pad as usize])
}

/// Two zero blocks end the archive.
pub fn write_end(out: &mut impl Write) -> io::Result<()> {
    out.write_all(&[0u8; 1024])
}

/// Writes a whole small file entry.
pub fn write_file(out: &mut impl Write, name: &str, bytes: &[u8], mtime_s: u64) -> io::Result<()> {
    write_header(out, name, bytes.len() as u64, mtime_s)?;
    out.write_all(bytes)?;
    write_padding(out, bytes.len() as u64)
}

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

/// A file inside the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub offset: u64,
    pub size: u64,
    /// The header's type flag (`b'0'` for a regular file). Readers must
    /// refuse anything else: links, pax and GNU long-name headers change
    /// what `tar -xf` writes, so they could hide a swapped file.
    pub kind: u8,
}

/// True when `block` looks like a ustar header.
pub fn is_tar(first_block: &[u8]) -> bool {
    first_block.len() >= 263 && &first_block[257..262] == b"ustar"
}

/// Lists the regular files of an archive of `len` bytes.
pub fn entries<R: Read + Seek>(r: &mut R, len: u64) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    let mut at = 0u64;
    loop {
        if at + BLOCK > len {
            return Err(format!("archive ends inside a header at byte {at}"));
        }
        let mut header = [0u8; 512];
        r.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
        r.read_exact(&mut header).map_err(|e| e.to_string())?;
        if header.iter().all(|&b| b == 0) {
            return Ok(out);
        }
        if !is_tar(&header) {
            return Err(format!("byte {at}: not a tar header"));
        }
        let stored: u64 = parse_octal(&header[148..156])
            .ok_or_else(|| format!("byte {at}: bad header checksum field"))?;
        let mut blank = header;
        blank[148..156].fill(b' ');
        let computed: u64 = blank.iter().map(|&b| u64::from(b)).sum();
        if stored != computed {
            return Err(format!(
                "byte {at}: header checksum does not match (damaged header)"
            ));
        }
        let size = if header[124] & 0x80 != 0 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&header[128..136]);
            u64::from_be_bytes(b)
        } else {
            parse_octal(&header[124..136]).ok_or_else(|| format!("byte {at}: bad size field"))?
        };
        let data = at + BLOCK;
        if data.checked_add(size).is_none_or(|end| end > len) {
            return Err(format!(
                "byte {at}: entry of {size} bytes runs past the end"
            ));
        }
        let name = {
            let field = |range: std::ops::Range<usize>| {
                let f = &header[range];
                let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
                String::from_utf8_lossy(&f[..end]).into_owned()
            };
            let (prefix, name) = (field(345..500), field(0..100));
            if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            }
        };
        if out.len() >= MAX_ENTRIES {
            return Err(format!(
                "more than {MAX_ENTRIES} entries: not an evidence package"
            ));
        }
        out.push(Entry {
            name,
            offset: data,
            size,
            kind: if header[156] == 0 { b'0' } else { header[156] },
        });
        at = data + size.div_ceil(BLOCK) * BLOCK;
    }
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let mut out = Vec::new();
        write_file(&mut out, "pkg/manifest.json", b"{}", 1).unwrap();
        let long = format!("{}/{}", "d".repeat(120), "clip.mp4");
        write_file(&mut out, &long, &[7u8; 1000], 1).unwrap();
        write_end(&mut out).unwrap();
        let len = out.len() as u64;
        let list = entries(&mut std::io::Cursor::new(&out), len).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].name, "pkg/manifest.json");
        assert_eq!(list[1].name, long);
        assert_eq!(list[1].size, 1000);
        assert_eq!(&out[list[1].offset as usize..][..3], &[7, 7, 7]);
        // A damaged header is named, not trusted.
        let mut bad = out.clone();
        bad[130] ^= 1;
        assert!(entries(&mut std::io::Cursor::new(&bad), len)
            .unwrap_err()
            .contains("checksum"));
    }
}
