//! The AF_PACKET socket live capture reads, opened here rather than by
//! `pnet_datalink` so that its kernel counters can be read.
//!
//! The kernel drops frames for a packet socket when its receive buffer is
//! full (the capture thread fell behind the wire). Those drops are counted
//! per socket and read with `getsockopt(SOL_PACKET, PACKET_STATISTICS)`,
//! which returns the packets and drops since the previous call and resets
//! them. `pnet_datalink` opens its socket privately, but accepts one made by
//! the caller ([`pnet_datalink::Config::socket_fd`]), binds it to the
//! interface and owns it from then on (closes it when the receiver drops).
//! So [`open`] makes the socket and [`PacketSocket::take_stats`] queries
//! that very socket; a second socket bound to the same interface would
//! count its own drops, not the capture's. (`/proc/net/packet` shows no
//! drops, and the interface's `rx_dropped` counts the driver's drops, not
//! the socket's.)
//!
//! This is the agent's only unsafe code: two libc calls with plain-old-data
//! arguments.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;

/// A packet socket handed to `pnet_datalink` (which closes it).
#[derive(Debug, Clone, Copy)]
pub struct PacketSocket {
    fd: RawFd,
}

/// Kernel counters of a packet socket since the previous read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Frames that reached the socket (queued or dropped).
    pub packets: u64,
    /// Frames the kernel dropped because the socket's buffer was full.
    pub drops: u64,
}

/// Opens a raw packet socket that receives nothing yet (protocol 0):
/// `pnet_datalink::channel` binds it to the interface with `ETH_P_ALL`,
/// which starts reception there. (Opened with `ETH_P_ALL`, it would queue
/// frames of every interface until the bind.)
pub fn open() -> io::Result<PacketSocket> {
    // SAFETY: socket(2) takes three integers and returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PacketSocket { fd })
}

impl PacketSocket {
    /// The descriptor, for [`pnet_datalink::Config::socket_fd`].
    pub fn fd(self) -> RawFd {
        self.fd
    }

    /// The kernel's counters since the previous call (the kernel resets
    /// them). Only valid while the `pnet_datalink` receiver that owns the
    /// socket is alive.
    pub fn take_stats(self) -> io::Result<KernelStats> {
        let mut st = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `st` is a live tpacket_stats and `len` its size, as
        // PACKET_STATISTICS expects for a socket without a ring (TPACKET_V1/2
        // layout); the kernel writes at most `len` bytes.
        let rc = unsafe {
            libc::getsockopt(
                self.fd,
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut st).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(KernelStats {
            packets: u64::from(st.tp_packets),
            drops: u64::from(st.tp_drops),
        })
    }
}
