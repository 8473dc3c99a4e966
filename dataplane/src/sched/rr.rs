//! Round robin (rr) and weighted round robin (wrr) as in `ip_vs_rr.c` and `ip_vs_wrr.c`.
//!
//! wrr keeps a current weight `cw` that starts at the maximum weight and steps down by the gcd
//! of the weights each time the cursor passes the end of the server list, back to the maximum
//! when it reaches 0; a server is chosen when its weight is at least `cw`. Weights 4, 3, 2 thus
//! give the cycle A A B A B C A B C. Rounds in which no usable server can reach `cw` (the
//! heaviest servers are overloaded) are skipped arithmetically, so one call costs at most two
//! passes over the servers however far apart the weights are.

use super::{usable, Dest, DestLoad};

/// Position of the last server rr picked.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RrCursor {
    last: Option<usize>,
}

impl RrCursor {
    /// Keeps the position valid for a list of `n` servers.
    pub(super) fn resync(&mut self, n: usize) {
        if self.last.is_some_and(|l| l >= n) {
            self.last = None;
        }
    }
}

/// Round robin: the next usable server after the last one picked.
pub(super) fn rr(cur: &mut RrCursor, dests: &[Dest], load: &[DestLoad]) -> Option<usize> {
    let n = dests.len();
    let start = cur.last.map_or(0, |l| l + 1);
    for k in 0..n {
        let i = (start + k) % n;
        if dests.get(i).is_some_and(|d| usable(d, load)) {
            cur.last = Some(i);
            return Some(i);
        }
    }
    None
}

/// wrr's per-snapshot numbers: maximum weight adjusted by the gcd, and the gcd.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct WrrPlan {
    /// `max weight - (gcd - 1)`: the first `cw` of a cycle; 0 when every weight is 0.
    mw: u32,
    /// gcd of the positive weights (1 when there are none): the step of `cw`.
    di: u32,
}

impl WrrPlan {
    pub(super) fn new(dests: &[Dest]) -> WrrPlan {
        let di = dests
            .iter()
            .map(|d| d.weight)
            .filter(|&w| w > 0)
            .fold(0, gcd)
            .max(1);
        let max = dests.iter().map(|d| d.weight).max().unwrap_or(0);
        WrrPlan {
            mw: max.saturating_sub(di - 1),
            di,
        }
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// wrr's cursor: last server picked (`None` = before the first) and the current weight.
#[derive(Debug, Clone, Copy)]
pub(super) struct WrrCursor {
    cl: Option<usize>,
    cw: u32,
}

impl WrrCursor {
    pub(super) fn new(plan: &WrrPlan) -> WrrCursor {
        WrrCursor {
            cl: None,
            cw: plan.mw,
        }
    }

    /// IPVS's `ip_vs_wrr_dest_changed`: restart the list, keep `cw` where still meaningful.
    pub(super) fn resync(&mut self, plan: &WrrPlan) {
        self.cl = None;
        if self.cw > plan.mw || self.cw == 0 {
            self.cw = plan.mw;
        } else if plan.di > 1 {
            self.cw = (self.cw / plan.di) * plan.di + 1;
        }
    }
}

/// Weighted round robin.
pub(super) fn wrr(
    cur: &mut WrrCursor,
    plan: &WrrPlan,
    dests: &[Dest],
    load: &[DestLoad],
) -> Option<usize> {
    if plan.mw == 0 {
        return None;
    }
    // The heaviest usable weight bounds the useful values of cw.
    let top = dests
        .iter()
        .filter(|d| usable(d, load))
        .map(|d| d.weight)
        .max()?;
    let n = dests.len();
    let mut cw = cur.cw;
    let mut pos = cur.cl.filter(|&p| p < n);
    // Terminates: within one pass cw drops to at most `top`, and the next pass meets the
    // server of weight `top`. The bound only guards against a broken invariant.
    for _ in 0..(2 * n + 2) {
        let next = pos.map_or(0, |p| p + 1);
        if next >= n {
            // Passing the list head: step cw down, wrap to mw, skip empty rounds.
            pos = None;
            cw = if cw > plan.di { cw - plan.di } else { plan.mw };
            if cw > top {
                cw -= (cw - top).div_ceil(plan.di) * plan.di;
            }
            continue;
        }
        pos = Some(next);
        if let Some(d) = dests.get(next) {
            if usable(d, load) && d.weight >= cw {
                cur.cl = pos;
                cur.cw = cw;
                return Some(next);
            }
        }
    }
    None
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

    fn wrr_seq(weights: &[u32], load: &[DestLoad], n: usize) -> String {
        let d = dests(weights);
        let plan = WrrPlan::new(&d);
        let mut cur = WrrCursor::new(&plan);
        (0..n)
            .map(|_| match wrr(&mut cur, &plan, &d, load) {
                Some(i) => char::from(b'A' + i as u8),
                None => '-',
            })
            .collect()
    }

    #[test]
    fn test_rr_equal_counts_and_order() {
        let d = dests(&[1, 1]);
        let mut cur = RrCursor::default();
        let picks: Vec<_> = (0..6).map(|_| rr(&mut cur, &d, &[]).unwrap()).collect();
        assert_eq!(picks, [0, 1, 0, 1, 0, 1]);
        let mut counts = [0; 2];
        for _ in 0..1000 {
            counts[rr(&mut cur, &d, &[]).unwrap()] += 1;
        }
        assert_eq!(counts, [500, 500]);
    }

    #[test]
    fn test_rr_skips_quiesced_and_overloaded() {
        let d = dests(&[1, 0, 1, 1]);
        let mut load = vec![DestLoad::default(); 4];
        load[2].overloaded = true;
        let mut cur = RrCursor::default();
        let picks: Vec<_> = (0..4).map(|_| rr(&mut cur, &d, &load).unwrap()).collect();
        assert_eq!(picks, [0, 3, 0, 3]);
    }

    #[test]
    fn test_wrr_ipvs_sequence_4_3_2() {
        // By hand: cw=4 A | cw=3 A B | cw=2 A B C | cw=1 A B C | wrap to 4 ...
        assert_eq!(wrr_seq(&[4, 3, 2], &[], 18), "AABABCABCAABABCABC");
    }

    #[test]
    fn test_wrr_gcd_steps() {
        // gcd 2, mw = 4 - 1 = 3: cw=3 A | cw=1 A B | wrap: 2:1 like weights 2,1.
        assert_eq!(wrr_seq(&[4, 2], &[], 6), "AABAAB");
        // Equal weights behave as rr.
        assert_eq!(wrr_seq(&[5, 5, 5], &[], 6), "ABCABC");
    }

    #[test]
    fn test_wrr_counts_follow_weights() {
        let s = wrr_seq(&[5, 1, 3], &[], 900);
        let count = |c| s.chars().filter(|&x| x == c).count();
        assert_eq!((count('A'), count('B'), count('C')), (500, 100, 300));
    }

    #[test]
    fn test_wrr_skips_overloaded_heavy_server_quickly() {
        // The 65535-weight server is overloaded: the weight-1 servers alternate at once.
        let mut load = vec![DestLoad::default(); 3];
        load[0].overloaded = true;
        assert_eq!(wrr_seq(&[65535, 1, 1], &load, 6), "BCBCBC");
    }

    #[test]
    fn test_wrr_quiesced_never_picked() {
        assert_eq!(wrr_seq(&[0, 2, 1], &[], 6), "BBCBBC");
        assert_eq!(wrr_seq(&[0, 0], &[], 3), "---");
    }

    #[test]
    fn test_wrr_resync_like_dest_changed() {
        let d = dests(&[4, 3, 2]);
        let plan = WrrPlan::new(&d);
        let mut cur = WrrCursor::new(&plan);
        for _ in 0..4 {
            wrr(&mut cur, &plan, &d, &[]);
        }
        assert_eq!((cur.cl, cur.cw), (Some(0), 2));
        // Weights change to 6, 2: gcd 2, mw 5; cw 2 becomes (2/2)*2+1 = 3, list restarts.
        let d2 = dests(&[6, 2]);
        let plan2 = WrrPlan::new(&d2);
        cur.resync(&plan2);
        assert_eq!((cur.cl, cur.cw), (None, 3));
        let picks: Vec<_> = (0..4)
            .map(|_| wrr(&mut cur, &plan2, &d2, &[]).unwrap())
            .collect();
        // cw=3: A | cw=1: A B | cw=5: A ...
        assert_eq!(picks, [0, 0, 1, 0]);
    }
}
