//! The forwarding benchmark's ceiling: what the daemon forwards when its forwarder does nothing.
//!
//! Built only with the `bench-ceiling` feature (`benches/dpdk_fwd.rs` builds it into a target
//! directory of its own): with `IRONVS_BENCH_CEILING=FROM:TO` (data port indices) in its
//! environment, a worker moves every RX burst of port FROM, untouched, to the TX burst of port
//! TO, exactly as `Worker::forward_burst` moves a burst whose frames all leave by one port. The
//! rest of the daemon (polling every port, the inboxes, timers, counters, flushes) runs as
//! usual, so the rate is the daemon's own ceiling on those ports: testpmd's rate minus
//! everything but the forwarder. Without the feature, [`route`] is `None` and the bypass
//! compiles away.

/// The ports the bypass joins, from the environment (feature `bench-ceiling` only).
#[cfg(feature = "bench-ceiling")]
pub(super) fn route() -> Option<(usize, usize)> {
    let v = std::env::var("IRONVS_BENCH_CEILING").ok()?;
    let parsed = parse(&v);
    match parsed {
        Some(r) => log::warn!(
            "bench-ceiling build: port {} bypasses the forwarder to port {}",
            r.0,
            r.1
        ),
        None => log::error!("IRONVS_BENCH_CEILING={v:?}: expected FROM:TO port indices; no bypass"),
    }
    parsed
}

/// No bypass: a build without the `bench-ceiling` feature.
#[cfg(not(feature = "bench-ceiling"))]
#[inline(always)]
pub(super) fn route() -> Option<(usize, usize)> {
    None
}

/// `FROM:TO` as two port indices.
#[cfg_attr(not(feature = "bench-ceiling"), allow(dead_code))]
fn parse(v: &str) -> Option<(usize, usize)> {
    let (from, to) = v.split_once(':')?;
    Some((from.trim().parse().ok()?, to.trim().parse().ok()?))
}

/// The port a burst received on port `pi` goes to untouched, if `route` bypasses that port.
#[inline(always)]
pub(super) fn bypass(route: Option<(usize, usize)>, pi: usize) -> Option<usize> {
    route.and_then(|(from, to)| (from == pi).then_some(to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_route_parses_and_bypasses_only_its_port() {
        assert_eq!(parse("1:2"), Some((1, 2)));
        assert_eq!(parse(" 0 : 3 "), Some((0, 3)));
        for bad in ["", "1", "1:", ":2", "a:2", "1:2:3", "-1:2"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(bypass(Some((1, 2)), 1), Some(2));
        assert_eq!(bypass(Some((1, 2)), 0), None);
        assert_eq!(bypass(None, 1), None);
    }
}
