//! Interfaces and sockets: which IPv4 addresses to probe from, and the
//! multicast socket options tokio does not expose.

use std::ffi::CStr;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::DiscoveryError;

/// One IPv4 address of a network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub addr: Ipv4Addr,
    pub up: bool,
    pub loopback: bool,
    pub multicast: bool,
}

/// Every IPv4 address on every interface (getifaddrs).
pub fn list_interfaces() -> io::Result<Vec<Interface>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned.
        let entry = unsafe { &*cursor };
        cursor = entry.ifa_next;
        if entry.ifa_addr.is_null() || entry.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and at least a sockaddr.
        let family = unsafe { (*entry.ifa_addr).sa_family };
        if i32::from(family) != libc::AF_INET {
            continue;
        }
        // SAFETY: AF_INET addresses are sockaddr_in.
        let sin = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in) };
        let addr = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(entry.ifa_name) }
            .to_string_lossy()
            .into_owned();
        let flags = entry.ifa_flags;
        out.push(Interface {
            name,
            addr,
            up: flags & libc::IFF_UP as u32 != 0,
            loopback: flags & libc::IFF_LOOPBACK as u32 != 0,
            multicast: flags & libc::IFF_MULTICAST as u32 != 0,
        });
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// Turns config entries (IPv4 addresses or interface names) into the
/// addresses to bind. Empty: every up, multicast-capable, non-loopback IPv4
/// interface. An address is taken as given (it need not be listed, so tests
/// and odd setups can pass `127.0.0.1`); a name must have an IPv4 address.
pub fn resolve_interfaces(specs: &[String]) -> Result<Vec<Ipv4Addr>, DiscoveryError> {
    let list =
        || list_interfaces().map_err(|e| DiscoveryError::io("listing network interfaces", e));
    let mut out: Vec<Ipv4Addr> = Vec::new();
    if specs.is_empty() {
        for i in list()? {
            if i.up && i.multicast && !i.loopback && !out.contains(&i.addr) {
                out.push(i.addr);
            }
        }
        if out.is_empty() {
            return Err(DiscoveryError::NoInterfaces);
        }
        return Ok(out);
    }
    let mut interfaces = None;
    for spec in specs {
        let spec = spec.trim();
        let addrs = if let Ok(addr) = spec.parse::<Ipv4Addr>() {
            vec![addr]
        } else {
            if interfaces.is_none() {
                interfaces = Some(list()?);
            }
            let found: Vec<Ipv4Addr> = interfaces
                .iter()
                .flatten()
                .filter(|i| i.name == spec)
                .map(|i| i.addr)
                .collect();
            if found.is_empty() {
                return Err(DiscoveryError::UnknownInterface(spec.to_string()));
            }
            found
        };
        for a in addrs {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    Ok(out)
}

/// A socket bound to `iface` (ephemeral port) that sends multicast out of
/// that interface and hears its own loop (a camera on this host).
pub(crate) fn probe_socket(iface: Ipv4Addr, ttl: u32) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddrV4::new(iface, 0).into())?;
    socket.set_multicast_if_v4(&iface)?;
    socket.set_multicast_loop_v4(true)?;
    socket.set_multicast_ttl_v4(ttl)?;
    UdpSocket::from_std(socket.into())
}

/// A socket on `group:port` (shared with anything else on the port, such as
/// a camera simulator) joined to the group on each interface.
pub(crate) fn listen_socket(
    group: Ipv4Addr,
    port: u16,
    interfaces: &[Ipv4Addr],
) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    socket.set_reuse_address(true)?;
    // Bound to the group address, Linux hands this socket only datagrams
    // sent to the group, not unicast to the port.
    socket.bind(&SocketAddrV4::new(group, port).into())?;
    let mut joined = 0;
    let mut last_error = None;
    for iface in interfaces {
        match socket.join_multicast_v4(&group, iface) {
            Ok(()) => joined += 1,
            Err(e) => {
                tracing::warn!(interface = %iface, error = %e, "ONVIF discovery: cannot join the multicast group");
                last_error = Some(e);
            }
        }
    }
    if joined == 0 {
        return Err(last_error.unwrap_or_else(|| io::Error::other("no interface to join on")));
    }
    UdpSocket::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_pass_through_and_unknown_names_fail() {
        let got = resolve_interfaces(&["127.0.0.1".into(), "127.0.0.1".into()]).unwrap();
        assert_eq!(got, [Ipv4Addr::LOCALHOST]);
        assert!(matches!(
            resolve_interfaces(&["no-such-if0".into()]),
            Err(DiscoveryError::UnknownInterface(_))
        ));
        let lo = resolve_interfaces(&["lo".into()]).unwrap();
        assert!(lo.contains(&Ipv4Addr::LOCALHOST));
    }
}
