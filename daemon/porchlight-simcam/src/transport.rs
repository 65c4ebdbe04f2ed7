//! The `Transport` header (RFC 2326 section 12.39), request URIs, and UDP
//! port pairs for RTP/RTCP.

use std::io;
use std::net::IpAddr;

use tokio::net::UdpSocket;

/// What a client asked for in `SETUP`, after picking the first supported option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Requested {
    /// `RTP/AVP/TCP;interleaved=a-b`; `None` lets the server choose.
    Tcp { channel: Option<u8> },
    /// `RTP/AVP[/UDP];unicast;client_port=a-b`.
    Udp { rtp_port: u16, rtcp_port: u16 },
}

/// Picks the first unicast transport we support from a `Transport` header.
pub(crate) fn parse_transport(header: &str) -> Option<Requested> {
    header.split(',').find_map(parse_one)
}

fn parse_one(spec: &str) -> Option<Requested> {
    let mut parts = spec.trim().split(';').map(str::trim);
    let proto = parts.next()?.to_ascii_uppercase();
    let tcp = match proto.as_str() {
        "RTP/AVP" | "RTP/AVP/UDP" => false,
        "RTP/AVP/TCP" => true,
        _ => return None,
    };
    let mut channel = None;
    let mut ports = None;
    for p in parts {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        match k.to_ascii_lowercase().as_str() {
            "multicast" => return None,
            "interleaved" => channel = Some(parse_range(v)?.0),
            "client_port" => ports = Some(parse_range(v)?),
            _ => {}
        }
    }
    if tcp {
        let channel = match channel {
            Some(c) => Some(u8::try_from(c).ok().filter(|c| *c < 255)?),
            None => None,
        };
        Some(Requested::Tcp { channel })
    } else {
        let (rtp_port, rtcp_port) = ports?;
        if rtp_port == 0 {
            return None;
        }
        let rtcp_port = match rtcp_port {
            Some(p) if p != 0 => p,
            _ => rtp_port.checked_add(1)?,
        };
        Some(Requested::Udp {
            rtp_port,
            rtcp_port,
        })
    }
}

fn parse_range(v: &str) -> Option<(u16, Option<u16>)> {
    match v.split_once('-') {
        Some((a, b)) => Some((a.trim().parse().ok()?, Some(b.trim().parse().ok()?))),
        None => Some((v.trim().parse().ok()?, None)),
    }
}

/// A request URI split into the camera path and the optional track.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// Normalized path: no leading/trailing `/`, no `trackID=N` segment, no query.
    pub path: String,
    /// `N` from a final `trackID=N` segment.
    pub track: Option<usize>,
}

/// Parses `rtsp://host[:port]/path[/trackID=N][?query]`, `/path` or `*`.
/// Returns `None` for anything else (answered with `400`).
pub(crate) fn parse_target(uri: &str) -> Option<Target> {
    let path = if uri == "*" {
        ""
    } else if uri.starts_with('/') {
        uri
    } else {
        let (scheme, rest) = uri.split_once("://")?;
        if !scheme.eq_ignore_ascii_case("rtsp") && !scheme.eq_ignore_ascii_case("rtsps") {
            return None;
        }
        match rest.find('/') {
            Some(i) => &rest[i..],
            None => "",
        }
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let path = path.trim_matches('/');
    let (path, track) = match path.rsplit_once('/').map_or(("", path), |(a, b)| (a, b)) {
        (head, last)
            if last
                .get(..8)
                .is_some_and(|p| p.eq_ignore_ascii_case("trackid=")) =>
        {
            (head, Some(last[8..].parse().ok()?))
        }
        _ => (path, None),
    };
    Some(Target {
        path: path.trim_matches('/').to_owned(),
        track,
    })
}

/// Binds an RTP/RTCP socket pair on consecutive ports (even RTP port) on `ip`.
pub(crate) async fn bind_udp_pair(ip: IpAddr) -> io::Result<(UdpSocket, UdpSocket, u16)> {
    let mut last_err = None;
    for _ in 0..64 {
        let rtp = UdpSocket::bind((ip, 0)).await?;
        let port = rtp.local_addr()?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        match UdpSocket::bind((ip, port + 1)).await {
            Ok(rtcp) => return Ok((rtp, rtcp, port)),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no free even/odd UDP port pair")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports() {
        assert_eq!(
            parse_transport("RTP/AVP/TCP;unicast;interleaved=2-3"),
            Some(Requested::Tcp { channel: Some(2) })
        );
        assert_eq!(
            parse_transport("RTP/AVP/TCP;unicast"),
            Some(Requested::Tcp { channel: None })
        );
        assert_eq!(
            parse_transport("RTP/AVP/UDP;unicast;client_port=5000-5001"),
            Some(Requested::Udp {
                rtp_port: 5000,
                rtcp_port: 5001
            })
        );
        assert_eq!(
            parse_transport("RTP/AVP;multicast, RTP/AVP;unicast;client_port=6000"),
            Some(Requested::Udp {
                rtp_port: 6000,
                rtcp_port: 6001
            })
        );
        for bad in [
            "",
            "RTP/AVP;unicast",
            "RTP/AVP;unicast;client_port=x-y",
            "RTP/AVP;unicast;client_port=0-1",
            "RTP/AVP/TCP;interleaved=300-301",
            "RTP/AVP/TCP;interleaved=255",
            "RAW/RAW/UDP;client_port=1-2",
        ] {
            assert_eq!(parse_transport(bad), None, "{bad}");
        }
    }

    #[test]
    fn targets() {
        let t = |path: &str, track| {
            Some(Target {
                path: path.to_owned(),
                track,
            })
        };
        assert_eq!(parse_target("rtsp://127.0.0.1:8554/cam0"), t("cam0", None));
        assert_eq!(parse_target("rtsp://h/cam0/"), t("cam0", None));
        assert_eq!(parse_target("rtsp://h/cam0/trackID=1"), t("cam0", Some(1)));
        assert_eq!(
            parse_target("RTSP://h/a/b/trackid=0?x=1"),
            t("a/b", Some(0))
        );
        assert_eq!(parse_target("rtsp://h"), t("", None));
        assert_eq!(parse_target("rtsp://h/trackID=0"), t("", Some(0)));
        assert_eq!(parse_target("/cam5"), t("cam5", None));
        assert_eq!(parse_target("*"), t("", None));
        assert_eq!(parse_target("http://h/cam0"), None);
        assert_eq!(parse_target("cam0"), None);
        assert_eq!(parse_target("rtsp://h/cam0/trackID=x"), None);
        assert_eq!(parse_target("rtsp://h/caméra/é"), t("caméra/é", None));
    }

    #[tokio::test]
    async fn udp_pair() {
        let (rtp, rtcp, port) = bind_udp_pair("127.0.0.1".parse().unwrap()).await.unwrap();
        assert_eq!(port % 2, 0);
        assert_eq!(rtp.local_addr().unwrap().port(), port);
        assert_eq!(rtcp.local_addr().unwrap().port(), port + 1);
    }
}
