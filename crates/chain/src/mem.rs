//! Memory hints for the layers that read big arrays at random (the index's maps and
//! columns, the clustering's union-find).

/// Ask the memory system for the cache line holding `p` without waiting for it. Random
/// reads into arrays far larger than the cache that do not depend on each other (one
/// block's map probes, the addresses of the next transactions) overlap their misses when
/// issued together, instead of paying them one after another.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
