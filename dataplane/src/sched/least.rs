//! Load- and weight-driven schedulers that look at every server: lc, wlc, sed, nq (`ip_vs_lc.c`,
//! `ip_vs_wlc.c`, `ip_vs_sed.c`, `ip_vs_nq.c`) and fo, ovf (`ip_vs_fo.c`, `ip_vs_ovf.c`).
//!
//! Loads are compared as IPVS does, without division: `a/wa > b/wb` as `a*wb > b*wa` in 64
//! bits. Ties go to the first server in list order.

use super::{load_of, usable, Dest, DestLoad};

/// Least connection: the smallest overhead (`active*256 + inactive`), weights only gate.
pub(super) fn lc(dests: &[Dest], load: &[DestLoad]) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for (i, d) in dests.iter().enumerate() {
        if !usable(d, load) {
            continue;
        }
        let oh = load_of(load, d).overhead();
        if best.is_none_or(|(_, b)| oh < b) {
            best = Some((i, oh));
        }
    }
    best.map(|(i, _)| i)
}

/// The usable server with the least `cost(load) / weight`; ties keep the first one.
#[inline]
fn least_by(dests: &[Dest], load: &[DestLoad], cost: impl Fn(&DestLoad) -> u64) -> Option<usize> {
    let mut best: Option<(usize, u64, u64)> = None;
    for (i, d) in dests.iter().enumerate() {
        if !usable(d, load) {
            continue;
        }
        let (c, w) = (cost(load_of(load, d)), u64::from(d.weight));
        // c/w < bc/bw  <=>  bc*w > c*bw
        if best.is_none_or(|(_, bc, bw)| bc * w > c * bw) {
            best = Some((i, c, w));
        }
    }
    best.map(|(i, _, _)| i)
}

/// Weighted least connection: the least `overhead / weight`.
pub(super) fn wlc(dests: &[Dest], load: &[DestLoad]) -> Option<usize> {
    least_by(dests, load, |l| u64::from(l.overhead()))
}

/// Shortest expected delay: the least `(active + 1) / weight`.
pub(super) fn sed(dests: &[Dest], load: &[DestLoad]) -> Option<usize> {
    least_by(dests, load, |l| u64::from(l.active) + 1)
}

/// Never queue: the first server without active connections, else as sed.
pub(super) fn nq(dests: &[Dest], load: &[DestLoad]) -> Option<usize> {
    let idle = dests
        .iter()
        .position(|d| usable(d, load) && load_of(load, d).active == 0);
    idle.or_else(|| sed(dests, load))
}

/// Weighted failover: the usable server of highest weight (the first of equals).
pub(super) fn fo(dests: &[Dest], load: &[DestLoad]) -> Option<usize> {
    highest(dests, |d| usable(d, load))
}

/// Weighted overflow: the usable server of highest weight whose active connections do not
/// exceed its weight; `cores` scales this core's count to the service-wide estimate.
pub(super) fn ovf(dests: &[Dest], load: &[DestLoad], cores: u32) -> Option<usize> {
    highest(dests, |d| {
        let active = u64::from(load_of(load, d).active) * u64::from(cores);
        usable(d, load) && active <= u64::from(d.weight)
    })
}

fn highest(dests: &[Dest], ok: impl Fn(&Dest) -> bool) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for (i, d) in dests.iter().enumerate() {
        if ok(d) && best.is_none_or(|(_, w)| d.weight > w) {
            best = Some((i, d.weight));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Addr;
    use crate::sched::DestId;

    fn dests(weights: &[u32]) -> Vec<Dest> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Dest {
                id: DestId(i as u32),
                addr: Addr::v4([10, 0, 0, i as u8]),
                port: 80,
                weight: w,
            })
            .collect()
    }

    fn active(counts: &[u32]) -> Vec<DestLoad> {
        counts
            .iter()
            .map(|&a| DestLoad {
                active: a,
                ..DestLoad::default()
            })
            .collect()
    }

    #[test]
    fn test_lc_ignores_weight_and_counts_inactive_lightly() {
        let d = dests(&[1, 100, 1]);
        let mut l = active(&[2, 3, 2]);
        l[0].inactive = 300; // 2*256 + 300 = 812 > 2*256 = 512
        assert_eq!(lc(&d, &l), Some(2));
        // 812 vs 4*256 = 1024 for both others: the heavy weight of server 1 does not count.
        l[1].active = 4;
        l[2].active = 4;
        assert_eq!(lc(&d, &l), Some(0));
    }

    #[test]
    fn test_wlc_weights_5_10_converge_to_1_2() {
        let d = dests(&[5, 10]);
        let mut l = vec![DestLoad::default(); 2];
        let mut live: Vec<usize> = Vec::new();
        let mut assigned = [0u32; 2];
        let mut rng = 0x1234_5678_u32;
        for _ in 0..30_000 {
            let i = wlc(&d, &l).unwrap();
            l[i].bind(true);
            live.push(i);
            assigned[i] += 1;
            // End a pseudo-random live connection about half the time, keeping ~hundreds.
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            if live.len() > 300 || rng.is_multiple_of(2) {
                let k = rng as usize % live.len();
                let j = live.swap_remove(k);
                l[j].unbind(true);
            }
        }
        let ratio = f64::from(assigned[1]) / f64::from(assigned[0]);
        assert!((1.95..=2.05).contains(&ratio), "assigned {assigned:?}");
        let live_ratio = f64::from(l[1].active) / f64::from(l[0].active);
        assert!((1.8..=2.2).contains(&live_ratio), "live {l:?}");
    }

    #[test]
    fn test_wlc_tie_goes_to_first() {
        let d = dests(&[1, 2]);
        assert_eq!(wlc(&d, &active(&[1, 2])), Some(0));
        assert_eq!(wlc(&d, &active(&[1, 1])), Some(1));
    }

    #[test]
    fn test_sed_picks_shortest_expected_delay() {
        // (1+1)/1 = 2, (2+1)/2 = 1.5, (3+1)/3 = 1.33: the third.
        let d = dests(&[1, 2, 3]);
        assert_eq!(sed(&d, &active(&[1, 2, 3])), Some(2));
        // wlc would pick the same here; with an idle light server sed still prefers weight:
        // (0+1)/1 = 1 vs (1+1)/3 = 0.67.
        let d = dests(&[1, 3]);
        assert_eq!(sed(&d, &active(&[0, 1])), Some(1));
    }

    #[test]
    fn test_nq_prefers_idle_server() {
        // Same load as above: sed would take the heavy server, nq takes the idle one.
        let d = dests(&[1, 3]);
        assert_eq!(nq(&d, &active(&[0, 1])), Some(0));
        // Nobody idle: shortest expected delay.
        assert_eq!(nq(&dests(&[1, 2, 3]), &active(&[1, 2, 3])), Some(2));
        // Inactive connections do not make a server busy.
        let mut l = active(&[1, 0]);
        l[1].inactive = 50;
        assert_eq!(nq(&dests(&[1, 1]), &l), Some(1));
    }

    #[test]
    fn test_fo_highest_weight_available() {
        let d = dests(&[3, 7, 7, 5]);
        let mut l = vec![DestLoad::default(); 4];
        assert_eq!(fo(&d, &l), Some(1));
        l[1].overloaded = true;
        assert_eq!(fo(&d, &l), Some(2));
        l[2].overloaded = true;
        assert_eq!(fo(&d, &l), Some(3));
        // Load does not matter to fo, only availability.
        l[3].active = 1000;
        assert_eq!(fo(&d, &l), Some(3));
    }

    #[test]
    fn test_ovf_overflows_past_weight() {
        let d = dests(&[2, 5]);
        let mut l = vec![DestLoad::default(); 2];
        let mut picks = Vec::new();
        for _ in 0..9 {
            let i = ovf(&d, &l, 1).unwrap();
            picks.push(i);
            l[i].bind(true);
        }
        // Server 1 takes connections while active <= 5 (6 of them), then server 0 (3), then none.
        assert_eq!(picks, [1, 1, 1, 1, 1, 1, 0, 0, 0]);
        assert_eq!(ovf(&d, &l, 1), None);
        // With 4 cores, 2 active here estimate 8 > 5 service-wide.
        assert_eq!(ovf(&d, &active(&[0, 2]), 4), Some(0));
    }
}
