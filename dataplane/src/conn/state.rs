//! IPVS's per-connection protocol state: the TCP state machine of the kernel's
//! `ip_vs_proto_tcp.c` (normal, non-`secure_tcp` tables) and the single UDP state, with the
//! timeout each state arms.
//!
//! The director does not terminate TCP; it follows the flags it sees. When both directions pass
//! it (NAT, FullNAT) client packets use the *input* table and server packets the *output* table;
//! when only client packets pass (DR, TUN: replies go straight to the client) the *input-only*
//! table is used. Flags are ranked RST > SYN > FIN > ACK; a segment with none of them moves the
//! connection to CLOSE, as in the kernel.

use crate::model::{FwdMode, Timeouts};

/// TCP header flag bits (byte 13 of the TCP header, RFC 9293 §3.1).
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// The state of a connection, with IPVS's names (`ipvsadm -Lc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ConnState {
    /// TCP, no segment seen yet (also the state of persistence templates).
    None = 0,
    /// TCP ESTABLISHED: the only *active* state.
    Established = 1,
    /// TCP SYN_SENT.
    SynSent = 2,
    /// TCP SYN_RECV.
    SynRecv = 3,
    /// TCP FIN_WAIT.
    FinWait = 4,
    /// TCP TIME_WAIT.
    TimeWait = 5,
    /// TCP CLOSE.
    Close = 6,
    /// TCP CLOSE_WAIT.
    CloseWait = 7,
    /// TCP LAST_ACK.
    LastAck = 8,
    /// TCP LISTEN.
    Listen = 9,
    /// TCP SYNACK.
    SynAck = 10,
    /// UDP (a single state).
    Udp = 11,
}

/// Seconds a TCP connection stays in NONE; a kernel constant that `ipvsadm --set` cannot change.
pub const TCP_NONE_TIMEOUT: u32 = 2;

impl ConnState {
    /// The name ipvsadm prints.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Established => "ESTABLISHED",
            Self::SynSent => "SYN_SENT",
            Self::SynRecv => "SYN_RECV",
            Self::FinWait => "FIN_WAIT",
            Self::TimeWait => "TIME_WAIT",
            Self::Close => "CLOSE",
            Self::CloseWait => "CLOSE_WAIT",
            Self::LastAck => "LAST_ACK",
            Self::Listen => "LISTEN",
            Self::SynAck => "SYNACK",
            Self::Udp => "UDP",
        }
    }

    /// True in the state IPVS counts as an active connection (TCP ESTABLISHED).
    #[inline]
    pub fn is_active(self) -> bool {
        self == Self::Established
    }

    /// The idle timeout this state arms, in seconds.
    #[inline]
    pub fn timeout(self, t: &Timeouts) -> u32 {
        match self {
            Self::None => TCP_NONE_TIMEOUT,
            Self::Established => t.tcp_established,
            Self::SynSent => t.tcp_syn_sent,
            Self::SynRecv => t.tcp_syn_recv,
            Self::FinWait => t.tcp_fin_wait,
            Self::TimeWait => t.tcp_time_wait,
            Self::Close => t.tcp_close,
            Self::CloseWait => t.tcp_close_wait,
            Self::LastAck => t.tcp_last_ack,
            Self::Listen => t.tcp_listen,
            Self::SynAck => t.tcp_syn_ack,
            Self::Udp => t.udp,
        }
    }
}

/// Which transition table a segment goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpTable {
    /// Client to server when both directions pass the director.
    Input = 0,
    /// Server to client.
    Output = 1,
    /// Client to server when replies bypass the director (DR, TUN).
    InputOnly = 2,
}

impl TcpTable {
    /// The table for a packet of a connection forwarded by `mode`, seen in the reply direction
    /// when `reply`.
    #[inline]
    pub fn select(mode: FwdMode, reply: bool) -> TcpTable {
        match mode {
            FwdMode::Dr | FwdMode::Tun => TcpTable::InputOnly,
            FwdMode::Nat | FwdMode::FullNat if reply => TcpTable::Output,
            FwdMode::Nat | FwdMode::FullNat => TcpTable::Input,
        }
    }
}

use ConnState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynRecv as SR, SynSent as SS, TimeWait as TW,
};

/// `NEXT[table][flag row][state]`, rows ordered SYN, FIN, ACK, RST; columns in [`ConnState`]
/// discriminant order NONE..SYNACK. Facts from `ip_vs_proto_tcp.c` (`tcp_states`).
const NEXT: [[[ConnState; 11]; 4]; 3] = [
    // Input.
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    ],
    // Output.
    [
        [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    // Input-only.
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// The TCP state after a segment with `flags` (raw TCP flag byte) passes through `table`.
///
/// UDP (and any non-TCP state) stays where it is.
#[inline]
pub fn tcp_next(state: ConnState, table: TcpTable, flags: u8) -> ConnState {
    use tcp_flags::{ACK, FIN, RST, SYN};
    if state == ConnState::Udp {
        return state;
    }
    let row = if flags & RST != 0 {
        3
    } else if flags & SYN != 0 {
        0
    } else if flags & FIN != 0 {
        1
    } else if flags & ACK != 0 {
        2
    } else {
        return ConnState::Close;
    };
    // `state` is a TCP state here, so its discriminant is below 11.
    NEXT[table as usize][row][state as usize]
}

#[cfg(test)]
mod tests {
    use super::tcp_flags::*;
    use super::*;
    use ConnState::None as NO;

    fn walk(mode: FwdMode, steps: &[(bool, u8, ConnState)]) {
        let mut s = ConnState::None;
        for (i, &(reply, flags, want)) in steps.iter().enumerate() {
            s = tcp_next(s, TcpTable::select(mode, reply), flags);
            assert_eq!(s, want, "{mode} step {i}");
        }
    }

    #[test]
    fn test_nat_open_close() {
        walk(
            FwdMode::Nat,
            &[
                (false, SYN, SR),
                (true, SYN | ACK, SR),
                (false, ACK, ES),
                (false, FIN | ACK, CW),
                (true, ACK, CW),
                (true, FIN | ACK, TW),
                (false, ACK, TW),
            ],
        );
    }

    #[test]
    fn test_server_closes_first() {
        walk(
            FwdMode::FullNat,
            &[
                (false, SYN, SR),
                (true, SYN | ACK, SR),
                (false, ACK, ES),
                (true, FIN | ACK, FW),
                (false, FIN | ACK, TW),
                (true, ACK, TW),
            ],
        );
    }

    #[test]
    fn test_input_only() {
        walk(
            FwdMode::Dr,
            &[
                (false, SYN, SR),
                (false, ACK, ES),
                (false, FIN | ACK, FW),
                (false, ACK, FW),
            ],
        );
        walk(
            FwdMode::Tun,
            &[(false, SYN, SR), (false, ACK, ES), (false, RST, CL)],
        );
    }

    #[test]
    fn test_flag_precedence_and_no_flags() {
        let t = TcpTable::Input;
        assert_eq!(tcp_next(ES, t, RST | SYN | FIN | ACK), CL);
        assert_eq!(tcp_next(ES, t, SYN | FIN), ES);
        assert_eq!(tcp_next(ES, t, FIN | ACK), CW);
        assert_eq!(tcp_next(ES, t, 0), CL);
        assert_eq!(tcp_next(ConnState::Udp, t, RST), ConnState::Udp);
    }

    #[test]
    fn test_timeouts_and_names() {
        let t = Timeouts::default();
        assert_eq!(ES.timeout(&t), 900);
        assert_eq!(FW.timeout(&t), 120);
        assert_eq!(CL.timeout(&t), 10);
        assert_eq!(NO.timeout(&t), 2);
        assert_eq!(ConnState::Udp.timeout(&t), 300);
        assert_eq!(SR.name(), "SYN_RECV");
        assert_eq!(ConnState::Udp.name(), "UDP");
        assert!(ES.is_active() && !CW.is_active());
    }
}
