//! Tests at the byte level (a hand-written RTSP client) and with ffprobe
//! as a second, independent client.

use std::time::Duration;

use porchlight_simcam::{Clip, SimCam, SimCamConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

async fn cam(clip: Clip, audio: bool) -> SimCam {
    SimCam::start(SimCamConfig {
        clip,
        audio,
        ..SimCamConfig::default()
    })
    .await
    .expect("simcam starts")
}

/// A minimal RTSP client over one TCP connection.
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

/// A response: status, headers, body.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Raw {
    async fn connect(cam: &SimCam) -> Raw {
        Raw {
            s: TcpStream::connect(cam.local_addr()).await.expect("connect"),
            buf: Vec::new(),
        }
    }

    async fn fill(&mut self) -> usize {
        let mut tmp = [0u8; 16384];
        let n = timeout(Duration::from_secs(5), self.s.read(&mut tmp))
            .await
            .expect("server answers in time")
            .unwrap_or(0);
        self.buf.extend_from_slice(&tmp[..n]);
        n
    }

    /// Reads one response, skipping interleaved data. `None` on EOF.
    async fn response(&mut self) -> Option<Resp> {
        loop {
            while self.buf.first() == Some(&b'$') && self.buf.len() >= 4 {
                let len = 4 + usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
                if self.buf.len() < len {
                    break;
                }
                self.buf.drain(..len);
            }
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                if self.buf[0] != b'$' {
                    let head = String::from_utf8(self.buf[..end].to_vec()).expect("utf-8 head");
                    let mut lines = head.split("\r\n");
                    let status_line = lines.next().unwrap();
                    assert!(status_line.starts_with("RTSP/1.0 "), "{status_line}");
                    let status = status_line[9..12].parse().unwrap();
                    let headers: Vec<(String, String)> = lines
                        .map(|l| {
                            let (n, v) = l.split_once(':').expect("header line");
                            (n.trim().to_owned(), v.trim().to_owned())
                        })
                        .collect();
                    let len = headers
                        .iter()
                        .find(|(n, _)| n == "Content-Length")
                        .map_or(0, |(_, v)| v.parse::<usize>().unwrap());
                    while self.buf.len() < end + 4 + len {
                        if self.fill().await == 0 {
                            return None;
                        }
                    }
                    let body = self.buf[end + 4..end + 4 + len].to_vec();
                    self.buf.drain(..end + 4 + len);
                    return Some(Resp {
                        status,
                        headers,
                        body,
                    });
                }
            }
            if self.fill().await == 0 {
                return None;
            }
        }
    }

    /// Reads one interleaved packet: (channel, payload).
    async fn interleaved(&mut self) -> (u8, Vec<u8>) {
        loop {
            if self.buf.len() >= 4 {
                assert_eq!(self.buf[0], b'$', "expected interleaved data");
                let len = 4 + usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
                if self.buf.len() >= len {
                    let ch = self.buf[1];
                    let p = self.buf[4..len].to_vec();
                    self.buf.drain(..len);
                    return (ch, p);
                }
            }
            assert!(self.fill().await > 0, "EOF while reading media");
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.expect("write");
    }

    async fn request(&mut self, req: &str) -> Resp {
        self.send(req.as_bytes()).await;
        self.response().await.expect("response before EOF")
    }

    /// Asserts the server closes the connection (after any pending response).
    async fn expect_eof(&mut self) {
        loop {
            if self.fill().await == 0 {
                return;
            }
        }
    }
}

#[tokio::test]
async fn malformed_requests_get_400_and_server_survives() {
    let cam = cam(Clip::Sd, false).await;
    let cases: Vec<Vec<u8>> = vec![
        b"GARBAGE\r\n\r\n".to_vec(),
        b"OPTIONS * HTTP/1.1\r\nCSeq: 1\r\n\r\n".to_vec(),
        b"DESCRIBE rtsp://x/ RTSP/1.0\r\nCSeq: 2\r\nbroken header\r\n\r\n".to_vec(),
        b"SETUP rtsp://x/ RTSP/1.0\r\nContent-Length: 99999999\r\n\r\n".to_vec(),
        b"\x00\x01\x02\xff\xfe\r\n\r\n".to_vec(),
        vec![b'A'; 9000],
    ];
    for c in &cases {
        let mut raw = Raw::connect(&cam).await;
        raw.send(c).await;
        let r = raw.response().await.expect("a response");
        assert_eq!(
            r.status,
            400,
            "for {:?}",
            String::from_utf8_lossy(&c[..c.len().min(40)])
        );
        raw.expect_eof().await;
    }

    // A recoverable error keeps the connection: bad URI, unknown method.
    let mut raw = Raw::connect(&cam).await;
    let r = raw
        .request("DESCRIBE http://x/cam RTSP/1.0\r\nCSeq: 3\r\n\r\n")
        .await;
    assert_eq!((r.status, r.header("CSeq")), (400, Some("3")));
    let r = raw
        .request("RECORD rtsp://x/cam RTSP/1.0\r\nCSeq: 4\r\n\r\n")
        .await;
    assert_eq!((r.status, r.header("CSeq")), (501, Some("4")));
    let r = raw
        .request("PLAY rtsp://x/cam RTSP/1.0\r\nCSeq: 5\r\n\r\n")
        .await;
    assert_eq!(r.status, 455, "PLAY before SETUP");
    let r = raw
        .request("PLAY rtsp://x/cam RTSP/1.0\r\nCSeq: 6\r\nSession: nope\r\n\r\n")
        .await;
    assert_eq!(r.status, 454, "unknown session");
    let r = raw
        .request("SETUP rtsp://x/cam/trackID=7 RTSP/1.0\r\nCSeq: 7\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n")
        .await;
    assert_eq!(r.status, 404, "no such track");
    let r = raw
        .request("SETUP rtsp://x/cam/trackID=0 RTSP/1.0\r\nCSeq: 8\r\nTransport: RTP/AVP;multicast\r\n\r\n")
        .await;
    assert_eq!(r.status, 461, "unsupported transport");
    let r = raw.request("OPTIONS * RTSP/1.0\r\nCSeq: 9\r\n\r\n").await;
    assert_eq!(r.status, 200);
    assert!(r.header("Public").unwrap().contains("GET_PARAMETER"));

    // Pseudo-random junk never kills the server.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..50 {
        let mut junk = Vec::new();
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            junk.push(match x % 8 {
                0 => b'\r',
                1 => b'\n',
                2 => b' ',
                3 => b':',
                _ => (x >> 8) as u8,
            });
        }
        junk.extend_from_slice(b"\r\n\r\n");
        let mut raw = Raw::connect(&cam).await;
        raw.send(&junk).await;
        let _ = raw.s.shutdown().await;
        raw.expect_eof().await;
    }
    let mut raw = Raw::connect(&cam).await;
    let r = raw.request("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n").await;
    assert_eq!(r.status, 200, "server still alive");
    cam.shutdown().await;
}

fn rtp_fields(p: &[u8]) -> (bool, u8, u16, u32, u32) {
    assert!(p.len() > 12);
    assert_eq!(p[0], 0x80, "RTP version 2, no padding/extension/CSRC");
    (
        p[1] & 0x80 != 0,
        p[1] & 0x7f,
        u16::from_be_bytes([p[2], p[3]]),
        u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
    )
}

/// Walks a full session by hand and checks the bytes on the wire: SDP,
/// Transport/Session/RTP-Info headers, and that the RTP stream starts at
/// the announced seq/rtptime with the announced SSRC, starts with SPS, PPS
/// and an IDR, fragments large NALs with FU-A and marks frame ends.
#[tokio::test]
async fn wire_level_session() {
    let cam = cam(Clip::Hd, true).await;
    let url = cam.url("wire");
    let mut raw = Raw::connect(&cam).await;
    let r = raw
        .request(&format!(
            "DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/sdp"));
    assert_eq!(r.header("Content-Base"), Some(format!("{url}/").as_str()));
    let sdp = String::from_utf8(r.body).unwrap();
    for needle in [
        "m=video 0 RTP/AVP 96\r\n",
        "a=rtpmap:96 H264/90000\r\n",
        "a=fmtp:96 packetization-mode=1;profile-level-id=640028;sprop-parameter-sets=",
        "a=control:trackID=0\r\n",
        "m=audio 0 RTP/AVP 97\r\n",
        "a=rtpmap:97 MPEG4-GENERIC/48000/1\r\n",
        "mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1188\r\n",
        "a=control:trackID=1\r\n",
        "a=control:*\r\n",
    ] {
        assert!(sdp.contains(needle), "SDP lacks {needle:?}:\n{sdp}");
    }

    let r = raw
        .request(&format!("SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"))
        .await;
    assert_eq!(r.status, 200);
    let session = r.header("Session").unwrap().to_owned();
    let (id, timeout_param) = session.split_once(';').unwrap();
    assert_eq!(timeout_param, "timeout=60");
    let transport = r.header("Transport").unwrap();
    assert!(
        transport.starts_with("RTP/AVP/TCP;unicast;interleaved=0-1;ssrc="),
        "{transport}"
    );
    let ssrc = u32::from_str_radix(transport.rsplit_once("ssrc=").unwrap().1, 16).unwrap();

    // Second track with the session; a clashing channel pair is refused.
    let r = raw
        .request(&format!("SETUP {url}/trackID=1 RTSP/1.0\r\nCSeq: 3\r\nSession: {id}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=1-2\r\n\r\n"))
        .await;
    assert_eq!(r.status, 461);
    let r = raw
        .request(&format!("SETUP {url}/trackID=1 RTSP/1.0\r\nCSeq: 4\r\nSession: {id}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n\r\n"))
        .await;
    assert_eq!(r.status, 200);

    let r = raw
        .request(&format!(
            "PLAY {url}/ RTSP/1.0\r\nCSeq: 5\r\nSession: {id}\r\nRange: npt=0.000-\r\n\r\n"
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Range"), Some("npt=now-"));
    let rtp_info = r.header("RTP-Info").unwrap().to_owned();
    let infos: Vec<&str> = rtp_info.split(',').collect();
    assert_eq!(infos.len(), 2, "{rtp_info}");
    let video_info = infos[0];
    assert!(
        video_info.starts_with(&format!("url={url}/trackID=0;seq=")),
        "{video_info}"
    );
    let param = |k: &str| -> u32 {
        video_info
            .split(';')
            .find_map(|p| p.strip_prefix(k))
            .unwrap()
            .parse()
            .unwrap()
    };
    let (seq0, ts0) = (param("seq=") as u16, param("rtptime="));

    // Read the first two video frames, skipping audio and RTCP.
    let mut next_seq = seq0;
    let mut nal_types = Vec::new();
    let mut frames = 0;
    let mut saw_fu_a = false;
    let mut saw_sr = false;
    while frames < 2 {
        let (ch, p) = raw.interleaved().await;
        match ch {
            0 => {
                let (mark, pt, seq, ts, pkt_ssrc) = rtp_fields(&p);
                assert_eq!(pt, 96);
                assert_eq!(pkt_ssrc, ssrc);
                assert_eq!(seq, next_seq, "consecutive sequence numbers");
                next_seq = seq.wrapping_add(1);
                assert_eq!(
                    ts,
                    ts0.wrapping_add(3000 * frames),
                    "frame {frames} timestamp"
                );
                assert!(p.len() <= 12 + 1400);
                let t = p[12] & 0x1f;
                if t == 28 {
                    saw_fu_a = true;
                    if p[13] & 0x80 != 0 {
                        nal_types.push(p[13] & 0x1f);
                    }
                    if mark {
                        assert!(p[13] & 0x40 != 0, "marker only on a final fragment");
                    }
                } else {
                    nal_types.push(t);
                }
                if mark {
                    frames += 1;
                }
            }
            1 => {
                assert_eq!(p[1], 200, "RTCP sender report first");
                assert_eq!(u32::from_be_bytes([p[4], p[5], p[6], p[7]]), ssrc);
                saw_sr = true;
            }
            2 | 3 => {}
            other => panic!("unexpected channel {other}"),
        }
    }
    assert!(saw_fu_a, "1080p IDR needs FU-A");
    assert!(saw_sr, "sender report sent at start");
    // SPS, PPS, (SEI,) IDR ... then a non-IDR slice; no AUDs.
    assert_eq!(&nal_types[..2], &[7, 8]);
    assert!(nal_types.contains(&5));
    assert_eq!(nal_types.last(), Some(&1));
    assert!(!nal_types.contains(&9));

    // Keepalive and teardown.
    let r = raw
        .request(&format!(
            "GET_PARAMETER {url}/ RTSP/1.0\r\nCSeq: 6\r\nSession: {id}\r\n\r\n"
        ))
        .await;
    assert_eq!(r.status, 200);
    let r = raw
        .request(&format!(
            "TEARDOWN {url}/ RTSP/1.0\r\nCSeq: 7\r\nSession: {id}\r\n\r\n"
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(cam.stats().paths["wire"].sessions_active, 0);
    cam.shutdown().await;
}

/// ffprobe (libavformat's RTSP client) is an independent second client.
#[tokio::test]
async fn ffprobe_sees_hd_h264_and_aac() {
    let cam = cam(Clip::Hd, true).await;
    let out = timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("/usr/bin/ffprobe")
            .args(["-v", "error", "-rtsp_transport", "tcp", "-i"])
            .arg(cam.url("probe"))
            .args([
                "-show_entries",
                "stream=codec_name,width,height,sample_rate,channels",
            ])
            .args(["-of", "default=noprint_wrappers=1"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("ffprobe finishes")
    .expect("ffprobe runs (is /usr/bin/ffprobe installed?)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffprobe failed: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    for want in [
        "codec_name=h264",
        "width=1920",
        "height=1080",
        "codec_name=aac",
        "sample_rate=48000",
        "channels=1",
    ] {
        assert!(
            lines.contains(&want),
            "ffprobe output lacks {want}:\n{stdout}\n{stderr}"
        );
    }
    assert!(cam.frames_sent("probe") > 0);
    cam.shutdown().await;
}
