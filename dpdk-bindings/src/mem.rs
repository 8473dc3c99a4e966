//! Transparent huge pages for large heap regions that live as long as the process (the
//! connection tables).
//!
//! A table of a million connections spans ~130 MiB; on 4 KiB pages nearly every lookup is a TLB
//! miss. [`advise_huge_pages`] marks the 2 MiB-aligned interior of a region `MADV_HUGEPAGE` (so
//! THP in `madvise` mode backs it, and khugepaged keeps it so) and then asks for
//! `MADV_COLLAPSE` (Linux 6.1+, independent of the THP sysfs settings), which replaces the
//! already-faulted 4 KiB pages with huge pages synchronously, in the calling thread (call it
//! from the thread that uses the memory, so the pages come from its NUMA node). Neither advice
//! changes the memory's contents. A kernel without THP or without `MADV_COLLAPSE` is not an
//! error: the outcome says what happened. A collapse that fails part-way (`EAGAIN`, `ENOMEM`)
//! may have collapsed some huge pages; `anon_huge_bytes` tells.

use std::io;

/// Starts loading the cache line that holds `*r` into the L2 cache and below (`rte_prefetch1`,
/// x86 `PREFETCHT1`), without waiting for it. Elsewhere than on x86_64 it does nothing.
///
/// Chosen by measurement, not by a known mechanism (this VM has no cache counters): against
/// `PREFETCHT0`, in interleaved A/B rounds of a burst of 64 frames prefetching up to 256 index
/// and entry lines (BENCHMARKS.md, step 16), +4 to +6 % at 64k flows on huge pages, +3 to +5 %
/// at 1M on small pages, flat elsewhere.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT1 is a hint: it reads nothing architecturally and cannot fault on any
    // address, valid or not (so `p` need not point into anything), and SSE is part of the
    // x86_64 baseline.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        _mm_prefetch::<_MM_HINT_T1>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The size of an x86_64 / arm64 (4 KiB granule) transparent huge page.
pub const HUGE_PAGE: usize = 2 << 20;

/// What [`advise_huge_pages`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HugeOutcome {
    /// The interior is backed by huge pages now.
    Collapsed,
    /// Marked for huge pages (faults and khugepaged will use them), but this kernel has no
    /// `MADV_COLLAPSE`, so pages already present stay small until khugepaged gets to them.
    Advised,
    /// The kernel has no transparent huge pages (or THP is `never`): nothing changed.
    Unsupported,
    /// The region holds no whole 2 MiB-aligned huge page: nothing to do.
    TooSmall,
}

/// The result of [`advise_huge_pages`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HugeAdvice {
    /// Bytes of the region's 2 MiB-aligned interior the advice applied to.
    pub bytes: usize,
    /// What happened to them.
    pub outcome: HugeOutcome,
}

/// The 2 MiB-aligned interior `(address, bytes)` of `region` (`(address, bytes)`), if any.
pub fn huge_interior(region: (usize, usize)) -> Option<(usize, usize)> {
    let (addr, len) = region;
    let end = addr.checked_add(len)?;
    let start = addr.checked_next_multiple_of(HUGE_PAGE)?;
    let end = end - end % HUGE_PAGE;
    (end > start).then(|| (start, end - start))
}

fn madvise(start: usize, len: usize, advice: libc::c_int) -> io::Result<()> {
    // SAFETY: MADV_HUGEPAGE and MADV_COLLAPSE (the only advices passed here) never change the
    // contents, protection or lifetime of a mapping, whatever the range; an unmapped range fails
    // with ENOMEM. `start` is page-aligned (a multiple of 2 MiB).
    let r = unsafe { libc::madvise(start as *mut libc::c_void, len, advice) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Backs the 2 MiB-aligned interior of `region` (`(address, bytes)` of anonymous memory, e.g. a
/// `Box<[T]>`) with transparent huge pages: `MADV_HUGEPAGE`, then `MADV_COLLAPSE`.
///
/// Errors are the kernel's for anything but "not supported" (`EINVAL`), e.g. `ENOMEM` for a
/// range that is not mapped or `EAGAIN` when no huge page could be allocated.
pub fn advise_huge_pages(region: (usize, usize)) -> io::Result<HugeAdvice> {
    let Some((start, bytes)) = huge_interior(region) else {
        return Ok(HugeAdvice {
            bytes: 0,
            outcome: HugeOutcome::TooSmall,
        });
    };
    let unsupported = |e: &io::Error| e.raw_os_error() == Some(libc::EINVAL);
    match madvise(start, bytes, libc::MADV_HUGEPAGE) {
        Ok(()) => {}
        Err(e) if unsupported(&e) => {
            return Ok(HugeAdvice {
                bytes,
                outcome: HugeOutcome::Unsupported,
            })
        }
        Err(e) => return Err(e),
    }
    let outcome = match madvise(start, bytes, libc::MADV_COLLAPSE) {
        Ok(()) => HugeOutcome::Collapsed,
        Err(e) if unsupported(&e) => HugeOutcome::Advised,
        Err(e) => return Err(e),
    };
    Ok(HugeAdvice { bytes, outcome })
}

/// Anonymous memory of this process backed by transparent huge pages, in bytes
/// (`AnonHugePages` of `/proc/self/smaps_rollup`).
pub fn anon_huge_bytes() -> io::Result<u64> {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup")?;
    smaps_field_kib(&text, "AnonHugePages")
        .map(|kib| kib * 1024)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no AnonHugePages line"))
}

/// The value of a `Name:   123 kB` line of an smaps file.
fn smaps_field_kib(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const M2: usize = HUGE_PAGE;

    #[test]
    fn test_huge_interior() {
        assert_eq!(huge_interior((0, 0)), None);
        assert_eq!(huge_interior((M2, M2)), Some((M2, M2)));
        assert_eq!(huge_interior((M2 + 16, M2)), None);
        assert_eq!(huge_interior((M2 + 16, 2 * M2)), Some((2 * M2, M2)));
        assert_eq!(huge_interior((M2 + 16, 3 * M2)), Some((2 * M2, 2 * M2)));
        assert_eq!(huge_interior((M2 - 4096, 5 * M2)), Some((M2, 4 * M2)));
        assert_eq!(huge_interior((usize::MAX - 8, 16)), None);
    }

    #[test]
    fn test_smaps_field() {
        let text = "55d0-7ffd ---p 00000000 00:00 0 [rollup]\nRss:      123456 kB\n\
                    AnonHugePages:      4096 kB\nShmemPmdMapped:        0 kB\n";
        assert_eq!(smaps_field_kib(text, "AnonHugePages"), Some(4096));
        assert_eq!(smaps_field_kib(text, "Rss"), Some(123456));
        assert_eq!(smaps_field_kib(text, "Anon"), None);
        assert!(anon_huge_bytes().is_ok());
    }

    #[test]
    fn test_too_small_region_is_a_no_op() {
        let v = vec![1u8; 4096];
        let a = advise_huge_pages((v.as_ptr() as usize, v.len())).unwrap();
        assert_eq!(
            a,
            HugeAdvice {
                bytes: 0,
                outcome: HugeOutcome::TooSmall
            }
        );
    }

    /// `AnonHugePages` of the mapping that starts at `start`, from /proc/self/smaps.
    fn mapping_huge_bytes(start: usize) -> u64 {
        let text = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let head = format!("{start:x}-");
        let at = text
            .lines()
            .position(|l| l.starts_with(&head))
            .expect("mapping in smaps");
        let rest: Vec<&str> = text.lines().skip(at + 1).take(30).collect();
        smaps_field_kib(&rest.join("\n"), "AnonHugePages").unwrap() * 1024
    }

    #[test]
    fn test_collapse_a_faulted_anonymous_region() {
        let len = 6 * M2;
        // SAFETY: a fresh private anonymous mapping; checked for MAP_FAILED below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        // SAFETY: the mapping is ours, len bytes, readable and writable.
        let bytes = unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), len) };
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        let (start, inner) = huge_interior((p as usize, len)).unwrap();
        assert!(inner >= 4 * M2);
        let a = advise_huge_pages((p as usize, len)).unwrap();
        assert_eq!(a.bytes, inner);
        match a.outcome {
            // MADV_HUGEPAGE split the mapping: the interior is its own VMA now.
            HugeOutcome::Collapsed => assert_eq!(mapping_huge_bytes(start), inner as u64),
            HugeOutcome::Advised | HugeOutcome::Unsupported => {
                eprintln!("huge pages: {:?} on this kernel", a.outcome)
            }
            HugeOutcome::TooSmall => panic!("6 MiB holds a huge page"),
        }
        // The contents are untouched.
        assert!(bytes.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        // SAFETY: unmapping our own mapping; `bytes` is not used afterwards.
        assert_eq!(unsafe { libc::munmap(p, len) }, 0);
    }
}
