//! The bundled clips and their start-up parsing: Annex-B H.264 into access
//! units, ADTS AAC into raw access units plus an `AudioSpecificConfig`.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;

static HD_H264: &[u8] = include_bytes!("../clips/hd.h264");
static SD_H264: &[u8] = include_bytes!("../clips/sd.h264");
static AUDIO_AAC: &[u8] = include_bytes!("../clips/audio.aac");

/// Which bundled video clip a simulated camera serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Clip {
    /// 1920x1080, 30 fps, ~4 Mbit/s H.264 High, 2 s loop (60 frames).
    Hd,
    /// 640x360, 30 fps, ~1 Mbit/s H.264 High, 4 s loop (120 frames).
    Sd,
}

/// Error returned when parsing a [`Clip`] name other than `hd` or `sd`.
#[derive(Debug, thiserror::Error)]
#[error("unknown clip {0:?}; expected \"hd\" or \"sd\"")]
pub struct UnknownClip(pub String);

impl FromStr for Clip {
    type Err = UnknownClip;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hd" => Ok(Clip::Hd),
            "sd" => Ok(Clip::Sd),
            _ => Err(UnknownClip(s.to_owned())),
        }
    }
}

impl fmt::Display for Clip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Clip::Hd => "hd",
            Clip::Sd => "sd",
        })
    }
}

/// Facts about a bundled clip, for tests and for the daemon's demo mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClipInfo {
    /// Picture width in pixels (after SPS cropping).
    pub width: u32,
    /// Picture height in pixels (after SPS cropping).
    pub height: u32,
    /// Frames per second; each frame advances the 90 kHz RTP clock by `90_000 / fps`.
    pub fps: u32,
    /// Video frames (access units) in one loop of the clip.
    pub frames_per_loop: u32,
    /// Distance between IDR frames; frame `n` of the stream is an IDR iff `n % gop == 0`.
    pub gop: u32,
}

/// Returns the facts of a bundled clip (checked against the parsed clip by unit tests).
pub fn clip_info(clip: Clip) -> ClipInfo {
    match clip {
        Clip::Hd => ClipInfo {
            width: 1920,
            height: 1080,
            fps: 30,
            frames_per_loop: 60,
            gop: 30,
        },
        Clip::Sd => ClipInfo {
            width: 640,
            height: 360,
            fps: 30,
            frames_per_loop: 120,
            gop: 30,
        },
    }
}

/// The raw Annex-B bytes of a bundled clip.
pub(crate) fn h264_bytes(clip: Clip) -> &'static [u8] {
    match clip {
        Clip::Hd => HD_H264,
        Clip::Sd => SD_H264,
    }
}

/// The raw ADTS bytes of the bundled audio track (shared by both clips).
pub(crate) fn aac_bytes() -> &'static [u8] {
    AUDIO_AAC
}

/// Why a clip could not be parsed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClipError {
    #[error("no H.264 NAL units found")]
    NoNals,
    #[error("no SPS/PPS found before the first picture")]
    NoParameterSets,
    #[error("access unit {0} has no picture (VCL) NAL unit")]
    NoPicture(usize),
    #[error("first access unit is not an IDR")]
    FirstNotIdr,
    #[error("ADTS frame at byte {pos}: {what}")]
    Adts { pos: usize, what: &'static str },
    #[error("ADTS stream has no frames")]
    NoAudioFrames,
}

const NAL_SLICE: u8 = 1;
const NAL_IDR: u8 = 5;
const NAL_SEI: u8 = 6;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;
const NAL_FILLER: u8 = 12;

/// One video access unit: the NAL units of a frame without start codes or AUD.
#[derive(Debug)]
pub(crate) struct AccessUnit {
    pub nals: Vec<Bytes>,
    pub is_idr: bool,
}

/// A parsed H.264 clip.
#[derive(Debug)]
pub(crate) struct VideoClip {
    pub sps: Bytes,
    pub pps: Bytes,
    pub frames: Vec<AccessUnit>,
}

impl VideoClip {
    /// `profile_idc`, `constraint flags`, `level_idc` as six hex digits for SDP.
    pub fn profile_level_id(&self) -> String {
        let b = |i: usize| self.sps.get(i).copied().unwrap_or(0);
        format!("{:02X}{:02X}{:02X}", b(1), b(2), b(3))
    }
}

fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map(|b| b & 0x1f).unwrap_or(0)
}

fn is_vcl(t: u8) -> bool {
    (NAL_SLICE..=NAL_IDR).contains(&t)
}

/// Splits Annex-B bytes into NAL units (without start codes or trailing zeros).
fn split_annex_b(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map(|&n| n - 3).unwrap_or(data.len());
        let mut nal = &data[s..end];
        while let [rest @ .., 0] = nal {
            nal = rest;
        }
        if !nal.is_empty() {
            nals.push(nal);
        }
    }
    nals
}

/// Parses an Annex-B H.264 stream into access units.
///
/// A new access unit starts at an AUD, at an SPS/PPS/SEI following a
/// picture, or at a slice with `first_mb_in_slice == 0` following a picture.
/// AUDs and filler data are dropped; in-band SPS/PPS are kept.
pub(crate) fn parse_annex_b(data: &'static [u8]) -> Result<VideoClip, ClipError> {
    let nals = split_annex_b(data);
    if nals.is_empty() {
        return Err(ClipError::NoNals);
    }
    let whole = Bytes::from_static(data);
    let mut sps = None;
    let mut pps = None;
    let mut frames: Vec<AccessUnit> = Vec::new();
    let mut cur: Vec<Bytes> = Vec::new();
    let mut cur_has_vcl = false;
    let mut cur_idr = false;
    let mut finish = |cur: &mut Vec<Bytes>, has_vcl: &mut bool, idr: &mut bool| {
        if !cur.is_empty() {
            frames.push(AccessUnit {
                nals: std::mem::take(cur),
                is_idr: *idr,
            });
        }
        *has_vcl = false;
        *idr = false;
    };
    for nal in nals {
        let t = nal_type(nal);
        let first_mb_zero = nal.get(1).is_some_and(|b| b & 0x80 != 0);
        let starts_new = match t {
            NAL_AUD => true,
            NAL_SPS | NAL_PPS | NAL_SEI => cur_has_vcl,
            _ if is_vcl(t) => cur_has_vcl && first_mb_zero,
            _ => false,
        };
        if starts_new {
            finish(&mut cur, &mut cur_has_vcl, &mut cur_idr);
        }
        match t {
            NAL_AUD | NAL_FILLER => continue,
            NAL_SPS if sps.is_none() => sps = Some(whole.slice_ref(nal)),
            NAL_PPS if pps.is_none() => pps = Some(whole.slice_ref(nal)),
            _ => {}
        }
        if is_vcl(t) {
            cur_has_vcl = true;
            cur_idr |= t == NAL_IDR;
        }
        cur.push(whole.slice_ref(nal));
    }
    finish(&mut cur, &mut cur_has_vcl, &mut cur_idr);
    let (Some(sps), Some(pps)) = (sps, pps) else {
        return Err(ClipError::NoParameterSets);
    };
    for (i, f) in frames.iter().enumerate() {
        if !f.nals.iter().any(|n| is_vcl(nal_type(n))) {
            return Err(ClipError::NoPicture(i));
        }
    }
    if !frames.first().is_some_and(|f| f.is_idr) {
        return Err(ClipError::FirstNotIdr);
    }
    Ok(VideoClip { sps, pps, frames })
}

/// A parsed AAC track.
#[derive(Debug)]
pub(crate) struct AudioClip {
    pub sample_rate: u32,
    pub channels: u8,
    /// The 2-byte `AudioSpecificConfig` (ISO 14496-3 1.6.2.1) for SDP `config=`.
    pub audio_specific_config: [u8; 2],
    /// Raw AAC access units (ADTS headers stripped); each is 1024 samples.
    pub frames: Vec<Bytes>,
}

/// Samples per AAC-LC access unit.
pub(crate) const AAC_FRAME_SAMPLES: u32 = 1024;

const ADTS_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Parses an ADTS stream into raw AAC frames; all frames must share one configuration.
pub(crate) fn parse_adts(data: &'static [u8]) -> Result<AudioClip, ClipError> {
    let whole = Bytes::from_static(data);
    let mut pos = 0;
    let mut frames = Vec::new();
    let mut config: Option<(u8, u8, u8)> = None;
    while pos < data.len() {
        let err = |what| ClipError::Adts { pos, what };
        let h = data
            .get(pos..pos + 7)
            .ok_or_else(|| err("truncated header"))?;
        if h[0] != 0xff || h[1] & 0xf0 != 0xf0 {
            return Err(err("bad syncword"));
        }
        let protection_absent = h[1] & 1 == 1;
        let profile = h[2] >> 6;
        let rate_index = (h[2] >> 2) & 0x0f;
        let channels = ((h[2] & 1) << 2) | (h[3] >> 6);
        let frame_len =
            (usize::from(h[3] & 0x03) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        let raw_blocks = h[6] & 0x03;
        let header_len = if protection_absent { 7 } else { 9 };
        if raw_blocks != 0 {
            return Err(err(
                "multiple raw data blocks per ADTS frame are unsupported",
            ));
        }
        if usize::from(rate_index) >= ADTS_RATES.len() || channels == 0 {
            return Err(err("unsupported sample rate or channel configuration"));
        }
        if frame_len <= header_len {
            return Err(err("frame shorter than its header"));
        }
        let body = data
            .get(pos + header_len..pos + frame_len)
            .ok_or_else(|| err("truncated frame"))?;
        match config {
            None => config = Some((profile, rate_index, channels)),
            Some(c) if c != (profile, rate_index, channels) => {
                return Err(err("configuration changes mid-stream"));
            }
            Some(_) => {}
        }
        frames.push(whole.slice_ref(body));
        pos += frame_len;
    }
    let (profile, rate_index, channels) = config.ok_or(ClipError::NoAudioFrames)?;
    // AudioSpecificConfig: audioObjectType(5) samplingFrequencyIndex(4)
    // channelConfiguration(4) then GASpecificConfig's three zero flags.
    let object_type = u16::from(profile) + 1;
    let asc = (object_type << 11) | (u16::from(rate_index) << 7) | (u16::from(channels) << 3);
    Ok(AudioClip {
        sample_rate: ADTS_RATES[usize::from(rate_index)],
        channels,
        audio_specific_config: asc.to_be_bytes(),
        frames,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_clips_match_clip_info() {
        for clip in [Clip::Hd, Clip::Sd] {
            let info = clip_info(clip);
            let v = parse_annex_b(h264_bytes(clip)).expect("bundled clip parses");
            assert_eq!(v.frames.len(), info.frames_per_loop as usize, "{clip}");
            for (i, f) in v.frames.iter().enumerate() {
                assert_eq!(
                    f.is_idr,
                    (i as u32).is_multiple_of(info.gop),
                    "{clip} frame {i}"
                );
                assert!(f.nals.iter().all(|n| nal_type(n) != NAL_AUD));
                if f.is_idr {
                    assert_eq!(f.nals[0], v.sps, "{clip} frame {i} starts with SPS");
                    assert_eq!(f.nals[1], v.pps);
                }
            }
            assert_eq!(nal_type(&v.sps), NAL_SPS);
            assert_eq!(nal_type(&v.pps), NAL_PPS);
            // High profile (100), level 4.0 for hd / 3.0 for sd.
            assert!(v.profile_level_id().starts_with("64"));
            // Average bitrate near the nominal target.
            let bits = h264_bytes(clip).len() as f64 * 8.0;
            let secs = f64::from(info.frames_per_loop) / f64::from(info.fps);
            let target = match clip {
                Clip::Hd => 4.0e6,
                Clip::Sd => 1.0e6,
            };
            let rate = bits / secs;
            assert!((rate / target - 1.0).abs() < 0.2, "{clip}: {rate} bit/s");
        }
    }

    #[test]
    fn bundled_audio() {
        let a = parse_adts(aac_bytes()).expect("bundled audio parses");
        assert_eq!(a.sample_rate, 48000);
        assert_eq!(a.channels, 1);
        // AAC-LC (2), index 3 (48 kHz), mono.
        assert_eq!(a.audio_specific_config, [0x11, 0x88]);
        assert!(a.frames.len() > 180, "{}", a.frames.len());
    }

    #[test]
    fn annex_b_splitting_handles_4_byte_start_codes() {
        static DATA: &[u8] = &[
            0, 0, 0, 1, 0x09, 0xf0, // AUD
            0, 0, 0, 1, 0x67, 1, 2, 3, // SPS
            0, 0, 1, 0x68, 4, // PPS
            0, 0, 1, 0x65, 0x88, 9, 0, // IDR slice, trailing zero dropped
            0, 0, 0, 1, 0x09, 0xf0, // AUD
            0, 0, 1, 0x41, 0x9a, 7, // P slice
            0, 0, 1, 0x41, 0x9b, 8, // another P slice, first_mb = 0 -> new AU
        ];
        let v = parse_annex_b(DATA).unwrap();
        assert_eq!(&v.sps[..], &[0x67, 1, 2, 3]);
        assert_eq!(&v.pps[..], &[0x68, 4]);
        assert_eq!(v.frames.len(), 3);
        assert!(v.frames[0].is_idr);
        assert_eq!(v.frames[0].nals.len(), 3);
        assert_eq!(&v.frames[0].nals[2][..], &[0x65, 0x88, 9]);
        assert!(!v.frames[1].is_idr);
        assert_eq!(v.profile_level_id(), "010203");
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(parse_annex_b(&[1, 2, 3, 4]).is_err());
        assert!(parse_annex_b(&[0, 0, 1, 0x41, 0x9a]).is_err());
        assert!(parse_adts(&[0xff, 0xf1, 0x4c]).is_err());
        assert!(parse_adts(&[0x12, 0xf1, 0x4c, 0x80, 0x2e, 0x7f, 0xfc]).is_err());
        assert!(parse_adts(&[]).is_err());
    }

    #[test]
    fn clip_from_str() {
        assert_eq!("hd".parse::<Clip>().unwrap(), Clip::Hd);
        assert_eq!("SD".parse::<Clip>().unwrap(), Clip::Sd);
        assert!("4k".parse::<Clip>().is_err());
    }
}

/// The clip's frames as MP4 samples (4-byte length-prefixed NAL units, no
/// parameter sets), with the SPS and PPS that describe them. For tools that
/// write footage without a network, such as the export benchmark.
#[derive(Debug, Clone)]
pub struct ClipSamples {
    /// Sequence parameter set (NAL unit without start code).
    pub sps: Vec<u8>,
    /// Picture parameter set (NAL unit without start code).
    pub pps: Vec<u8>,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// (sample bytes, is keyframe), at `fps` frames a second.
    pub frames: Vec<(Vec<u8>, bool)>,
}

/// Parses a bundled clip into [`ClipSamples`].
pub fn clip_samples(clip: Clip) -> Result<ClipSamples, String> {
    let video = parse_annex_b(h264_bytes(clip)).map_err(|e| e.to_string())?;
    let info = clip_info(clip);
    let frames = video
        .frames
        .iter()
        .map(|au| {
            let mut sample = Vec::new();
            for nal in au.nals.iter().filter(|n| !matches!(nal_type(n), 7 | 8)) {
                sample.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                sample.extend_from_slice(nal);
            }
            (sample, au.is_idr)
        })
        .collect();
    Ok(ClipSamples {
        sps: video.sps.to_vec(),
        pps: video.pps.to_vec(),
        width: info.width,
        height: info.height,
        frames,
    })
}
