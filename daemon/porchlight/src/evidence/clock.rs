//! How far the daemon's clock may be from true time when it exports: the
//! kernel's own view (whatever NTP daemon disciplines it) and, when the
//! owner names a time server, a direct SNTP measurement against it.
//! Footage timestamps are only as good as this, so it goes in the manifest.

use std::net::{ToSocketAddrs, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The clock as measured at export time.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClockReport {
    pub kernel: KernelClock,
    /// Present when a time server is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_server: Option<TimeServerReport>,
}

/// What `adjtimex(2)` says about synchronisation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct KernelClock {
    /// False when no NTP daemon has synchronised the clock (STA_UNSYNC).
    pub synchronized: bool,
    /// The NTP daemon's last measured offset, µs.
    pub offset_us: i64,
    pub estimated_error_us: i64,
    pub max_error_us: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TimeServerReport {
    pub server: String,
    /// Server time minus our time, µs (positive: our clock is behind).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset_us: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub round_trip_us: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stratum: Option<u8>,
    /// Why there is no measurement (the export goes ahead without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Measures the clock; `time_server` is "host" or "host:port" (default 123).
pub fn measure(time_server: Option<&str>) -> ClockReport {
    ClockReport {
        kernel: kernel_clock(),
        time_server: time_server.map(|server| match sntp_offset(server, Duration::from_secs(2)) {
            Ok(m) => TimeServerReport {
                server: server.to_string(),
                offset_us: Some(m.offset_us),
                round_trip_us: Some(m.round_trip_us),
                stratum: Some(m.stratum),
                error: None,
            },
            Err(error) => TimeServerReport {
                server: server.to_string(),
                offset_us: None,
                round_trip_us: None,
                stratum: None,
                error: Some(error),
            },
        }),
    }
}

fn kernel_clock() -> KernelClock {
    // SAFETY: `timex` is plain data; modes = 0 makes adjtimex read-only.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut tx) };
    const STA_UNSYNC: i32 = 0x0040;
    const STA_NANO: i32 = 0x2000;
    let offset_us = if tx.status & STA_NANO != 0 {
        tx.offset / 1000
    } else {
        tx.offset
    };
    KernelClock {
        synchronized: state >= 0 && state != libc::TIME_ERROR && tx.status & STA_UNSYNC == 0,
        offset_us,
        estimated_error_us: tx.esterror,
        max_error_us: tx.maxerror,
    }
}

/// One SNTP (RFC 4330) exchange.
#[derive(Clone, Copy, Debug)]
pub struct SntpMeasurement {
    pub offset_us: i64,
    pub round_trip_us: i64,
    pub stratum: u8,
}

/// Seconds from 1900 (NTP era 0) to 1970.
const NTP_UNIX_OFFSET_S: u64 = 2_208_988_800;

pub fn sntp_offset(server: &str, timeout: Duration) -> Result<SntpMeasurement, String> {
    let with_port = if server.contains(':') {
        server.to_string()
    } else {
        format!("{server}:123")
    };
    let address = with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {server}: {e}"))?
        .next()
        .ok_or_else(|| format!("{server} has no address"))?;
    let bind = if address.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(bind).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    socket
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut request = [0u8; 48];
    request[0] = 0b00_100_011; // no leap warning, version 4, client
    let t1 = now_ntp();
    request[40..48].copy_from_slice(&t1.to_be_bytes());
    socket
        .send_to(&request, address)
        .map_err(|e| format!("cannot send to {server}: {e}"))?;
    let mut reply = [0u8; 512];
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let (n, from) = socket
            .recv_from(&mut reply)
            .map_err(|e| format!("no answer from {server}: {e}"))?;
        let t4 = now_ntp();
        if from != address || n < 48 {
            if std::time::Instant::now() > deadline {
                return Err(format!("no valid answer from {server}"));
            }
            continue;
        }
        return parse_reply(&reply[..n], t1, t4).map_err(|e| format!("{server}: {e}"));
    }
}

fn parse_reply(reply: &[u8], t1: u64, t4: u64) -> Result<SntpMeasurement, String> {
    let field = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&reply[at..at + 8]);
        u64::from_be_bytes(b)
    };
    let mode = reply[0] & 0x7;
    let stratum = reply[1];
    if mode != 4 {
        return Err(format!("answer is mode {mode}, not a server reply"));
    }
    if stratum == 0 || reply[0] >> 6 == 3 {
        return Err("server is not synchronised (kiss-o'-death or alarm)".into());
    }
    if field(24) != t1 {
        return Err("answer does not echo our request (spoofed or stale)".into());
    }
    let (t2, t3) = (field(32), field(40));
    let us = |t: u64| ntp_to_us(t);
    let offset_us = ((us(t2) - us(t1)) + (us(t3) - us(t4))) / 2;
    let round_trip_us = (us(t4) - us(t1)) - (us(t3) - us(t2));
    Ok(SntpMeasurement {
        offset_us,
        round_trip_us,
        stratum,
    })
}

fn now_ntp() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = now.as_secs() + NTP_UNIX_OFFSET_S;
    let fraction = (u64::from(now.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

/// NTP timestamp to µs since 1900 (i64 holds that until the year 294,000).
fn ntp_to_us(t: u64) -> i64 {
    let seconds = (t >> 32) as i64;
    let fraction = ((t & 0xffff_ffff) * 1_000_000) >> 32;
    seconds * 1_000_000 + fraction as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_clock_reads_without_privileges() {
        let k = kernel_clock();
        assert!(k.max_error_us >= 0);
    }

    #[test]
    fn offset_and_round_trip_from_the_four_timestamps() {
        let t = |s: u64, ms: u64| ((s + 100) << 32) | ((ms << 32) / 1000);
        let (t1, t2, t3, t4) = (t(0, 0), t(5, 10), t(5, 20), t(0, 50));
        let mut reply = [0u8; 48];
        reply[0] = 0b00_100_100;
        reply[1] = 2;
        reply[24..32].copy_from_slice(&t1.to_be_bytes());
        reply[32..40].copy_from_slice(&t2.to_be_bytes());
        reply[40..48].copy_from_slice(&t3.to_be_bytes());
        let m = parse_reply(&reply, t1, t4).expect("valid");
        assert!((m.offset_us - 4_990_000).abs() <= 1, "{m:?}");
        assert!((m.round_trip_us - 40_000).abs() <= 1, "{m:?}");
        // A reply that does not echo our transmit time is refused.
        assert!(parse_reply(&reply, t1 + 1, t4).is_err());
    }
}
