//! JPEG snapshots: one stored keyframe decoded with FFmpeg (the `ffmpeg`
//! feature). Decoding happens here, on request, never while recording.

use super::keyframe::Keyframe;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("this build has no decoder (built without the `ffmpeg` feature)")]
    NotBuilt,
    #[error("cannot decode the keyframe: {0}")]
    Decode(String),
}

/// Splits the parameter sets out of an `avcC`/`hvcC` inside a sample entry.
fn parameter_sets(entry: &[u8]) -> Result<(bool, Vec<Vec<u8>>), SnapshotError> {
    let bad = |what: &str| SnapshotError::Decode(format!("sample entry: {what}"));
    // Visual sample entry: 8-byte box header + 78 bytes, then child boxes.
    let mut pos = 86;
    while pos + 8 <= entry.len() {
        let size = u32::from_be_bytes([entry[pos], entry[pos + 1], entry[pos + 2], entry[pos + 3]])
            as usize;
        let kind = &entry[pos + 4..pos + 8];
        if size < 8 || pos + size > entry.len() {
            return Err(bad("child box size"));
        }
        let body = &entry[pos + 8..pos + size];
        let mut sets = Vec::new();
        let mut read_nal = |at: &mut usize| -> Result<(), SnapshotError> {
            let len = body.get(*at..*at + 2).ok_or_else(|| bad("truncated"))?;
            let len = u16::from_be_bytes([len[0], len[1]]) as usize;
            let nal = body
                .get(*at + 2..*at + 2 + len)
                .ok_or_else(|| bad("truncated"))?;
            sets.push(nal.to_vec());
            *at += 2 + len;
            Ok(())
        };
        match kind {
            b"avcC" => {
                let mut at = 5;
                let sps_count = body.get(at).ok_or_else(|| bad("truncated"))? & 0x1f;
                at += 1;
                for _ in 0..sps_count {
                    read_nal(&mut at)?;
                }
                let pps_count = *body.get(at).ok_or_else(|| bad("truncated"))?;
                at += 1;
                for _ in 0..pps_count {
                    read_nal(&mut at)?;
                }
                return Ok((false, sets));
            }
            b"hvcC" => {
                let mut at = 22;
                let arrays = *body.get(at).ok_or_else(|| bad("truncated"))?;
                at += 1;
                for _ in 0..arrays {
                    let count = body.get(at + 1..at + 3).ok_or_else(|| bad("truncated"))?;
                    let count = u16::from_be_bytes([count[0], count[1]]);
                    at += 3;
                    for _ in 0..count {
                        read_nal(&mut at)?;
                    }
                }
                return Ok((true, sets));
            }
            _ => pos += size,
        }
    }
    Err(bad("no avcC or hvcC"))
}

/// The keyframe as an Annex B access unit with its parameter sets first.
fn annex_b(keyframe: &Keyframe) -> Result<(bool, Vec<u8>), SnapshotError> {
    let (hevc, sets) = parameter_sets(&keyframe.sample_entry)?;
    let mut out = Vec::with_capacity(keyframe.sample.len() + 256);
    for set in sets {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(&set);
    }
    let mut at = 0;
    while at + 4 <= keyframe.sample.len() {
        let s = &keyframe.sample;
        let len = u32::from_be_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]]) as usize;
        let nal = s.get(at + 4..at + 4 + len).ok_or_else(|| {
            SnapshotError::Decode("sample NAL length runs past the sample".into())
        })?;
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
        at += 4 + len;
    }
    Ok((hevc, out))
}

/// Decodes the keyframe and encodes it as JPEG.
#[cfg(feature = "ffmpeg")]
pub fn jpeg(keyframe: &Keyframe) -> Result<Vec<u8>, SnapshotError> {
    use ffmpeg_next as ff;
    let fail = |what: &str, e: ff::Error| SnapshotError::Decode(format!("{what}: {e}"));
    ff::init().map_err(|e| fail("init", e))?;
    let (hevc, access_unit) = annex_b(keyframe)?;
    let id = if hevc {
        ff::codec::Id::HEVC
    } else {
        ff::codec::Id::H264
    };
    let codec = ff::codec::decoder::find(id)
        .ok_or_else(|| SnapshotError::Decode("no decoder in this FFmpeg".into()))?;
    let mut decoder = ff::codec::Context::new_with_codec(codec)
        .decoder()
        .video()
        .map_err(|e| fail("open decoder", e))?;
    decoder
        .send_packet(&ff::Packet::copy(&access_unit))
        .map_err(|e| fail("decode", e))?;
    decoder.send_eof().map_err(|e| fail("decode", e))?;
    let mut picture = ff::frame::Video::empty();
    decoder
        .receive_frame(&mut picture)
        .map_err(|e| fail("decode", e))?;

    let (width, height) = (picture.width(), picture.height());
    let mut scaler = ff::software::scaling::Context::get(
        picture.format(),
        width,
        height,
        ff::format::Pixel::YUVJ420P,
        width,
        height,
        ff::software::scaling::Flags::BILINEAR,
    )
    .map_err(|e| fail("scaler", e))?;
    let mut yuv = ff::frame::Video::empty();
    scaler
        .run(&picture, &mut yuv)
        .map_err(|e| fail("scale", e))?;

    let mjpeg = ff::codec::encoder::find(ff::codec::Id::MJPEG)
        .ok_or_else(|| SnapshotError::Decode("no JPEG encoder in this FFmpeg".into()))?;
    let mut encoder = ff::codec::Context::new_with_codec(mjpeg)
        .encoder()
        .video()
        .map_err(|e| fail("encoder", e))?;
    encoder.set_width(width);
    encoder.set_height(height);
    encoder.set_format(ff::format::Pixel::YUVJ420P);
    encoder.set_time_base(ff::Rational::new(1, 25));
    let mut encoder = encoder
        .open_as(mjpeg)
        .map_err(|e| fail("open encoder", e))?;
    yuv.set_pts(Some(0));
    encoder.send_frame(&yuv).map_err(|e| fail("encode", e))?;
    encoder.send_eof().map_err(|e| fail("encode", e))?;
    let mut packet = ff::Packet::empty();
    encoder
        .receive_packet(&mut packet)
        .map_err(|e| fail("encode", e))?;
    packet
        .data()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| SnapshotError::Decode("empty JPEG".into()))
}

/// Without the `ffmpeg` feature there is nothing to decode with.
#[cfg(not(feature = "ffmpeg"))]
pub fn jpeg(keyframe: &Keyframe) -> Result<Vec<u8>, SnapshotError> {
    // Still validate the stored data, so errors are the same either way.
    annex_b(keyframe)?;
    Err(SnapshotError::NotBuilt)
}

/// The last JPEG made per camera, keyed by its keyframe: a dashboard polling
/// every second costs one index lookup, not a decode.
pub type SnapshotCache = std::sync::Arc<
    std::sync::Mutex<std::collections::HashMap<String, ((i64, u64), std::sync::Arc<Vec<u8>>)>>,
>;

/// Why no snapshot could be made.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFailure {
    #[error(transparent)]
    Export(#[from] super::ExportError),
    #[error(transparent)]
    Decode(#[from] SnapshotError),
}

/// The keyframe of `camera` at or before `at` (or the newest) as JPEG, and
/// its UTC time; decoded once per keyframe. Blocking: call off the runtime.
pub fn cached_jpeg(
    cache: &SnapshotCache,
    data_dir: &std::path::Path,
    camera: &str,
    at: Option<i64>,
) -> Result<(std::sync::Arc<Vec<u8>>, i64), SnapshotFailure> {
    let conn = crate::store::open_reader(data_dir).map_err(super::ExportError::from)?;
    let (segment_id, offset, utc_us, file_name) = super::keyframe::locate(&conn, camera, at)?;
    let key = (segment_id, offset);
    if let Some((cached_key, jpeg)) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(camera) {
        if *cached_key == key {
            return Ok((jpeg.clone(), utc_us));
        }
    }
    let keyframe = super::keyframe::read(data_dir, segment_id, offset, utc_us, &file_name)?;
    let jpeg = std::sync::Arc::new(jpeg(&keyframe)?);
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(camera.to_string(), (key, jpeg.clone()));
    Ok((jpeg, utc_us))
}
