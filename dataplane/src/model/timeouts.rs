//! Connection timeouts per protocol state, with IPVS's defaults (`ipvsadm --set tcp tcpfin udp`).

/// Idle timeouts by state, in seconds; IPVS's defaults from `ip_vs_proto_tcp.c` / `ip_vs_proto_udp.c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Timeouts {
    /// TCP ESTABLISHED (ipvsadm `--set` first value).
    pub tcp_established: u32,
    /// TCP FIN_WAIT (ipvsadm `--set` second value).
    pub tcp_fin_wait: u32,
    /// UDP (ipvsadm `--set` third value).
    pub udp: u32,
    /// TCP SYN_SENT.
    pub tcp_syn_sent: u32,
    /// TCP SYN_RECV.
    pub tcp_syn_recv: u32,
    /// TCP TIME_WAIT.
    pub tcp_time_wait: u32,
    /// TCP CLOSE.
    pub tcp_close: u32,
    /// TCP CLOSE_WAIT.
    pub tcp_close_wait: u32,
    /// TCP LAST_ACK.
    pub tcp_last_ack: u32,
    /// TCP LISTEN.
    pub tcp_listen: u32,
    /// TCP SYN_ACK.
    pub tcp_syn_ack: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        let s = |secs: u32| secs;
        Self {
            tcp_established: s(15 * 60),
            tcp_fin_wait: s(2 * 60),
            udp: s(5 * 60),
            tcp_syn_sent: s(2 * 60),
            tcp_syn_recv: s(60),
            tcp_time_wait: s(2 * 60),
            tcp_close: s(10),
            tcp_close_wait: s(60),
            tcp_last_ack: s(30),
            tcp_listen: s(2 * 60),
            tcp_syn_ack: s(2 * 60),
        }
    }
}
