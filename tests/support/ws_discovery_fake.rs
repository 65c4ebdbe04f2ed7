//! A fake ONVIF camera for WS-Discovery: answers Probes over real UDP
//! (multicast joined on 127.0.0.1 only) with ProbeMatch XML shaped like what
//! gSOAP-based cameras send, and announces Hello/Bye on the group.
//! Deliberately independent of the parser under test: it finds the Probe's
//! MessageID with plain string search.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

pub const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);

#[derive(Clone, Debug)]
pub struct FakeCamera {
    pub endpoint: String,
    pub types: String,
    pub scopes: Vec<String>,
    pub xaddrs: Vec<String>,
    pub metadata_version: u32,
    /// Answer with this RelatesTo instead of the Probe's MessageID.
    pub relates_to_override: Option<String>,
    /// Send junk datagrams to the prober before the real answer.
    pub garbage_first: bool,
}

impl FakeCamera {
    pub fn new(uuid: &str, name: &str) -> Self {
        Self {
            endpoint: format!("urn:uuid:{uuid}"),
            types: "dn:NetworkVideoTransmitter tds:Device".into(),
            scopes: vec![
                "onvif://www.onvif.org/type/video_encoder".into(),
                "onvif://www.onvif.org/Profile/Streaming".into(),
                format!("onvif://www.onvif.org/name/{name}"),
                "onvif://www.onvif.org/hardware/FK-100%2FIR".into(),
                "onvif://www.onvif.org/location/country/Front%20Porch".into(),
            ],
            xaddrs: vec!["http://127.0.0.1:8000/onvif/device_service".into()],
            metadata_version: 1,
            relates_to_override: None,
            garbage_first: false,
        }
    }

    /// Binds 0.0.0.0:`port` (shared) joined to the group on 127.0.0.1 and
    /// answers Probes until the task is aborted.
    pub fn spawn(self, port: u16) -> JoinHandle<()> {
        let socket = device_socket(port).expect("fake camera socket");
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                if !text.contains("/discovery/Probe<") || !text.contains("NetworkVideoTransmitter")
                {
                    continue; // not a Probe for cameras (or our own Hello)
                }
                let Some(message_id) = element_text(&text, "MessageID") else {
                    continue;
                };
                if self.garbage_first {
                    for junk in junk_datagrams(&self.probe_match(&message_id)) {
                        let _ = socket.send_to(&junk, from).await;
                    }
                }
                let relates_to = self.relates_to_override.clone().unwrap_or(message_id);
                let reply = self.probe_match(&relates_to);
                let _ = socket.send_to(reply.as_bytes(), from).await;
            }
        })
    }

    pub fn probe_match(&self, relates_to: &str) -> String {
        format!(
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                "\n",
                r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" "#,
                r#"xmlns:SOAP-ENC="http://www.w3.org/2003/05/soap-encoding" "#,
                r#"xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" "#,
                r#"xmlns:wsdd="http://schemas.xmlsoap.org/ws/2005/04/discovery" "#,
                r#"xmlns:dn="http://www.onvif.org/ver10/network/wsdl" "#,
                r#"xmlns:tds="http://www.onvif.org/ver10/device/wsdl">"#,
                "<SOAP-ENV:Header>",
                "<wsa:MessageID>urn:uuid:{reply_id}</wsa:MessageID>",
                "<wsa:RelatesTo>{relates_to}</wsa:RelatesTo>",
                r#"<wsa:To SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>"#,
                r#"<wsa:Action SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action>"#,
                r#"<wsdd:AppSequence MessageNumber="7" InstanceId="1"/>"#,
                "</SOAP-ENV:Header>",
                "<SOAP-ENV:Body><wsdd:ProbeMatches><wsdd:ProbeMatch>",
                "<wsa:EndpointReference><wsa:Address>{endpoint}</wsa:Address></wsa:EndpointReference>",
                "<wsdd:Types>{types}</wsdd:Types>",
                "<wsdd:Scopes>{scopes}</wsdd:Scopes>",
                "<wsdd:XAddrs>{xaddrs}</wsdd:XAddrs>",
                "<wsdd:MetadataVersion>{version}</wsdd:MetadataVersion>",
                "</wsdd:ProbeMatch></wsdd:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>",
            ),
            reply_id = fresh_uuid(),
            relates_to = relates_to,
            endpoint = self.endpoint,
            types = self.types,
            scopes = self.scopes.join(" "),
            xaddrs = self.xaddrs.join(" "),
            version = self.metadata_version,
        )
    }

    /// Hello as a camera sends it on boot (d:/a: prefixes, as some
    /// firmwares use); `with_xaddrs: false` leaves XAddrs out.
    pub fn hello(&self, with_xaddrs: bool) -> String {
        let xaddrs = if with_xaddrs {
            format!("<d:XAddrs>{}</d:XAddrs>", self.xaddrs.join(" "))
        } else {
            String::new()
        };
        let body = format!(
            "<d:Hello><a:EndpointReference><a:Address>{}</a:Address></a:EndpointReference>\
             <d:Types>{}</d:Types><d:Scopes>{}</d:Scopes>{xaddrs}\
             <d:MetadataVersion>{}</d:MetadataVersion></d:Hello>",
            self.endpoint,
            self.types,
            self.scopes.join(" "),
            self.metadata_version
        );
        announcement("Hello", &body)
    }

    pub fn bye(&self) -> String {
        let body = format!(
            "<d:Bye><a:EndpointReference><a:Address>{}</a:Address></a:EndpointReference></d:Bye>",
            self.endpoint
        );
        announcement("Bye", &body)
    }
}

fn announcement(action: &str, body: &str) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" "#,
            r#"xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" "#,
            r#"xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" "#,
            r#"xmlns:dn="http://www.onvif.org/ver10/network/wsdl" "#,
            r#"xmlns:tds="http://www.onvif.org/ver10/device/wsdl">"#,
            "<s:Header>",
            "<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/{action}</a:Action>",
            "<a:MessageID>urn:uuid:{id}</a:MessageID>",
            "<a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>",
            r#"<d:AppSequence InstanceId="3" MessageNumber="1"/>"#,
            "</s:Header><s:Body>{body}</s:Body></s:Envelope>",
        ),
        action = action,
        id = fresh_uuid(),
        body = body,
    )
}

/// Multicasts `datagram` to the group on `port` out of 127.0.0.1.
pub async fn multicast(datagram: &[u8], port: u16) {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    socket.set_nonblocking(true).unwrap();
    socket
        .bind(&SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0).into())
        .unwrap();
    socket.set_multicast_if_v4(&Ipv4Addr::LOCALHOST).unwrap();
    socket.set_multicast_loop_v4(true).unwrap();
    let socket = UdpSocket::from_std(socket.into()).unwrap();
    socket
        .send_to(datagram, SocketAddr::V4(SocketAddrV4::new(GROUP, port)))
        .await
        .expect("multicast send");
}

fn device_socket(port: u16) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port).into())?;
    socket.join_multicast_v4(&GROUP, &Ipv4Addr::LOCALHOST)?;
    socket.set_multicast_if_v4(&Ipv4Addr::LOCALHOST)?;
    UdpSocket::from_std(socket.into())
}

/// Junk a broken or hostile device might send: random bytes, a truncated
/// answer, an answer with an unclosed element, a near-maximal datagram, an
/// entity bomb attempt, empty.
pub fn junk_datagrams(real: &str) -> Vec<Vec<u8>> {
    let mut out = vec![
        (0..300u32).map(|i| (i * 7919 % 251) as u8).collect(),
        real.as_bytes()[..real.len() / 2].to_vec(),
        real.replace("</wsdd:Types>", "").into_bytes(),
        vec![b'<'; 65000],
        br#"<!DOCTYPE a [<!ENTITY b "bbbbbbbb"><!ENTITY c "&b;&b;&b;&b;">]><a>&c;</a>"#.to_vec(),
        Vec::new(),
    ];
    let mut nested = String::from("<s:Envelope><s:Body>");
    nested.push_str(&"<x>".repeat(5000));
    out.push(nested.into_bytes());
    out
}

fn element_text(xml: &str, local: &str) -> Option<String> {
    let open = xml.find(&format!("{local}>"))? + local.len() + 1;
    let rest = &xml[open..];
    Some(rest[..rest.find('<')?].trim().to_string())
}

fn fresh_uuid() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0xfff,
        u16::from_be_bytes([b[8], b[9]]) & 0xfff,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}
