//! Enumerations with ipvsadm's spellings.

use std::fmt;
use std::str::FromStr;

/// A name that does not denote any known value; carries what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseNameError {
    /// What kind of name was being parsed ("scheduler", "forwarding mode").
    pub what: &'static str,
    /// The names that would have been accepted.
    pub expected: &'static str,
}

impl fmt::Display for ParseNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {}; expected one of: {}",
            self.what, self.expected
        )
    }
}

impl std::error::Error for ParseNameError {}

/// The scheduling algorithms of ipvsadm(8), plus Maglev hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum SchedulerKind {
    /// Round robin.
    Rr,
    /// Weighted round robin (gcd interleaving).
    Wrr,
    /// Least connection.
    Lc,
    /// Weighted least connection (the IPVS default).
    Wlc,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Source hashing.
    Sh,
    /// Destination hashing.
    Dh,
    /// Locality-based least connection.
    Lblc,
    /// Locality-based least connection with replication.
    Lblcr,
    /// Maglev hashing.
    Mh,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
}

impl SchedulerKind {
    /// Every scheduler, in ipvsadm's order.
    pub const ALL: [SchedulerKind; 13] = [
        Self::Rr,
        Self::Wrr,
        Self::Lc,
        Self::Wlc,
        Self::Lblc,
        Self::Lblcr,
        Self::Dh,
        Self::Sh,
        Self::Sed,
        Self::Nq,
        Self::Fo,
        Self::Ovf,
        Self::Mh,
    ];
    const EXPECTED: &'static str = "rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh";

    /// ipvsadm's name for the scheduler.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rr => "rr",
            Self::Wrr => "wrr",
            Self::Lc => "lc",
            Self::Wlc => "wlc",
            Self::Sed => "sed",
            Self::Nq => "nq",
            Self::Sh => "sh",
            Self::Dh => "dh",
            Self::Lblc => "lblc",
            Self::Lblcr => "lblcr",
            Self::Mh => "mh",
            Self::Fo => "fo",
            Self::Ovf => "ovf",
        }
    }
}

impl fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SchedulerKind {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or(ParseNameError {
                what: "scheduler",
                expected: Self::EXPECTED,
            })
    }
}

/// How packets reach a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum FwdMode {
    /// Direct routing (`-g`, "Route"): rewrite the destination MAC only.
    Dr,
    /// Masquerading (`-m`, "Masq"): DNAT to the real server, SNAT the replies.
    Nat,
    /// IPIP tunnelling (`-i`, "Tunnel").
    Tun,
    /// Full NAT (`-b`, "FullNat"): SNAT to a local address and DNAT to the real server.
    #[cfg_attr(feature = "serde", serde(rename = "fullnat"))]
    FullNat,
}

impl FwdMode {
    /// Every forwarding mode.
    pub const ALL: [FwdMode; 4] = [Self::Dr, Self::Nat, Self::Tun, Self::FullNat];

    /// The API name (`dr`, `nat`, `tun`, `fullnat`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Dr => "dr",
            Self::Nat => "nat",
            Self::Tun => "tun",
            Self::FullNat => "fullnat",
        }
    }

    /// The word ipvsadm prints in its "Forward" column.
    pub fn ipvsadm_word(self) -> &'static str {
        match self {
            Self::Dr => "Route",
            Self::Nat => "Masq",
            Self::Tun => "Tunnel",
            Self::FullNat => "FullNat",
        }
    }
}

impl fmt::Display for FwdMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FwdMode {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "dr" | "route" | "gatewaying" => Ok(Self::Dr),
            "nat" | "masq" | "masquerading" => Ok(Self::Nat),
            "tun" | "tunnel" | "ipip" => Ok(Self::Tun),
            "fullnat" | "fnat" => Ok(Self::FullNat),
            _ => Err(ParseNameError {
                what: "forwarding mode",
                expected: "dr, nat, tun, fullnat",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_names_round_trip() {
        for k in SchedulerKind::ALL {
            assert_eq!(k.name().parse::<SchedulerKind>().unwrap(), k);
        }
        for m in FwdMode::ALL {
            assert_eq!(m.name().parse::<FwdMode>().unwrap(), m);
        }
        assert_eq!("Masq".parse::<FwdMode>().unwrap(), FwdMode::Nat);
        let err = "xx".parse::<SchedulerKind>().unwrap_err();
        assert!(err.to_string().contains("unknown scheduler"));
    }
}
