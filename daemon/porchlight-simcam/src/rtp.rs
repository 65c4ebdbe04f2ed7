//! RTP packetization, done once at start-up, and the cheap per-session
//! stamping of sequence number, timestamp, SSRC and interleaved channel.
//!
//! Every frame is stored as one contiguous "wire image": for each packet a
//! 4-byte RTSP interleaved prefix (`$`, channel, length) followed by the
//! 12-byte RTP header and the payload. A session copies the image into its
//! own buffer, patches the few per-session bytes, and then either writes the
//! whole buffer to the TCP connection at once or sends each packet (without
//! the prefix) as a UDP datagram.

use bytes::{BufMut, Bytes, BytesMut};

use crate::clip::{AccessUnit, AudioClip, VideoClip};

/// Maximum RTP payload size; keeps UDP datagrams under a 1500-byte MTU.
pub(crate) const MAX_PAYLOAD: usize = 1400;
/// Length of the `$ channel len` prefix of an interleaved packet.
pub(crate) const PREFIX_LEN: usize = 4;
/// Length of the fixed RTP header (no CSRCs, no extension).
pub(crate) const RTP_HEADER_LEN: usize = 12;

/// RTP payload type used for the H.264 track.
pub(crate) const VIDEO_PT: u8 = 96;
/// RTP payload type used for the AAC track.
pub(crate) const AUDIO_PT: u8 = 97;

const FU_A: u8 = 28;

/// One frame as a series of ready-to-stamp packets.
#[derive(Debug)]
pub(crate) struct PacketizedFrame {
    /// Concatenated `prefix | RTP header | payload` of every packet.
    wire: Bytes,
    /// Offset into `wire` of each packet's prefix.
    offsets: Vec<usize>,
    /// Total payload bytes (for RTCP sender reports' octet count).
    pub payload_bytes: u32,
}

impl PacketizedFrame {
    fn build(pt: u8, payloads: &[Vec<u8>]) -> Self {
        let total: usize = payloads
            .iter()
            .map(|p| PREFIX_LEN + RTP_HEADER_LEN + p.len())
            .sum();
        let mut wire = BytesMut::with_capacity(total);
        let mut offsets = Vec::with_capacity(payloads.len());
        let mut payload_bytes = 0u32;
        for (i, p) in payloads.iter().enumerate() {
            offsets.push(wire.len());
            let rtp_len = RTP_HEADER_LEN + p.len();
            let marker = if i + 1 == payloads.len() { 0x80 } else { 0 };
            wire.put_u8(b'$');
            wire.put_u8(0); // channel, stamped per session
                            // Payloads are at most MAX_PAYLOAD (+ small header) long, so this fits.
            wire.put_u16(u16::try_from(rtp_len).unwrap_or(u16::MAX));
            wire.put_u8(0x80); // V=2, no padding/extension/CSRC
            wire.put_u8(marker | pt);
            wire.put_bytes(0, 10); // seq, timestamp, ssrc: stamped per session
            wire.put_slice(p);
            payload_bytes = payload_bytes.wrapping_add(p.len() as u32);
        }
        PacketizedFrame {
            wire: wire.freeze(),
            offsets,
            payload_bytes,
        }
    }

    /// Number of RTP packets in this frame.
    pub fn packet_count(&self) -> usize {
        self.offsets.len()
    }

    /// Copies the frame into `out` (replacing its contents), stamping every
    /// packet with `channel`, consecutive sequence numbers starting at `seq`,
    /// `timestamp` and `ssrc`. Returns the next sequence number.
    pub fn stamp(
        &self,
        out: &mut Vec<u8>,
        channel: u8,
        seq: u16,
        timestamp: u32,
        ssrc: u32,
    ) -> u16 {
        out.clear();
        out.extend_from_slice(&self.wire);
        let mut seq = seq;
        let ts = timestamp.to_be_bytes();
        let ssrc = ssrc.to_be_bytes();
        for &off in &self.offsets {
            out[off + 1] = channel;
            let h = off + PREFIX_LEN;
            out[h + 2..h + 4].copy_from_slice(&seq.to_be_bytes());
            out[h + 4..h + 8].copy_from_slice(&ts);
            out[h + 8..h + 12].copy_from_slice(&ssrc);
            seq = seq.wrapping_add(1);
        }
        seq
    }

    /// Iterates over the RTP packets (without interleave prefix) of a
    /// buffer previously filled by [`PacketizedFrame::stamp`].
    pub fn rtp_packets<'a>(&'a self, stamped: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.offsets.iter().enumerate().map(move |(i, &off)| {
            let end = self.offsets.get(i + 1).copied().unwrap_or(self.wire.len());
            &stamped[off + PREFIX_LEN..end]
        })
    }
}

/// Splits one H.264 access unit into RFC 6184 payloads: single NAL unit
/// packets when small enough, FU-A fragments otherwise.
fn h264_payloads(au: &AccessUnit) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for nal in &au.nals {
        if nal.len() <= MAX_PAYLOAD {
            out.push(nal.to_vec());
            continue;
        }
        let hdr = nal[0];
        let indicator = (hdr & 0xe0) | FU_A;
        let body = &nal[1..];
        let chunks: Vec<&[u8]> = body.chunks(MAX_PAYLOAD - 2).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut fu_header = hdr & 0x1f;
            if i == 0 {
                fu_header |= 0x80;
            }
            if i + 1 == chunks.len() {
                fu_header |= 0x40;
            }
            let mut p = Vec::with_capacity(2 + chunk.len());
            p.push(indicator);
            p.push(fu_header);
            p.extend_from_slice(chunk);
            out.push(p);
        }
    }
    out
}

/// Builds an RFC 3640 AAC-hbr payload carrying one access unit.
fn aac_payload(frame: &[u8]) -> Vec<u8> {
    // 13-bit AU-size, 3-bit AU-index (0). Bundled frames are far below 8 KiB.
    let size = frame.len().min(0x1fff) as u16;
    let mut p = Vec::with_capacity(4 + frame.len());
    p.extend_from_slice(&16u16.to_be_bytes()); // AU-headers-length in bits
    p.extend_from_slice(&(size << 3).to_be_bytes());
    p.extend_from_slice(frame);
    p
}

/// Packetizes every frame of a video clip.
pub(crate) fn packetize_video(clip: &VideoClip) -> Vec<PacketizedFrame> {
    clip.frames
        .iter()
        .map(|au| PacketizedFrame::build(VIDEO_PT, &h264_payloads(au)))
        .collect()
}

/// Packetizes every frame of an audio clip (one AU per packet).
pub(crate) fn packetize_audio(clip: &AudioClip) -> Vec<PacketizedFrame> {
    clip.frames
        .iter()
        .map(|f| PacketizedFrame::build(AUDIO_PT, &[aac_payload(f)]))
        .collect()
}

/// Seconds between 1900-01-01 (NTP epoch) and 1970-01-01 (Unix epoch).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Converts a wall-clock time to a 64-bit NTP timestamp.
pub(crate) fn ntp_timestamp(t: std::time::SystemTime) -> u64 {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// CNAME sent in RTCP SDES.
const CNAME: &[u8] = b"porchlight-simcam";

/// Builds an RTCP compound packet: a sender report without report blocks
/// followed by an SDES with a CNAME (RFC 3550 sections 6.4.1 and 6.5).
pub(crate) fn sender_report(
    ssrc: u32,
    ntp: u64,
    rtp_timestamp: u32,
    packet_count: u32,
    octet_count: u32,
) -> Vec<u8> {
    let mut p = Vec::with_capacity(64);
    p.extend_from_slice(&[0x80, 200, 0, 6]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&ntp.to_be_bytes());
    p.extend_from_slice(&rtp_timestamp.to_be_bytes());
    p.extend_from_slice(&packet_count.to_be_bytes());
    p.extend_from_slice(&octet_count.to_be_bytes());
    // SDES: one chunk = ssrc, CNAME item, end marker, padded to 32 bits.
    let item_len = 2 + CNAME.len();
    let chunk_len = (4 + item_len + 1).div_ceil(4) * 4;
    let words = (4 + chunk_len) / 4 - 1;
    p.extend_from_slice(&[0x81, 202]);
    p.extend_from_slice(&(words as u16).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.push(1);
    p.push(CNAME.len() as u8);
    p.extend_from_slice(CNAME);
    let pad = chunk_len - 4 - item_len;
    p.extend(std::iter::repeat_n(0u8, pad));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn au(nals: &[Vec<u8>]) -> AccessUnit {
        AccessUnit {
            nals: nals.iter().map(|n| Bytes::from(n.clone())).collect(),
            is_idr: true,
        }
    }

    /// Reassembles NALs from payloads produced by `h264_payloads`.
    fn depacketize(payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut nals = Vec::new();
        let mut frag: Option<Vec<u8>> = None;
        for p in payloads {
            if p[0] & 0x1f == FU_A {
                let start = p[1] & 0x80 != 0;
                let end = p[1] & 0x40 != 0;
                if start {
                    assert!(frag.is_none());
                    frag = Some(vec![(p[0] & 0xe0) | (p[1] & 0x1f)]);
                }
                let f = frag.as_mut().expect("fragment in progress");
                f.extend_from_slice(&p[2..]);
                if end {
                    nals.push(frag.take().unwrap());
                }
            } else {
                assert!(frag.is_none());
                nals.push(p.clone());
            }
        }
        assert!(frag.is_none());
        nals
    }

    #[test]
    fn h264_round_trip() {
        let big: Vec<u8> = std::iter::once(0x65)
            .chain((0..5000u32).map(|i| (i % 251) as u8))
            .collect();
        let exact: Vec<u8> = std::iter::once(0x41)
            .chain(std::iter::repeat_n(7, MAX_PAYLOAD - 1))
            .collect();
        let nals = vec![vec![0x67, 1, 2], vec![0x68, 3], big, exact];
        let payloads = h264_payloads(&au(&nals));
        assert!(payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
        assert_eq!(payloads.len(), 2 + 5000_usize.div_ceil(MAX_PAYLOAD - 2) + 1);
        assert_eq!(depacketize(&payloads), nals);
    }

    #[test]
    fn stamping_sets_header_fields_and_marker() {
        let nals = vec![vec![0x65; 3000]];
        let f = PacketizedFrame::build(VIDEO_PT, &h264_payloads(&au(&nals)));
        assert_eq!(f.packet_count(), 3);
        let mut buf = Vec::new();
        let next = f.stamp(&mut buf, 2, 0xfffe, 0x1234_5678, 0xdead_beef);
        assert_eq!(next, 1);
        let pkts: Vec<&[u8]> = f.rtp_packets(&buf).collect();
        assert_eq!(pkts.len(), 3);
        let mut off = 0;
        for (i, p) in pkts.iter().enumerate() {
            // Interleaved prefix in the TCP image.
            assert_eq!(buf[off], b'$');
            assert_eq!(buf[off + 1], 2);
            assert_eq!(
                usize::from(u16::from_be_bytes([buf[off + 2], buf[off + 3]])),
                p.len()
            );
            off += PREFIX_LEN + p.len();
            assert_eq!(p[0], 0x80);
            assert_eq!(p[1] & 0x7f, VIDEO_PT);
            assert_eq!(p[1] & 0x80 != 0, i == 2, "marker only on last");
            let seq = u16::from_be_bytes([p[2], p[3]]);
            assert_eq!(seq, 0xfffe_u16.wrapping_add(i as u16));
            assert_eq!(&p[4..8], &0x1234_5678u32.to_be_bytes());
            assert_eq!(&p[8..12], &0xdead_beefu32.to_be_bytes());
        }
        assert_eq!(off, buf.len());
    }

    #[test]
    fn aac_payload_header() {
        let p = aac_payload(&[9; 300]);
        assert_eq!(
            &p[..4],
            &[
                0x00,
                0x10,
                (300u16 >> 5) as u8,
                ((300u16 & 0x1f) << 3) as u8
            ]
        );
        assert_eq!(p.len(), 304);
    }

    #[test]
    fn sender_report_layout() {
        let p = sender_report(1, 2, 3, 4, 5);
        assert_eq!(p.len() % 4, 0);
        assert_eq!(&p[..4], &[0x80, 200, 0, 6]);
        let sdes = &p[28..];
        assert_eq!(sdes[1], 202);
        let words = usize::from(u16::from_be_bytes([sdes[2], sdes[3]]));
        assert_eq!((words + 1) * 4, sdes.len());
    }
}
