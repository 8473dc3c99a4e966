//! What the table stores per connection: the addresses of both legs, the chosen real server,
//! protocol state and expiry, packed into 104 bytes, plus 8 bytes of timer links.

use super::state::ConnState;
use super::wheel::{Link, Timed};
use super::ConnId;
use crate::checksum;
use crate::flow::{Addr, FlowKey, Proto};
use crate::model::FwdMode;
use crate::sched::DestId;

/// Entry flag bits.
pub(super) mod flag {
    /// The slot holds a connection, template or alias.
    pub const LIVE: u8 = 1 << 0;
    /// Counted in `DestLoad::active`.
    pub const ACTIVE: u8 = 1 << 1;
    /// A persistence template.
    pub const TEMPLATE: u8 = 1 << 2;
    /// A reply-direction alias of a connection owned by another core.
    pub const ALIAS: u8 = 1 << 3;
    /// A template taken out of the index, freed when its last connection ends.
    pub const DEAD: u8 = 1 << 4;
    /// The reply key is in the index.
    pub const REPLY: u8 = 1 << 5;
    /// The original key is in the index.
    pub const ORIG: u8 = 1 << 6;
    /// The connection holds a reference on a template (`Conn::tmpl`).
    pub const HAS_TEMPLATE: u8 = 1 << 7;
}

/// A connection as the table records it (`ipvsadm -Lc` shows these), or a persistence template
/// (client = masked client network, `vport` = persistent port or 0), or a reply-direction alias.
///
/// Layout (`repr(C)`, 104 B): what every lookup and established packet reads comes first, so
/// that a DR packet touches bytes 0..80 only (two cache lines wherever the 112-byte slab
/// entry starts, against three for half the entries with the local address in the middle):
///
/// ```text
///  0 client 16 vip 32 cport vport proto mode state flags 40 expires 48 timeout dest svc
/// 60 lport rport 64 real 80 local 96 tmpl owner 102 nat_sum 104
/// ```
///
/// [`ConnTable::prefetch_entry`](super::ConnTable::prefetch_entry) fetches bytes 0..104.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Conn {
    /// Client address.
    pub client: Addr,
    /// Virtual address.
    pub vip: Addr,
    /// Client port.
    pub cport: u16,
    /// Virtual port.
    pub vport: u16,
    /// Transport protocol.
    pub proto: Proto,
    /// Forwarding mode.
    pub mode: FwdMode,
    pub(super) state: ConnState,
    pub(super) flags: u8,
    pub(super) expires_ms: u64,
    pub(super) timeout_s: u32,
    /// The real server's stable slot.
    pub dest: DestId,
    /// The virtual service's slot.
    pub svc: u32,
    /// FullNAT local port (0 in other modes).
    pub lport: u16,
    /// Real server port.
    pub rport: u16,
    /// Real server address.
    pub real: Addr,
    /// FullNAT local address (unspecified in other modes).
    pub local: Addr,
    /// For a connection: its template's id (with `HAS_TEMPLATE`); for a template: the number of
    /// connections holding it.
    pub(super) tmpl: u32,
    /// The core that owns the connection (differs from this core's only for an alias).
    pub owner: u16,
    /// See [`Conn::nat_sum`].
    pub(super) nat_sum: u16,
}

/// [`Conn::is_established_tcp`] on the word (protocol, mode, state, flags), read little-endian:
/// protocol TCP, state ESTABLISHED, flags LIVE without TEMPLATE, any mode.
///
/// A subtraction rather than a mask per byte, which would let the compiler drop the untested
/// mode byte's load and read the other three one by one. In `word − EXPECTED`, the protocol
/// byte is zero only for TCP (and then nothing borrows from the mode byte); the state byte is
/// zero only for ESTABLISHED (and then nothing borrows from the flags byte); `flags − LIVE`
/// has neither bit 0 nor TEMPLATE only when flags has LIVE and not TEMPLATE (without LIVE the
/// borrow sets bit 0). Checked against the three plain tests for every byte value.
#[inline(always)]
fn established_tcp_word(word: u32) -> bool {
    const EXPECTED: u32 = u32::from_le_bytes([
        Proto::Tcp as u8,
        0,
        ConnState::Established as u8,
        flag::LIVE,
    ]);
    const TESTED: u32 = u32::from_le_bytes([0xff, 0, 0xff, flag::LIVE | flag::TEMPLATE]);
    word.wrapping_sub(EXPECTED) & TESTED == 0
}

impl Conn {
    /// A free slab slot.
    pub(super) const EMPTY: Conn = Conn {
        client: Addr::UNSPECIFIED,
        vip: Addr::UNSPECIFIED,
        local: Addr::UNSPECIFIED,
        real: Addr::UNSPECIFIED,
        expires_ms: 0,
        cport: 0,
        vport: 0,
        lport: 0,
        rport: 0,
        dest: DestId(0),
        svc: 0,
        timeout_s: 0,
        tmpl: 0,
        owner: 0,
        nat_sum: 0,
        proto: Proto::Tcp,
        mode: FwdMode::Dr,
        state: ConnState::None,
        flags: 0,
    };

    /// The key of client packets: client → VIP.
    #[inline]
    pub fn orig_key(&self) -> FlowKey {
        FlowKey {
            saddr: self.client,
            daddr: self.vip,
            sport: self.cport,
            dport: self.vport,
            proto: self.proto,
        }
    }

    /// The key of server packets: real server → client (NAT) or → local address (FullNAT).
    #[inline]
    pub fn reply_key(&self) -> FlowKey {
        let (daddr, dport) = if self.mode == FwdMode::FullNat {
            (self.local, self.lport)
        } else {
            (self.client, self.cport)
        };
        FlowKey {
            saddr: self.real,
            daddr,
            sport: self.rport,
            dport,
            proto: self.proto,
        }
    }

    /// True when `h` is a client packet of this connection: its addresses and ports are the
    /// original key's (the caller checks that the entry is not a template).
    #[inline(always)]
    pub(super) fn is_orig_of(&self, h: &crate::wire::Ipv4TcpHead) -> bool {
        self.proto == Proto::Tcp && self.is_orig_pair_of(h)
    }

    /// [`Conn::is_orig_of`] but for the protocol, which the caller tests (with
    /// [`Conn::is_established_tcp`]).
    #[inline(always)]
    pub(super) fn is_orig_pair_of(&self, h: &crate::wire::Ipv4TcpHead) -> bool {
        // The two ports as one word on each side, one compare instead of two: the entry's
        // (`cport` then `vport`) as it lies in memory, the head's as it was read (a rotation).
        let entry = u32::from(self.cport) | (u32::from(self.vport) << 16);
        let head = ((u32::from(h.sport) << 16) | u32::from(h.dport)).rotate_left(16);
        // The client's whole address (its family too), the VIP's IPv4 octets only: a
        // connection's client and VIP come from one packet, so they share one family.
        debug_assert!(self.client.is_v4() == self.vip.is_v4() || self.flags & flag::LIVE == 0);
        entry == head && self.client == Addr::v4(h.src) && self.vip.v4_octets() == h.dst
    }

    /// True for a live TCP connection in ESTABLISHED that is not a template: the fast path's
    /// test, on the word of bytes 36..40 (protocol, mode, state, flags) in one compare.
    #[inline(always)]
    pub(super) fn is_established_tcp(&self) -> bool {
        let word = [
            self.proto as u8,
            self.mode as u8,
            self.state as u8,
            self.flags,
        ];
        established_tcp_word(u32::from_le_bytes(word))
    }

    /// True when replies pass the director (NAT, FullNAT), so the reply key is indexed.
    #[inline]
    pub fn has_reply_leg(&self) -> bool {
        matches!(self.mode, FwdMode::Nat | FwdMode::FullNat)
    }

    /// The folded ones' complement sum of the IPv4 address changes the NAT rewrite of a client
    /// packet makes (NAT: VIP → real server; FullNAT: also client → local address), summed as
    /// the rewrite sums them (`checksum::term32`), so that the fast path updates checksums
    /// without summing them per packet; 0 for other modes and families. A reply undoes those
    /// changes: [`Conn::reply_nat_sum`].
    #[inline(always)]
    pub fn nat_sum(&self) -> u16 {
        self.nat_sum
    }

    /// [`Conn::nat_sum`] for a reply packet: its changes undo the client packet's.
    #[inline(always)]
    pub fn reply_nat_sum(&self) -> u16 {
        checksum::negate_sum(self.nat_sum)
    }

    /// The protocol state.
    #[inline]
    pub fn state(&self) -> ConnState {
        self.state
    }

    /// IPVS's name of the state (templates show as "NONE").
    pub fn state_name(&self) -> &'static str {
        self.state.name()
    }

    /// The timeout armed by the last packet or state change, in seconds.
    pub fn timeout_s(&self) -> u32 {
        self.timeout_s
    }

    /// When the entry expires, in ms (`u64::MAX` for a template held by connections).
    pub fn expires_ms(&self) -> u64 {
        self.expires_ms
    }

    /// Time left at `now_ms` in ms; a template held by connections shows its full timeout.
    pub fn remaining_ms(&self, now_ms: u64) -> u64 {
        if self.expires_ms == u64::MAX {
            u64::from(self.timeout_s) * 1000
        } else {
            self.expires_ms.saturating_sub(now_ms)
        }
    }

    /// True for a persistence template.
    pub fn is_template(&self) -> bool {
        self.flags & flag::TEMPLATE != 0
    }

    /// True for a reply-direction alias of a connection owned by core [`Conn::owner`].
    pub fn is_alias(&self) -> bool {
        self.flags & flag::ALIAS != 0
    }

    /// True while counted as an active connection of its real server.
    pub fn is_active(&self) -> bool {
        self.flags & flag::ACTIVE != 0
    }

    /// The persistence template this connection holds, if any.
    pub fn template(&self) -> Option<ConnId> {
        (self.flags & (flag::TEMPLATE | flag::HAS_TEMPLATE) == flag::HAS_TEMPLATE)
            .then_some(ConnId(self.tmpl))
    }

    /// For a template: how many connections hold it.
    pub fn template_refs(&self) -> u32 {
        if self.is_template() {
            self.tmpl
        } else {
            0
        }
    }

    #[inline]
    pub(super) fn is_live(&self) -> bool {
        self.flags & flag::LIVE != 0
    }
}

/// [`Conn::nat_sum`] of a connection in `mode` whose client packets' addresses `from` (client,
/// VIP) become `to` (local address, real server).
fn nat_sum(mode: FwdMode, [client, vip]: [&Addr; 2], [local, real]: [&Addr; 2]) -> u16 {
    let term = |o: &Addr, n: &Addr| {
        let ne = |a: &Addr| u32::from_ne_bytes(a.v4_octets());
        checksum::term32(ne(o), ne(n))
    };
    let all_v4 = |a: &[&Addr]| a.iter().all(|a| a.is_v4());
    match mode {
        FwdMode::Nat if all_v4(&[vip, real]) => checksum::fold(term(vip, real)),
        FwdMode::FullNat if all_v4(&[client, vip, local, real]) => {
            checksum::fold(term(client, local) + term(vip, real))
        }
        _ => 0,
    }
}

/// What the forwarder knows when it creates a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewConn {
    /// Transport protocol.
    pub proto: Proto,
    /// Client address and port.
    pub client: Addr,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vip: Addr,
    /// Virtual port.
    pub vport: u16,
    /// FullNAT local address (unspecified otherwise).
    pub local: Addr,
    /// FullNAT local port (0 otherwise).
    pub lport: u16,
    /// Real server address.
    pub real: Addr,
    /// Real server port.
    pub rport: u16,
    /// Forwarding mode.
    pub mode: FwdMode,
    /// The real server's slot.
    pub dest: DestId,
    /// The virtual service's slot.
    pub svc: u32,
    /// The persistence template the connection was scheduled by.
    pub template: Option<ConnId>,
}

impl NewConn {
    pub(super) fn into_conn(self, state: ConnState, owner: u16) -> Conn {
        Conn {
            client: self.client,
            vip: self.vip,
            local: self.local,
            real: self.real,
            expires_ms: 0,
            cport: self.cport,
            vport: self.vport,
            lport: self.lport,
            rport: self.rport,
            dest: self.dest,
            svc: self.svc,
            timeout_s: 0,
            tmpl: 0,
            owner,
            nat_sum: nat_sum(
                self.mode,
                [&self.client, &self.vip],
                [&self.local, &self.real],
            ),
            proto: self.proto,
            mode: self.mode,
            state,
            flags: flag::LIVE,
        }
    }
}

/// A slab slot: the connection and its timer links (the free list reuses `link.next`).
///
/// Aligned to 16 so that an entry starts at byte 0, 16, 32 or 48 of a cache line (112 ≡ 48 mod
/// 64): bytes 0..80, all a DR packet reads, then always lie in two lines (with the allocator's
/// alignment of 8 alone, an entry starting at byte 56 would need three).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(16))]
pub(super) struct Entry {
    pub conn: Conn,
    pub link: Link,
}

impl Timed for Entry {
    #[inline]
    fn link(&mut self) -> &mut Link {
        &mut self.link
    }
    #[inline]
    fn expires_ms(&self) -> u64 {
        self.conn.expires_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_sizes() {
        assert_eq!(std::mem::size_of::<Conn>(), 104);
        assert_eq!(std::mem::size_of::<Entry>(), 112);
        // What a DR packet reads is bytes 0..80, NAT and FullNAT 0..104 (`nat_sum` last);
        // `prefetch_entry` fetches the lines of bytes 0, 64 (`real`) and 103: every line of
        // 0..104.
        assert_eq!(std::mem::offset_of!(Conn, client), 0);
        assert_eq!(std::mem::offset_of!(Conn, flags), 39);
        assert_eq!(std::mem::offset_of!(Conn, expires_ms), 40);
        assert_eq!(std::mem::offset_of!(Conn, rport), 62);
        assert_eq!(std::mem::offset_of!(Conn, real), 64);
        assert_eq!(std::mem::offset_of!(Conn, local), 80);
        assert_eq!(std::mem::offset_of!(Conn, owner), 100);
        assert_eq!(std::mem::offset_of!(Conn, nat_sum), 102);
        // `is_established_tcp` reads these four as one word.
        assert_eq!(std::mem::offset_of!(Conn, proto), 36);
        assert_eq!(std::mem::offset_of!(Conn, mode), 37);
        assert_eq!(std::mem::offset_of!(Conn, state), 38);
    }

    /// The one-word test agrees with the three plain ones for every protocol, state and flags
    /// byte, whatever the mode byte (the first and last mode, and a byte no mode has).
    #[test]
    fn test_established_tcp_word_is_the_three_tests() {
        let tcp = Proto::Tcp as u8;
        let established = ConnState::Established as u8;
        for mode in [0u8, 3, 0xff] {
            for proto in 0..=255u8 {
                for state in 0..=255u8 {
                    for flags in 0..=255u8 {
                        let plain = proto == tcp
                            && state == established
                            && flags & (flag::LIVE | flag::TEMPLATE) == flag::LIVE;
                        let word = u32::from_le_bytes([proto, mode, state, flags]);
                        assert_eq!(
                            established_tcp_word(word),
                            plain,
                            "{proto} {mode} {state} {flags:#x}"
                        );
                    }
                }
            }
        }
        let mut c = Conn::EMPTY;
        (c.state, c.flags) = (ConnState::Established, flag::LIVE | flag::ACTIVE);
        for mode in [FwdMode::Dr, FwdMode::Nat, FwdMode::Tun, FwdMode::FullNat] {
            c.mode = mode;
            assert!(c.is_established_tcp(), "{mode:?}");
        }
        c.proto = Proto::Udp;
        assert!(!c.is_established_tcp());
    }

    #[test]
    fn test_nat_sum_by_mode_and_family() {
        let ne = |a: [u8; 4]| u32::from_ne_bytes(a);
        let (client, vip) = ([198, 51, 100, 7], [192, 0, 2, 1]);
        let (local, real) = ([10, 0, 0, 100], [10, 0, 0, 2]);
        let n = NewConn {
            proto: Proto::Tcp,
            client: Addr::v4(client),
            cport: 40000,
            vip: Addr::v4(vip),
            vport: 80,
            local: Addr::v4(local),
            lport: 5000,
            real: Addr::v4(real),
            rport: 8080,
            mode: FwdMode::Nat,
            dest: DestId(0),
            svc: 0,
            template: None,
        };
        let sum = |mode| {
            NewConn { mode, ..n }
                .into_conn(ConnState::None, 0)
                .nat_sum()
        };
        let vip_real = checksum::term32(ne(vip), ne(real));
        let client_local = checksum::term32(ne(client), ne(local));
        assert_eq!(sum(FwdMode::Nat), checksum::fold(vip_real));
        assert_eq!(
            sum(FwdMode::FullNat),
            checksum::fold(vip_real + client_local)
        );
        assert_eq!(sum(FwdMode::Dr), 0);
        assert_eq!(sum(FwdMode::Tun), 0);
        // The reply's sum undoes the client packet's.
        let f = NewConn {
            mode: FwdMode::FullNat,
            ..n
        }
        .into_conn(ConnState::None, 0);
        let back = checksum::term32(ne(real), ne(vip)) + checksum::term32(ne(local), ne(client));
        assert_eq!(f.reply_nat_sum(), checksum::fold(back));
        // IPv6 connections are not summed (the fast path is IPv4 only).
        let v6 = NewConn {
            client: Addr::v6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]),
            vip: Addr::v6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            real: Addr::v6([0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]),
            local: Addr::v6([0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            mode: FwdMode::FullNat,
            ..n
        };
        assert_eq!(v6.into_conn(ConnState::None, 0).nat_sum(), 0);
    }

    #[test]
    fn test_reply_key_by_mode() {
        let n = NewConn {
            proto: Proto::Tcp,
            client: Addr::v4([198, 51, 100, 7]),
            cport: 40000,
            vip: Addr::v4([192, 0, 2, 1]),
            vport: 80,
            local: Addr::v4([10, 0, 0, 100]),
            lport: 5000,
            real: Addr::v4([10, 0, 0, 2]),
            rport: 8080,
            mode: FwdMode::Nat,
            dest: DestId(0),
            svc: 0,
            template: None,
        };
        let c = n.into_conn(ConnState::None, 0);
        assert_eq!(c.reply_key().saddr, Addr::v4([10, 0, 0, 2]));
        assert_eq!(c.reply_key().sport, 8080);
        assert_eq!(c.reply_key().daddr, Addr::v4([198, 51, 100, 7]));
        assert_eq!(c.reply_key().dport, 40000);
        let f = NewConn {
            mode: FwdMode::FullNat,
            ..n
        }
        .into_conn(ConnState::None, 0);
        assert_eq!(f.reply_key().daddr, Addr::v4([10, 0, 0, 100]));
        assert_eq!(f.reply_key().dport, 5000);
        assert_eq!(f.orig_key().dport, 80);
        assert!(f.has_reply_leg());
        assert!(!NewConn {
            mode: FwdMode::Dr,
            ..n
        }
        .into_conn(ConnState::None, 0)
        .has_reply_leg());
    }
}
