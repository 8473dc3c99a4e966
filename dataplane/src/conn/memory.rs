//! How much memory a table takes, and where: its size per connection, its regions (which the
//! daemon backs with huge pages) and the order in which the slab's entries are handed out, so
//! that the entries huge pages back are used first.

use super::entry::Entry;
use super::table::ConnTable;

/// The size of a transparent huge page on x86_64 and arm64 (4 KiB granule).
const HUGE_PAGE: usize = 2 << 20;

impl ConnTable {
    /// Bytes per entry including its share of the index: 112 + 16 = 128 when the capacity is a
    /// multiple of 4.
    pub fn bytes_per_conn(&self) -> usize {
        std::mem::size_of::<Entry>() + self.index.memory_bytes() / self.capacity()
    }

    /// All bytes held: slab, index, wheel, load counts and slot bindings.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slab)
            + self.index.memory_bytes()
            + self.wheel.memory_bytes()
            + std::mem::size_of_val(&*self.loads)
            + std::mem::size_of_val(&*self.bindings)
    }

    /// The slab's and the index's memory as `(address, bytes)`, e.g. to back them with huge pages.
    pub fn memory_regions(&self) -> [(usize, usize); 2] {
        [
            (
                self.slab.as_ptr() as usize,
                std::mem::size_of_val(&*self.slab),
            ),
            self.index.region(),
        ]
    }
}

/// The first entry of `slab` that starts in its first whole 2 MiB-aligned page, or 0 when it
/// has none. Entries below it share their pages with other allocations, so huge pages do not
/// back them (see `src/hugepages.rs` in the daemon).
pub(super) fn huge_aligned_start(slab: &[Entry]) -> usize {
    let size = std::mem::size_of::<Entry>();
    let start = slab.as_ptr() as usize;
    let Some(aligned) = start.checked_next_multiple_of(HUGE_PAGE) else {
        return 0;
    };
    let first = (aligned - start).div_ceil(size);
    if (first + HUGE_PAGE / size) < slab.len() {
        first
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::bind::SlotBinding;
    use crate::conn::testutil::{new_conn, table};
    use crate::conn::{ConnId, InsertError};
    use crate::model::FwdMode;
    use crate::sched::DestLoad;

    #[test]
    fn test_huge_page_aligned_entries_are_handed_out_first() {
        // 40,000 entries span 4.3 MiB, so the slab holds a whole aligned huge page.
        let cap = 40_000;
        let mut t = table(cap);
        let slab = t.memory_regions()[0].0;
        let aligned = slab.next_multiple_of(HUGE_PAGE);
        let size = std::mem::size_of::<Entry>();
        let ids: Vec<ConnId> = (0..cap)
            .map(|i| t.insert(new_conn(i as u16, FwdMode::Dr, 1), 0).unwrap())
            .collect();
        let at = |id: ConnId| std::ptr::from_ref(t.get(id).unwrap()) as usize;
        // The first entry handed out is the first that starts in the aligned page; the head
        // before it comes last; every entry is handed out once.
        assert!((aligned..aligned + size).contains(&at(ids[0])), "{slab:#x}");
        let first = (aligned - slab).div_ceil(size);
        assert_eq!(ids[0].slot() as usize, first);
        if first > 0 {
            assert_eq!(ids[cap as usize - 1].slot() as usize, first - 1);
        }
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), cap as usize);
        let full = t.insert(new_conn(50_000, FwdMode::Dr, 1), 0);
        assert_eq!(full, Err(InsertError::Full));
        // A table too small for a whole huge page starts at its first entry.
        let mut small = table(1024);
        assert_eq!(
            small.insert(new_conn(0, FwdMode::Dr, 1), 0).unwrap().slot(),
            0
        );
    }

    #[test]
    fn test_bytes_per_conn() {
        let t = table(1024);
        assert_eq!(std::mem::size_of::<Entry>(), 112);
        // 1024 entries share 256 buckets of 64 bytes: 16 bytes each.
        assert_eq!(t.bytes_per_conn(), 128);
        assert!(t.bytes_per_conn() <= 128);
        assert_eq!(
            t.memory_bytes(),
            1024 * 112
                + 256 * 64
                + 4096 * 4
                + 4 * (std::mem::size_of::<DestLoad>() + std::mem::size_of::<SlotBinding>())
        );
        assert_eq!(std::mem::size_of::<SlotBinding>(), 20);
        assert_eq!(t.capacity(), 1024);
    }
}
