//! The served presentation: clips parsed and packetized once at start-up,
//! shared by every session, plus its SDP description.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;

use crate::clip::{self, Clip, ClipInfo, AAC_FRAME_SAMPLES};
use crate::rtp::{self, PacketizedFrame, AUDIO_PT, VIDEO_PT};

/// One track of the presentation (`trackID=<index>`).
#[derive(Debug)]
pub(crate) struct Track {
    /// Every frame of the loop, packetized.
    pub frames: Vec<PacketizedFrame>,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// RTP clock ticks per frame.
    pub ticks_per_frame: u32,
    /// Whether this is the video track (counted in `frames_sent`).
    pub is_video: bool,
    /// The SDP media section without its `a=control` line.
    sdp: String,
}

impl Track {
    /// Time from the start of playback to the `k`-th frame's send deadline.
    pub fn offset_of(&self, k: u64) -> Duration {
        let nanos = u128::from(k) * u128::from(self.ticks_per_frame) * 1_000_000_000
            / u128::from(self.clock_rate);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// The frame to send as the `k`-th frame of the stream (the clip loops).
    pub fn frame(&self, k: u64) -> &PacketizedFrame {
        // `frames` is never empty: construction rejects empty clips.
        let i = (k % self.frames.len() as u64) as usize;
        &self.frames[i]
    }
}

/// The whole presentation: video, then optionally audio.
#[derive(Debug)]
pub(crate) struct Media {
    pub clip: Clip,
    pub info: ClipInfo,
    pub tracks: Vec<Track>,
}

impl Media {
    /// Parses and packetizes the bundled clip (and audio if requested).
    pub fn load(clip: Clip, audio: bool) -> anyhow::Result<Media> {
        let info = clip::clip_info(clip);
        let video = clip::parse_annex_b(clip::h264_bytes(clip))
            .with_context(|| format!("parsing bundled {clip} H.264 clip"))?;
        anyhow::ensure!(
            video.frames.len() == info.frames_per_loop as usize,
            "bundled {clip} clip has {} frames, expected {}",
            video.frames.len(),
            info.frames_per_loop
        );
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut vsdp = String::new();
        let _ = write!(
            vsdp,
            "m=video 0 RTP/AVP {VIDEO_PT}\r\n\
             a=rtpmap:{VIDEO_PT} H264/90000\r\n\
             a=fmtp:{VIDEO_PT} packetization-mode=1;profile-level-id={};sprop-parameter-sets={},{}\r\n\
             a=framerate:{}\r\n",
            video.profile_level_id(),
            b64.encode(&video.sps),
            b64.encode(&video.pps),
            info.fps,
        );
        let mut tracks = vec![Track {
            frames: rtp::packetize_video(&video),
            clock_rate: 90_000,
            ticks_per_frame: 90_000 / info.fps,
            is_video: true,
            sdp: vsdp,
        }];
        if audio {
            let a = clip::parse_adts(clip::aac_bytes()).context("parsing bundled AAC audio")?;
            let config: String = a
                .audio_specific_config
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect();
            let asdp = format!(
                "m=audio 0 RTP/AVP {AUDIO_PT}\r\n\
                 a=rtpmap:{AUDIO_PT} MPEG4-GENERIC/{}/{}\r\n\
                 a=fmtp:{AUDIO_PT} streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config={config}\r\n",
                a.sample_rate, a.channels,
            );
            tracks.push(Track {
                frames: rtp::packetize_audio(&a),
                clock_rate: a.sample_rate,
                ticks_per_frame: AAC_FRAME_SAMPLES,
                is_video: false,
                sdp: asdp,
            });
        }
        Ok(Media { clip, info, tracks })
    }

    /// The SDP for a `DESCRIBE` answered from `local_ip`.
    pub fn sdp(&self, local_ip: IpAddr, session_version: u64) -> String {
        let (net, addr) = match local_ip {
            IpAddr::V4(ip) => ("IP4", ip.to_string()),
            IpAddr::V6(ip) => ("IP6", ip.to_string()),
        };
        let mut s = format!(
            "v=0\r\n\
             o=- {session_version} 1 IN {net} {addr}\r\n\
             s=Porchlight SimCam\r\n\
             i={} clip, {}x{} {} fps\r\n\
             c=IN {net} {}\r\n\
             t=0 0\r\n\
             a=tool:porchlight-simcam\r\n\
             a=range:npt=now-\r\n\
             a=control:*\r\n",
            self.clip,
            self.info.width,
            self.info.height,
            self.info.fps,
            if net == "IP4" { "0.0.0.0" } else { "::" },
        );
        for (i, t) in self.tracks.iter().enumerate() {
            s.push_str(&t.sdp);
            let _ = write!(s, "a=control:trackID={i}\r\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_contents() {
        let m = Media::load(Clip::Sd, true).unwrap();
        let sdp = m.sdp("127.0.0.1".parse().unwrap(), 42);
        assert!(sdp.starts_with("v=0\r\no=- 42 1 IN IP4 127.0.0.1\r\n"));
        assert!(sdp.contains("a=rtpmap:96 H264/90000\r\n"));
        assert!(sdp.contains("packetization-mode=1;profile-level-id=64001E;sprop-parameter-sets=Z"));
        assert!(sdp.contains("a=rtpmap:97 MPEG4-GENERIC/48000/1\r\n"));
        assert!(sdp.contains("config=1188\r\n"));
        assert!(sdp.contains("a=control:trackID=0\r\n"));
        assert!(sdp.contains("a=control:trackID=1\r\n"));
        assert!(sdp.ends_with("\r\n"));
        assert_eq!(m.tracks.len(), 2);
        assert_eq!(m.tracks[0].ticks_per_frame, 3000);
        assert_eq!(m.tracks[0].offset_of(30), Duration::from_secs(1));
        assert_eq!(m.tracks[1].offset_of(375), Duration::from_secs(8));
        assert!(std::ptr::eq(m.tracks[0].frame(120), m.tracks[0].frame(0)));
        assert_eq!(Media::load(Clip::Hd, false).unwrap().tracks.len(), 1);
    }
}
