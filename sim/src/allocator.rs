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

use libmimalloc_sys::{mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned};
use libmimalloc_sys::{mi_zalloc, mi_zalloc_aligned};

/// The alignment every mimalloc block has: block sizes are whole words.
/// (Larger alignments, up to `MI_MAX_ALIGN_SIZE`, hold only for some sizes.)
const NATURAL_ALIGN: usize = std::mem::size_of::<usize>();

#[derive(Debug)]
pub struct Allocator;

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
        if natural(layout.align()) {
            unsafe { mi_malloc(layout.size()) as *mut u8 }
        } else {
            unsafe { mi_malloc_aligned(layout.size(), layout.align()) as *mut u8 }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
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
