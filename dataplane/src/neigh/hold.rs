//! Per-entry hold queues: a fixed ring of packets waiting for their next hop's MAC.

/// A fixed ring of held packets, oldest first.
#[derive(Debug)]
pub(crate) struct Ring<B, const H: usize> {
    slots: [Option<B>; H],
    head: usize,
    pub(crate) len: usize,
}

impl<B, const H: usize> Ring<B, H> {
    pub(crate) fn new() -> Self {
        Ring {
            slots: std::array::from_fn(|_| None),
            head: 0,
            len: 0,
        }
    }

    /// Appends `b`; when full, the oldest is taken out and returned.
    pub(crate) fn push(&mut self, b: B) -> Option<B> {
        if H == 0 {
            return Some(b);
        }
        let evicted = if self.len == H { self.pop() } else { None };
        if let Some(s) = self.slots.get_mut((self.head + self.len) % H) {
            *s = Some(b);
            self.len += 1;
        }
        evicted
    }

    pub(crate) fn pop(&mut self) -> Option<B> {
        if self.len == 0 {
            return None;
        }
        let b = self.slots.get_mut(self.head)?.take();
        self.head = (self.head + 1) % H;
        self.len -= 1;
        b
    }
}

/// The held packets released by [`super::NeighCache::learn`], oldest first; those not taken are dropped
/// with the iterator.
#[derive(Debug)]
pub struct Released<'a, B, const H: usize> {
    pub(crate) ring: Option<&'a mut Ring<B, H>>,
}

impl<B, const H: usize> Iterator for Released<'_, B, H> {
    type Item = B;

    fn next(&mut self) -> Option<B> {
        self.ring.as_mut()?.pop()
    }
}

impl<B, const H: usize> Drop for Released<'_, B, H> {
    fn drop(&mut self) {
        for _ in self.by_ref() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_ring_wraps_and_evicts_oldest() {
        let mut r: Ring<u8, 3> = Ring::new();
        assert_eq!(r.pop(), None);
        for b in 1..=3 {
            assert_eq!(r.push(b), None);
        }
        assert_eq!(r.push(4), Some(1));
        assert_eq!(r.pop(), Some(2));
        assert_eq!(r.push(5), None);
        assert_eq!(r.len, 3);
        let out: Vec<u8> = Released { ring: Some(&mut r) }.collect();
        assert_eq!(out, vec![3, 4, 5]);
        let mut none: Ring<u8, 0> = Ring::new();
        assert_eq!(none.push(9), Some(9));
        assert_eq!(none.pop(), None);
    }
}
