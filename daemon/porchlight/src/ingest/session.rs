//! One RTSP session with a camera, via retina: DESCRIBE, SETUP, PLAY, then
//! frames into the fragmenter until the camera stops or fails. No decoding.

use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use retina::client::{self, Credentials, PlayOptions, SessionOptions, SetupOptions};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};
use tokio::sync::mpsc;

use super::fragmenter::{AudioTrack, Fragmenter, TrackSetup, VideoTrack, WriteJob};
use crate::config::Transport;
use crate::health::{StreamDescription, StreamHealth, StreamState};
use crate::time::now_utc_us;

/// How long a camera may stay silent before we call the session dead.
const SILENCE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long DESCRIBE/SETUP/PLAY may take together.
const SETUP_TIMEOUT: Duration = Duration::from_secs(15);

pub struct SessionParams<'a> {
    pub url: &'a url::Url,
    pub credentials: Option<Credentials>,
    pub transport: Transport,
    pub audio: bool,
    pub health: &'a StreamHealth,
    pub session_group: std::sync::Arc<client::SessionGroup>,
    /// The camera's live feed (main stream only).
    pub live: Option<&'a crate::live::LiveFeed>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("camera refused the credentials (401 Unauthorized): {0}")]
    Unauthorized(String),
    #[error("{0}")]
    Failed(String),
    #[error("the writer has stopped")]
    WriterGone,
}

impl SessionError {
    fn from_retina(error: retina::Error) -> SessionError {
        if error.status_code() == Some(401) {
            SessionError::Unauthorized(first_line(&error.to_string()))
        } else {
            SessionError::Failed(first_line(&error.to_string()))
        }
    }
}

/// Ends the camera's live session when dropped.
struct LiveSessionGuard<'a>(&'a crate::live::LiveFeed);

impl Drop for LiveSessionGuard<'_> {
    fn drop(&mut self) {
        self.0.end_session();
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).to_string()
}

/// Runs one session to its end. `Ok` means the camera ended the stream.
pub async fn run(
    params: SessionParams<'_>,
    fragmenter: &mut Fragmenter,
    writer: &mpsc::Sender<WriteJob>,
) -> Result<(), SessionError> {
    // However this ends (the camera, an error, or the caller dropping this
    // future), the live feed's session ends with it, once.
    let _live_session = params.live.map(LiveSessionGuard);
    let (mut playing, video_index, audio_index) =
        tokio::time::timeout(SETUP_TIMEOUT, connect(&params))
            .await
            .map_err(|_| {
                SessionError::Failed(format!(
                    "camera did not finish RTSP setup within {SETUP_TIMEOUT:?}"
                ))
            })??;

    let audio_track = audio_index.and_then(|i| audio_track(playing.streams().get(i)?));
    let mut setup: Option<TrackSetup> = None;
    let mut jobs = Vec::new();
    let result = loop {
        let item = match tokio::time::timeout(SILENCE_TIMEOUT, playing.next()).await {
            Err(_) => {
                break Err(SessionError::Failed(format!(
                    "no data from camera for {SILENCE_TIMEOUT:?}"
                )))
            }
            Ok(None) => break Ok(()),
            Ok(Some(Err(e))) => break Err(SessionError::from_retina(e)),
            Ok(Some(Ok(item))) => item,
        };
        let arrival = now_utc_us();
        match item {
            CodecItem::VideoFrame(frame) => {
                if frame.loss() > 0 {
                    params
                        .health
                        .packets_lost_total
                        .fetch_add(u64::from(frame.loss()), Ordering::Relaxed);
                }
                if frame.has_new_parameters() || setup.is_none() {
                    if let Some(video) = playing.streams().get(video_index).and_then(video_track) {
                        params.health.set_description(StreamDescription {
                            video_codec: Some(video.codec.clone()),
                            width: Some(video.width),
                            height: Some(video.height),
                            audio_codec: audio_track.as_ref().map(|a| a.codec.clone()),
                        });
                        if setup.is_none() {
                            params.health.set_state(StreamState::Streaming, None);
                        }
                        setup = Some(TrackSetup {
                            video,
                            audio: audio_track.clone(),
                        });
                    }
                }
                let is_key = frame.is_random_access_point();
                let media = frame.timestamp().timestamp();
                let current = if is_key { setup.as_ref() } else { None };
                // Live first: viewers get the frame now, not a GOP later.
                if let Some(live) = params.live {
                    live.publish_video(media, is_key, frame.data(), current);
                }
                fragmenter.push_video(
                    media,
                    is_key,
                    frame.into_data(),
                    arrival,
                    current,
                    &mut jobs,
                );
            }
            CodecItem::AudioFrame(frame) => {
                let duration = frame.frame_length().get();
                let media = frame.timestamp().timestamp();
                fragmenter.push_audio(media, duration, frame.data().to_vec(), arrival);
            }
            _ => {}
        }
        if send_jobs(writer, &mut jobs, params.health).await.is_err() {
            break Err(SessionError::WriterGone);
        }
    };
    fragmenter.finish(&mut jobs);
    let _ = send_jobs(writer, &mut jobs, params.health).await;
    result
}

/// Hands jobs to the writer: fragments without waiting (dropped and counted
/// when the writer is behind), segment boundaries with waiting (rare).
async fn send_jobs(
    writer: &mpsc::Sender<WriteJob>,
    jobs: &mut Vec<WriteJob>,
    health: &StreamHealth,
) -> Result<(), ()> {
    for job in jobs.drain(..) {
        match job {
            WriteJob::Fragment(_) => match writer.try_send(job) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    health
                        .fragments_dropped_total
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("writer is behind; fragment dropped");
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(()),
            },
            other => writer.send(other).await.map_err(|_| ())?,
        }
    }
    Ok(())
}

async fn connect(
    params: &SessionParams<'_>,
) -> Result<(client::Demuxed, usize, Option<usize>), SessionError> {
    let options = SessionOptions::default()
        .creds(params.credentials.clone())
        .session_group(params.session_group.clone())
        .user_agent(format!("Porchlight/{}", env!("CARGO_PKG_VERSION")))
        .teardown(client::TeardownPolicy::Auto);
    let mut session = client::Session::describe(params.url.clone(), options)
        .await
        .map_err(SessionError::from_retina)?;

    let video_index = session
        .streams()
        .iter()
        .position(|s| s.media() == "video" && matches!(s.encoding_name(), "h264" | "h265"))
        .ok_or_else(|| {
            let offered: Vec<String> = session
                .streams()
                .iter()
                .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
                .collect();
            SessionError::Failed(format!(
                "camera offers no H.264 or H.265 video (offers: {})",
                offered.join(", ")
            ))
        })?;
    let audio_index = if params.audio {
        session.streams().iter().position(|s| {
            s.media() == "audio" && matches!(s.encoding_name(), "mpeg4-generic" | "pcmu" | "pcma")
        })
    } else {
        None
    };

    let transport = match params.transport {
        Transport::Tcp => client::Transport::Tcp(Default::default()),
        Transport::Udp => client::Transport::Udp(Default::default()),
    };
    for index in std::iter::once(video_index).chain(audio_index) {
        session
            .setup(
                index,
                SetupOptions::default()
                    .transport(transport.clone())
                    .frame_format(FrameFormat::MP4),
            )
            .await
            .map_err(SessionError::from_retina)?;
    }
    let play = PlayOptions::default()
        .enforce_timestamps_with_max_jump_secs(NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN));
    let playing = session
        .play(play)
        .await
        .map_err(SessionError::from_retina)?;
    let demuxed = playing.demuxed().map_err(SessionError::from_retina)?;
    Ok((demuxed, video_index, audio_index))
}

fn video_track(stream: &client::Stream) -> Option<VideoTrack> {
    let Some(ParametersRef::Video(video)) = stream.parameters() else {
        return None;
    };
    let sample_entry = match video.mp4_sample_entry().build() {
        Ok(entry) => entry,
        Err(e) => {
            tracing::warn!(error = %e, "cannot describe this video stream in MP4");
            return None;
        }
    };
    let (width, height) = video.pixel_dimensions();
    Some(VideoTrack {
        codec: video.rfc6381_codec().to_string(),
        width,
        height,
        clock_rate: stream.clock_rate_hz(),
        sample_entry,
    })
}

fn audio_track(stream: &client::Stream) -> Option<AudioTrack> {
    let channels = stream.channels().map_or(1, |c| c.get());
    let clock_rate = stream.clock_rate_hz();
    let (codec, sample_entry) = match stream.encoding_name() {
        "pcmu" => (
            "ulaw".to_string(),
            porchlight_mp4::g711_sample_entry(porchlight_mp4::G711Law::Mu, clock_rate, channels),
        ),
        "pcma" => (
            "alaw".to_string(),
            porchlight_mp4::g711_sample_entry(porchlight_mp4::G711Law::A, clock_rate, channels),
        ),
        _ => {
            let Some(ParametersRef::Audio(audio)) = stream.parameters() else {
                return None;
            };
            let entry = audio.mp4_sample_entry().build().ok()?;
            (
                audio.rfc6381_codec().unwrap_or("mp4a.40.2").to_string(),
                entry,
            )
        }
    };
    Some(AudioTrack {
        codec,
        clock_rate,
        channels,
        sample_entry,
    })
}
