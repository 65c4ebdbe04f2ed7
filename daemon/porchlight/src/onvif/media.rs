//! Media (ver10) and Media2 (ver20): profiles with their encoders, and the
//! RTSP and snapshot URIs of a profile.

use std::fmt;

use super::error::ErrorKind;
use super::xml::{self, Element};

/// Which media service a profile came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaVersion {
    /// `http://www.onvif.org/ver10/media/wsdl`
    Media1,
    /// `http://www.onvif.org/ver20/media/wsdl`
    Media2,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    H265,
    Jpeg,
    Mpeg4,
    Other(String),
}

impl VideoCodec {
    pub fn parse(text: &str) -> VideoCodec {
        match text.trim().to_ascii_uppercase().as_str() {
            "H264" | "H.264" => VideoCodec::H264,
            "H265" | "H.265" | "HEVC" => VideoCodec::H265,
            "JPEG" | "MJPEG" => VideoCodec::Jpeg,
            "MPEG4" | "MPV4-ES" => VideoCodec::Mpeg4,
            _ => VideoCodec::Other(text.trim().to_string()),
        }
    }
}

impl fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VideoCodec::H264 => "H.264",
            VideoCodec::H265 => "H.265",
            VideoCodec::Jpeg => "JPEG",
            VideoCodec::Mpeg4 => "MPEG-4",
            VideoCodec::Other(s) => s,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct VideoEncoder {
    pub token: Option<String>,
    pub codec: VideoCodec,
    pub width: u32,
    pub height: u32,
    /// `FrameRateLimit`.
    pub fps: Option<f32>,
    /// `BitrateLimit`, kbit/s.
    pub bitrate_kbps: Option<u32>,
    /// GOP length, when given.
    pub gov_length: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioEncoder {
    pub token: Option<String>,
    /// `G711`, `G726`, `AAC` (Media1), `PCMU`, `PCMA`, `MP4A-LATM`... (Media2).
    pub encoding: String,
    /// kbit/s.
    pub bitrate_kbps: Option<u32>,
    /// kHz.
    pub sample_rate_khz: Option<u32>,
}

/// One media profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub token: String,
    pub name: String,
    pub version: MediaVersion,
    /// `None` when the profile has no (usable) video encoder.
    pub video: Option<VideoEncoder>,
    pub audio: Option<AudioEncoder>,
}

pub const GET_PROFILES: (&str, &str) = (
    "http://www.onvif.org/ver10/media/wsdl/GetProfiles",
    "<GetProfiles xmlns=\"http://www.onvif.org/ver10/media/wsdl\"/>",
);
pub const GET_PROFILES2: (&str, &str) = (
    "http://www.onvif.org/ver20/media/wsdl/GetProfiles",
    "<GetProfiles xmlns=\"http://www.onvif.org/ver20/media/wsdl\"><Type>All</Type></GetProfiles>",
);

/// GetStreamUri for RTP-Unicast over RTSP.
pub fn get_stream_uri(version: MediaVersion, profile_token: &str) -> (&'static str, String) {
    let token = xml::escape(profile_token);
    match version {
        MediaVersion::Media1 => (
            "http://www.onvif.org/ver10/media/wsdl/GetStreamUri",
            format!(
                "<GetStreamUri xmlns=\"http://www.onvif.org/ver10/media/wsdl\"><StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></StreamSetup><ProfileToken>{token}</ProfileToken></GetStreamUri>"
            ),
        ),
        MediaVersion::Media2 => (
            "http://www.onvif.org/ver20/media/wsdl/GetStreamUri",
            format!(
                "<GetStreamUri xmlns=\"http://www.onvif.org/ver20/media/wsdl\"><Protocol>RTSP</Protocol><ProfileToken>{token}</ProfileToken></GetStreamUri>"
            ),
        ),
    }
}

pub fn get_snapshot_uri(version: MediaVersion, profile_token: &str) -> (&'static str, String) {
    let token = xml::escape(profile_token);
    match version {
        MediaVersion::Media1 => (
            "http://www.onvif.org/ver10/media/wsdl/GetSnapshotUri",
            format!("<GetSnapshotUri xmlns=\"http://www.onvif.org/ver10/media/wsdl\"><ProfileToken>{token}</ProfileToken></GetSnapshotUri>"),
        ),
        MediaVersion::Media2 => (
            "http://www.onvif.org/ver20/media/wsdl/GetSnapshotUri",
            format!("<GetSnapshotUri xmlns=\"http://www.onvif.org/ver20/media/wsdl\"><ProfileToken>{token}</ProfileToken></GetSnapshotUri>"),
        ),
    }
}

fn expect<'a>(response: &'a Element, name: &str) -> Result<&'a Element, ErrorKind> {
    if response.name == name {
        Ok(response)
    } else {
        Err(ErrorKind::Unexpected(format!(
            "<{}> instead of <{name}>",
            response.name
        )))
    }
}

fn number<T: std::str::FromStr>(e: &Element, path: &[&str]) -> Option<T> {
    e.text_at(path)?.parse().ok()
}

/// Video encoder fields common to both versions; `None` without encoding or size.
fn video_encoder(e: &Element) -> Option<VideoEncoder> {
    let codec = VideoCodec::parse(e.text_at(&["Encoding"])?);
    let width = number(e, &["Resolution", "Width"])?;
    let height = number(e, &["Resolution", "Height"])?;
    let gov_length = e
        .attr("GovLength")
        .and_then(|g| g.parse().ok())
        .or_else(|| number(e, &["H264", "GovLength"]))
        .or_else(|| number(e, &["MPEG4", "GovLength"]));
    Some(VideoEncoder {
        token: e.attr("token").map(str::to_string),
        codec,
        width,
        height,
        fps: number::<f32>(e, &["RateControl", "FrameRateLimit"]).filter(|f| f.is_finite()),
        bitrate_kbps: number(e, &["RateControl", "BitrateLimit"]),
        gov_length,
    })
}

fn audio_encoder(e: &Element) -> Option<AudioEncoder> {
    Some(AudioEncoder {
        token: e.attr("token").map(str::to_string),
        encoding: e.text_at(&["Encoding"])?.to_string(),
        bitrate_kbps: number(e, &["Bitrate"]),
        sample_rate_khz: number(e, &["SampleRate"]),
    })
}

/// Media1 GetProfilesResponse.
pub fn parse_profiles(response: &Element) -> Result<Vec<Profile>, ErrorKind> {
    let r = expect(response, "GetProfilesResponse")?;
    Ok(r.children_named("Profiles")
        .filter_map(|p| {
            Some(Profile {
                token: p.attr("token")?.to_string(),
                name: p.text_at(&["Name"]).unwrap_or_default().to_string(),
                version: MediaVersion::Media1,
                video: p.child("VideoEncoderConfiguration").and_then(video_encoder),
                audio: p.child("AudioEncoderConfiguration").and_then(audio_encoder),
            })
        })
        .collect())
}

/// Media2 GetProfilesResponse (`Configurations/VideoEncoder`, `.../AudioEncoder`).
pub fn parse_profiles2(response: &Element) -> Result<Vec<Profile>, ErrorKind> {
    let r = expect(response, "GetProfilesResponse")?;
    Ok(r.children_named("Profiles")
        .filter_map(|p| {
            let configs = p.child("Configurations");
            Some(Profile {
                token: p.attr("token")?.to_string(),
                name: p.text_at(&["Name"]).unwrap_or_default().to_string(),
                version: MediaVersion::Media2,
                video: configs
                    .and_then(|c| c.child("VideoEncoder"))
                    .and_then(video_encoder),
                audio: configs
                    .and_then(|c| c.child("AudioEncoder"))
                    .and_then(audio_encoder),
            })
        })
        .collect())
}

/// The URI in a GetStreamUri or GetSnapshotUri answer (either version).
pub fn parse_uri(response: &Element, operation: &str) -> Result<String, ErrorKind> {
    let r = expect(response, &format!("{operation}Response"))?;
    r.text_at(&["MediaUri", "Uri"])
        .or_else(|| r.text_at(&["Uri"]))
        .map(str::to_string)
        .ok_or_else(|| ErrorKind::Unexpected(format!("no Uri in the {operation} answer")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(path: &str) -> Element {
        super::super::xml::fixture_body(path)
    }

    #[test]
    fn agsh_profile() {
        let p = parse_profiles(&body("agsh-onvif/GetProfiles.xml")).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].token.as_str(), p[0].name.as_str()), ("main", "main"));
        assert_eq!(
            p[0].video,
            Some(VideoEncoder {
                token: Some("main".into()),
                codec: VideoCodec::H264,
                width: 1920,
                height: 1080,
                fps: Some(5.0),
                bitrate_kbps: Some(1000),
                gov_length: Some(30),
            })
        );
        assert_eq!(p[0].audio, None);
    }

    /// A Hikvision-style answer (`s:` envelope, 164 KB, PTZ/analytics/metadata)
    /// whose main profile's video encoder lost its fields: the profile stays,
    /// without video; the G.711 audio encoders are read.
    #[test]
    fn hammeraj_profiles_with_broken_encoder() {
        let p = parse_profiles(&body(
            "hammeraj-onvif/get_profiles_response_with_invalid_video_encoder.xml",
        ))
        .unwrap();
        assert!(p.len() >= 2, "{}", p.len());
        assert_eq!(p[0].token, "MediaProfile00000");
        assert_eq!(p[0].name, "MediaProfile_Channel1_MainStream");
        assert_eq!(p[0].video, None);
        let audio = p[0].audio.as_ref().unwrap();
        assert_eq!(audio.encoding, "G711");
        assert_eq!(
            (audio.bitrate_kbps, audio.sample_rate_khz),
            (Some(32), Some(8))
        );
        assert_eq!(p[1].token, "MediaProfile00001");
        assert_eq!(p[1].name, "MediaProfile_Channel1_SubStream1");
    }

    #[test]
    fn uris() {
        assert_eq!(
            parse_uri(&body("agsh-onvif/GetStreamUri.xml"), "GetStreamUri").unwrap(),
            "rtsp://192.168.68.111/h264main"
        );
        assert_eq!(
            parse_uri(&body("agsh-onvif/GetSnapshotUri.xml"), "GetSnapshotUri").unwrap(),
            "http://192.168.68.111/onvif-cgi/jpg/image.cgi?resolution=800x600&compression=20&camera=1"
        );
        assert!(parse_uri(&body("agsh-onvif/GetStreamUri.xml"), "GetSnapshotUri").is_err());
    }

    #[test]
    fn media2_profiles() {
        let p = parse_profiles2(&body("handwritten/media2/GetProfiles.xml")).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].token, "Profile_1");
        let v = p[0].video.as_ref().unwrap();
        assert_eq!(
            (v.codec.clone(), v.width, v.height),
            (VideoCodec::H265, 2560, 1440)
        );
        assert_eq!(
            (v.fps, v.bitrate_kbps, v.gov_length),
            (Some(20.0), Some(4096), Some(40))
        );
        assert_eq!(p[0].audio.as_ref().unwrap().encoding, "PCMU");
        let v = p[1].video.as_ref().unwrap();
        assert_eq!(
            (v.codec.clone(), v.width, v.height),
            (VideoCodec::H264, 640, 360)
        );
        assert_eq!(p[1].audio, None);
        assert_eq!(
            parse_uri(&body("handwritten/media2/GetStreamUri.xml"), "GetStreamUri").unwrap(),
            "rtsp://192.168.68.111:554/Streaming/Channels/101"
        );
    }

    #[test]
    fn codecs() {
        assert_eq!(VideoCodec::parse("H264"), VideoCodec::H264);
        assert_eq!(VideoCodec::parse(" h265 "), VideoCodec::H265);
        assert_eq!(VideoCodec::parse("JPEG").to_string(), "JPEG");
        assert_eq!(VideoCodec::parse("SVAC"), VideoCodec::Other("SVAC".into()));
    }
}
