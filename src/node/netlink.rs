//! In-process rtnetlink in another network namespace: a socket opened by a short-lived thread
//! that has joined the namespace (`setns(CLONE_NEWNET)`) stays bound to that namespace for its
//! whole life, whichever thread uses it afterwards. Dumps (routes, links, addresses), one route
//! request at a time with its acknowledgement, and multicast subscriptions for the watch.
//!
//! Nothing here knows about nodes or `ip`: [`crate::node::host`] turns these messages into what
//! `ip -j` prints, so that both ways of reaching a node share one parser and one plan model.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::route::{RouteHeader, RouteMessage};
use netlink_sys::{Socket, protocols::NETLINK_ROUTE};

/// `RTNLGRP_LINK`.
pub const GROUP_LINK: u32 = 1;
/// `RTNLGRP_IPV4_IFADDR`.
pub const GROUP_IPV4_IFADDR: u32 = 5;
/// `RTNLGRP_IPV4_ROUTE`.
pub const GROUP_IPV4_ROUTE: u32 = 7;
/// `RTNLGRP_IPV6_IFADDR`.
pub const GROUP_IPV6_IFADDR: u32 = 9;
/// `RTNLGRP_IPV6_ROUTE`.
pub const GROUP_IPV6_ROUTE: u32 = 11;

/// The largest datagram read at once (a dump datagram is at most 32 KiB).
const RECV_BUFFER: usize = 64 * 1024;
/// How often an interrupted dump (the table changed while it was read) is tried again.
const DUMP_ATTEMPTS: usize = 5;

/// A netlink error: the kernel's errno for a request, or a local I/O failure.
#[derive(Debug)]
pub enum NlError {
    /// The kernel refused the request with this errno.
    Kernel(i32),
    /// The kernel refused the request with this errno and said why (its extended
    /// acknowledgement, as `ip` prints it: `Error: Nexthop has invalid gateway.`).
    KernelSaid(i32, String),
    /// The socket failed (or timed out).
    Io(io::Error),
    /// The kernel's answer could not be decoded.
    Decode(String),
}

impl std::fmt::Display for NlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NlError::Kernel(errno) => f.write_str(&strerror(*errno)),
            NlError::KernelSaid(_, why) => f.write_str(why),
            NlError::Io(e) if e.kind() == io::ErrorKind::WouldBlock => {
                f.write_str("the kernel did not answer in time")
            }
            NlError::Io(e) => write!(f, "{e}"),
            NlError::Decode(m) => write!(f, "undecodable netlink message: {m}"),
        }
    }
}

impl From<io::Error> for NlError {
    fn from(e: io::Error) -> NlError {
        NlError::Io(e)
    }
}

/// The kernel's message in an extended acknowledgement (`NLMSGERR_ATTR_MSG` after the echoed
/// 16-byte header of a capped acknowledgement), as `ip` prints it: `Error: MESSAGE.`.
fn extack_message(echoed: &[u8]) -> Option<String> {
    const HEADER: usize = 16;
    const ATTR_MSG: u16 = 1;
    let mut rest = echoed.get(HEADER..)?;
    while rest.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        let value = rest.get(4..len)?;
        if kind == ATTR_MSG {
            let text = value.split(|b| *b == 0).next().unwrap_or_default();
            let text = String::from_utf8_lossy(text).trim().to_string();
            if text.is_empty() {
                return None;
            }
            let stop = if text.ends_with('.') { "" } else { "." };
            return Some(format!("Error: {text}{stop}"));
        }
        rest = rest.get(len.next_multiple_of(4)..)?;
    }
    None
}

/// The text of an errno, as `ip` prints it (`File exists`, without "(os error 17)").
pub fn strerror(errno: i32) -> String {
    let s = io::Error::from_raw_os_error(errno).to_string();
    s.split(" (os error").next().unwrap_or_default().to_string()
}

/// The inode of a namespace file (what tells two namespaces apart).
pub fn ns_inode(f: &File) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(f.metadata()?.ino())
}

/// The inode of routectl's own network namespace (the host's, as far as routectl is concerned).
pub fn own_ns_inode() -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata("/proc/self/ns/net")?.ino())
}

/// An rtnetlink socket bound to one network namespace.
pub struct Netlink {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens a socket in the network namespace of `ns` (a `/proc/PID/ns/net` or `/run/netns/NAME`
    /// file) and subscribes it to `groups` (none for requests). Answers must come within
    /// `timeout` (`None`: wait forever, for event sockets).
    pub fn open_in(ns: &File, groups: &[u32], timeout: Option<Duration>) -> io::Result<Netlink> {
        let ns = ns.try_clone()?;
        let groups = groups.to_vec();
        // A dedicated thread joins the namespace and opens the socket there; the thread ends
        // and the socket keeps the namespace. routectl's own threads never change namespace.
        let sock = std::thread::spawn(move || -> io::Result<Socket> {
            rustix::thread::move_into_link_name_space(
                ns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
            let mut sock = Socket::new(NETLINK_ROUTE)?;
            // The kernel's own words for a refusal (as `ip` asks for them), after the echoed
            // header alone.
            let _ = sock.set_ext_ack(true);
            let _ = sock.set_cap_ack(true);
            sock.bind_auto()?;
            for g in groups {
                sock.add_membership(g)?;
            }
            Ok(sock)
        })
        .join()
        .map_err(|_| io::Error::other("the namespace thread panicked"))??;
        if let Some(t) = timeout {
            rustix::net::sockopt::set_socket_timeout(
                &sock,
                rustix::net::sockopt::Timeout::Recv,
                Some(t),
            )?;
        }
        Ok(Netlink {
            sock,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUFFER),
        })
    }

    /// The socket's file descriptor (for `poll`).
    pub fn raw_fd(&self) -> i32 {
        self.sock.as_raw_fd()
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32, NlError> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        m.finalize();
        let mut bytes = vec![0; m.buffer_len()];
        m.serialize(&mut bytes);
        self.sock.send(&bytes, 0)?;
        Ok(self.seq)
    }

    /// Reads one datagram and decodes the messages in it.
    pub fn recv(
        &mut self,
    ) -> Result<Vec<(u16, u32, NetlinkPayload<RouteNetlinkMessage>)>, NlError> {
        self.buf.clear();
        self.buf.reserve(RECV_BUFFER);
        let n = self.sock.recv(&mut self.buf, libc::MSG_TRUNC)?;
        if n > self.buf.len() {
            return Err(NlError::Decode(format!(
                "a datagram of {n} bytes is larger than the {RECV_BUFFER}-byte buffer"
            )));
        }
        let mut out = Vec::new();
        let mut off = 0;
        while off + 16 <= self.buf.len() {
            let len = u32::from_ne_bytes([
                self.buf[off],
                self.buf[off + 1],
                self.buf[off + 2],
                self.buf[off + 3],
            ]) as usize;
            if len < 16 || off + len > self.buf.len() {
                return Err(NlError::Decode(format!("a message claims {len} bytes")));
            }
            let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..off + len])
                .map_err(|e| NlError::Decode(e.to_string()))?;
            let (h, payload) = m.into_parts();
            out.push((h.flags, h.sequence_number, payload));
            off += (len + 3) & !3;
        }
        Ok(out)
    }

    /// Sends a dump request and collects the answers; a dump the kernel marks as interrupted
    /// (the table changed while it was read) is read again.
    fn dump(&mut self, req: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>, NlError> {
        for _ in 0..DUMP_ATTEMPTS {
            let seq = self.send(req.clone(), NLM_F_DUMP)?;
            let mut items = Vec::new();
            let mut interrupted = false;
            'read: loop {
                for (flags, s, payload) in self.recv()? {
                    if s != seq {
                        continue;
                    }
                    interrupted |= flags & NLM_F_DUMP_INTR != 0;
                    match payload {
                        NetlinkPayload::Done(_) => break 'read,
                        NetlinkPayload::Error(e) => match e.code {
                            Some(c) => return Err(NlError::Kernel(-c.get())),
                            None => break 'read,
                        },
                        NetlinkPayload::InnerMessage(m) => items.push(m),
                        NetlinkPayload::Overrun(_) => {
                            return Err(NlError::Decode("overrun".into()));
                        }
                        _ => {}
                    }
                }
            }
            if !interrupted {
                return Ok(items);
            }
        }
        Err(NlError::Decode(format!(
            "the dump was interrupted {DUMP_ATTEMPTS} times by concurrent changes"
        )))
    }

    /// Every route of a family (`AF_INET` or `AF_INET6`), every table.
    pub fn dump_routes(&mut self, family: AddressFamily) -> Result<Vec<RouteMessage>, NlError> {
        let mut m = RouteMessage::default();
        m.header.address_family = family;
        m.header.table = RouteHeader::RT_TABLE_UNSPEC;
        Ok(self
            .dump(RouteNetlinkMessage::GetRoute(m))?
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Some(r),
                _ => None,
            })
            .collect())
    }

    /// Every interface.
    pub fn dump_links(&mut self) -> Result<Vec<LinkMessage>, NlError> {
        Ok(self
            .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l),
                _ => None,
            })
            .collect())
    }

    /// Every address of every interface, both families.
    pub fn dump_addrs(&mut self) -> Result<Vec<AddressMessage>, NlError> {
        Ok(self
            .dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))?
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => Some(a),
                _ => None,
            })
            .collect())
    }

    /// Sends one request (`RTM_NEWROUTE`/`RTM_DELROUTE` with `flags`) and waits for its
    /// acknowledgement.
    pub fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<(), NlError> {
        let seq = self.send(msg, NLM_F_ACK | flags)?;
        loop {
            for (_, s, payload) in self.recv()? {
                if s != seq {
                    continue;
                }
                if let NetlinkPayload::Error(e) = payload {
                    return match e.code {
                        Some(c) => Err(match extack_message(&e.header) {
                            Some(why) => NlError::KernelSaid(-c.get(), why),
                            None => NlError::Kernel(-c.get()),
                        }),
                        None => Ok(()),
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_text_is_what_ip_prints() {
        assert_eq!(strerror(libc::EEXIST), "File exists");
        assert_eq!(strerror(libc::ESRCH), "No such process");
    }
}
