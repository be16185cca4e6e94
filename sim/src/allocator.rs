//! The global allocator: mimalloc, entered through its plain `mi_malloc`
//! for the usual alignments.
//!
//! Replay allocates many small, short-lived strings per event on several
//! threads; mimalloc's thread-local free lists make that markedly cheaper
//! than glibc malloc (see the README's performance section). The `mimalloc`
//! crate's allocator calls `mi_malloc_aligned` for every request, whose
//! alignment checks cost about a fifth of each small allocation; this one
//! asks for alignment only beyond the word alignment every mimalloc block
//! has (strings and most vectors need one byte or one word).

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};

use libmimalloc_sys::{mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned};
use libmimalloc_sys::{mi_zalloc, mi_zalloc_aligned};

/// The alignment every mimalloc block has: block sizes are whole words.
/// (Larger alignments, up to `MI_MAX_ALIGN_SIZE`, hold only for some sizes.)
const NATURAL_ALIGN: usize = std::mem::size_of::<usize>();

#[derive(Debug)]
pub struct Allocator;

/// `mi_option_arena_eager_commit` in mimalloc v3's `mi_option_e`
/// (`libmimalloc-sys` names no constant for it).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Set once mimalloc's options are.
static CONFIGURED: AtomicBool = AtomicBool::new(false);

/// Set mimalloc's options, before its first allocation reserves memory
/// (the runtime allocates before `main`, so the first allocation does it).
///
/// Its arenas are not committed eagerly: by default (on Linux) they are, and
/// then replay's peak RSS grew ~8 MB per worker thread against ~1 MB of live
/// heap (two threads: 45 → 17 MB on 200k generated events; sixteen: 172 →
/// 37 MB), and it ran slower, on this VM where new memory is dear: one thread
/// 3.06–2.79× → 3.29–3.39× the Python loop, two 5.06–5.43× → 5.73–5.83×
/// (two 9-invocation `bench --python` A/Bs on the parity corpus).
#[cold]
fn configure() {
    // SAFETY: setting an option is a plain store into mimalloc's option
    // table; before any allocation, no other thread reads it.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
    }
    CONFIGURED.store(true, Ordering::Relaxed);
}

/// [`configure`] unless done: the first thing of every allocating call.
#[inline(always)]
fn configured() {
    if !CONFIGURED.load(Ordering::Relaxed) {
        configure();
    }
}

/// Whether a plain (unaligned) request satisfies `align`.
#[inline(always)]
fn natural(align: usize) -> bool {
    align <= NATURAL_ALIGN
}

// SAFETY (every `unsafe` below): each call forwards the caller's request to
// mimalloc unchanged except for dropping an alignment that `natural` shows
// mimalloc provides anyway; `dealloc`/`realloc` only ever receive pointers
// this allocator returned, all of which `mi_free`/`mi_realloc` accept.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        configured();
        if natural(layout.align()) {
            unsafe { mi_malloc(layout.size()) as *mut u8 }
        } else {
            unsafe { mi_malloc_aligned(layout.size(), layout.align()) as *mut u8 }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        configured();
        if natural(layout.align()) {
            unsafe { mi_zalloc(layout.size()) as *mut u8 }
        } else {
            unsafe { mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8 }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        unsafe { mi_free(ptr as *mut c_void) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if natural(layout.align()) {
            unsafe { mi_realloc(ptr as *mut c_void, new_size) as *mut u8 }
        } else {
            unsafe { mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8 }
        }
    }
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;

    /// The option index is mimalloc v3's (a major version that renumbers
    /// its options must be looked at again), and it is set by the time the
    /// program has allocated.
    #[test]
    fn arenas_are_not_committed_eagerly() {
        drop(std::hint::black_box(vec![1u8; 64]));
        // SAFETY: plain reads of mimalloc's version and option table.
        unsafe {
            assert_eq!(libmimalloc_sys::mi_version() / 10000, 3);
            assert_eq!(
                libmimalloc_sys::mi_option_get(MI_OPTION_ARENA_EAGER_COMMIT),
                0
            );
        }
    }

    /// Every size and alignment gets a block aligned as asked, zeroed when
    /// asked, and keeps its bytes through growing and shrinking.
    #[test]
    fn blocks_are_aligned_and_keep_their_bytes() {
        let a = Allocator;
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in (1..=80).chain([255, 256, 4097, 1 << 20]) {
                let layout = Layout::from_size_align(size, align).expect("a valid layout");
                // SAFETY: a non-zero size; the block is freed with the
                // layout it was allocated with (or grown to).
                unsafe {
                    let zeroed = a.alloc_zeroed(layout);
                    assert!(!zeroed.is_null());
                    assert_eq!(zeroed as usize % align, 0, "{size} bytes at {align}");
                    assert!(std::slice::from_raw_parts(zeroed, size)
                        .iter()
                        .all(|&b| b == 0));
                    a.dealloc(zeroed, layout);

                    let p = a.alloc(layout);
                    assert_eq!(p as usize % align, 0, "{size} bytes at {align}");
                    for i in 0..size {
                        *p.add(i) = i as u8;
                    }
                    let grown = a.realloc(p, layout, size * 3);
                    assert_eq!(grown as usize % align, 0);
                    for i in 0..size {
                        assert_eq!(*grown.add(i), i as u8);
                    }
                    let bigger = Layout::from_size_align(size * 3, align).expect("valid");
                    let shrunk = a.realloc(grown, bigger, size.div_ceil(2));
                    assert_eq!(shrunk as usize % align, 0);
                    for i in 0..size.div_ceil(2) {
                        assert_eq!(*shrunk.add(i), i as u8);
                    }
                    let smaller = Layout::from_size_align(size.div_ceil(2), align).expect("valid");
                    a.dealloc(shrunk, smaller);
                }
            }
        }
    }
}
