//! One set-up track of a session: its RTP state, its pacing by absolute
//! deadlines, and sending its frames over interleaved TCP or UDP.

use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::media::Track;
use crate::rtp;
use crate::stats::PathCounters;

/// If a stream falls further behind than this (slow client, overloaded
/// host), it skips ahead instead of bursting to catch up: a live camera
/// doesn't replay the past. RTP timestamps still advance by exactly one
/// frame per frame sent.
const MAX_LAG: Duration = Duration::from_secs(1);
/// A TCP write blocked this long means the client stopped reading.
pub(crate) const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Interval between RTCP sender reports.
const SR_INTERVAL: Duration = Duration::from_secs(5);

/// Where a track's packets go.
#[derive(Debug)]
pub(crate) enum Sink {
    /// Interleaved on the RTSP connection: RTP on `channel`, RTCP on `channel + 1`.
    Tcp { channel: u8 },
    /// UDP sockets connected to the client's RTP and RTCP ports.
    Udp { rtp: UdpSocket, rtcp: UdpSocket },
}

/// A track set up in a session.
#[derive(Debug)]
pub(crate) struct TrackStream {
    /// Index into the presentation's tracks (`trackID`).
    pub track: usize,
    /// The control URL exactly as the client sent it in `SETUP` (for `RTP-Info`).
    pub control_url: String,
    pub sink: Sink,
    pub ssrc: u32,
    seq: u16,
    ts_base: u32,
    /// Frames sent since `SETUP`; the next frame's timestamp is `ts_base + sent * ticks`.
    sent: u64,
    /// Deadline of frame `k` is `epoch + offset_of(k - epoch_count)`.
    epoch: Instant,
    epoch_count: u64,
    packets: u32,
    octets: u32,
    next_sr: Option<Instant>,
}

impl TrackStream {
    /// A new stream with random SSRC, initial sequence number and timestamp.
    pub fn new(track: usize, control_url: String, sink: Sink) -> Self {
        TrackStream {
            track,
            control_url,
            sink,
            ssrc: rand::random(),
            seq: rand::random(),
            ts_base: rand::random(),
            sent: 0,
            epoch: Instant::now(),
            epoch_count: 0,
            packets: 0,
            octets: 0,
            next_sr: None,
        }
    }

    /// Sequence number of the next packet.
    pub fn next_seq(&self) -> u16 {
        self.seq
    }

    /// RTP timestamp of the next frame.
    pub fn next_rtptime(&self, t: &Track) -> u32 {
        self.ts_base
            .wrapping_add((self.sent as u32).wrapping_mul(t.ticks_per_frame))
    }

    /// (Re)starts pacing: the next frame is due at `now`.
    pub fn start(&mut self, now: Instant) {
        self.epoch = now;
        self.epoch_count = self.sent;
    }

    /// When the next frame is due.
    pub fn deadline(&self, t: &Track) -> Instant {
        self.epoch + t.offset_of(self.sent - self.epoch_count)
    }

    /// Sends every frame due at or before `now`.
    pub async fn send_due<W: AsyncWrite + Unpin>(
        &mut self,
        t: &Track,
        now: Instant,
        out: &mut Vec<u8>,
        wr: &mut W,
        counters: &PathCounters,
    ) -> io::Result<()> {
        loop {
            let due = self.deadline(t);
            if due > now {
                return Ok(());
            }
            if now.duration_since(due) > MAX_LAG {
                tracing::debug!(
                    track = self.track,
                    lag_ms = now.duration_since(due).as_millis() as u64,
                    "stream fell behind; skipping ahead"
                );
                self.start(now);
            }
            self.send_frame(t, now, out, wr, counters).await?;
        }
    }

    async fn send_frame<W: AsyncWrite + Unpin>(
        &mut self,
        t: &Track,
        now: Instant,
        out: &mut Vec<u8>,
        wr: &mut W,
        counters: &PathCounters,
    ) -> io::Result<()> {
        let ts = self.next_rtptime(t);
        if self.next_sr.is_none_or(|d| now >= d) {
            self.send_sender_report(ts, wr).await?;
            self.next_sr = Some(now + SR_INTERVAL);
        }
        let frame = t.frame(self.sent);
        let channel = match self.sink {
            Sink::Tcp { channel } => channel,
            Sink::Udp { .. } => 0,
        };
        self.seq = frame.stamp(out, channel, self.seq, ts, self.ssrc);
        let bytes = match &self.sink {
            Sink::Tcp { .. } => {
                write_stalled(wr, out).await?;
                out.len()
            }
            Sink::Udp { rtp, .. } => {
                let mut n = 0;
                for pkt in frame.rtp_packets(out) {
                    n += udp_send(rtp, pkt).await?;
                }
                n
            }
        };
        self.sent += 1;
        self.packets = self.packets.wrapping_add(frame.packet_count() as u32);
        self.octets = self.octets.wrapping_add(frame.payload_bytes);
        counters
            .bytes_sent
            .fetch_add(bytes as u64, Ordering::Relaxed);
        if t.is_video {
            counters.frames_sent.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn send_sender_report<W: AsyncWrite + Unpin>(
        &self,
        rtp_timestamp: u32,
        wr: &mut W,
    ) -> io::Result<()> {
        let sr = rtp::sender_report(
            self.ssrc,
            rtp::ntp_timestamp(SystemTime::now()),
            rtp_timestamp,
            self.packets,
            self.octets,
        );
        match &self.sink {
            Sink::Tcp { channel } => {
                let mut buf = Vec::with_capacity(rtp::PREFIX_LEN + sr.len());
                buf.push(b'$');
                buf.push(channel.wrapping_add(1));
                buf.extend_from_slice(&(sr.len() as u16).to_be_bytes());
                buf.extend_from_slice(&sr);
                write_stalled(wr, &buf).await
            }
            Sink::Udp { rtcp, .. } => udp_send(rtcp, &sr).await.map(|_| ()),
        }
    }
}

/// Writes all of `buf`, failing if the peer doesn't accept it within
/// [`WRITE_STALL_TIMEOUT`].
pub(crate) async fn write_stalled<W: AsyncWrite + Unpin>(wr: &mut W, buf: &[u8]) -> io::Result<()> {
    match tokio::time::timeout(WRITE_STALL_TIMEOUT, wr.write_all(buf)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "client stopped reading (write stalled)",
        )),
    }
}

/// Sends one datagram. "Connection refused" (an ICMP port unreachable from
/// an earlier datagram) is not fatal: the client may have closed its port
/// while the RTSP session lives on, as with a real camera.
async fn udp_send(sock: &UdpSocket, pkt: &[u8]) -> io::Result<usize> {
    match sock.send(pkt).await {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(0),
        Err(e) => Err(e),
    }
}
