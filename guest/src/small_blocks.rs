//! [`SmallBlocks`], the built-in guest's global allocator: free lists of small blocks by size
//! class in front of the system allocator (wasi-libc's dlmalloc).
//!
//! An engine operation makes many short-lived small allocations — SQL parameters, the rows the
//! host returns (the host allocates every returned string and list through the guest's
//! `cabi_realloc`) and the strings in them — and frees them before it returns. Served from a
//! free list, each takes a handful of instructions instead of a trip through dlmalloc's bins and
//! coalescing; under callgrind this saved about 7 % of the instructions of a claim on the host's
//! writer thread.
//!
//! Blocks of up to [`MAX_SMALL`] bytes with an alignment of at most [`GRANULE`] belong to one
//! of [`CLASSES`] size classes (multiples of [`GRANULE`]). A class's free list is a singly
//! linked list threaded through the free blocks themselves; when it is empty, a block is carved
//! from the current chunk ([`CHUNK`] bytes from the system allocator; a chunk's unused tail is
//! abandoned when a block no longer fits). Freed small blocks go back to their class and are
//! never handed back to the system allocator, so an instance keeps the peak of its small
//! blocks — still within the memory limit the host sets on the instance. Larger or
//! over-aligned blocks go straight to the system allocator. When the system allocator has no
//! memory left, allocation fails as before (null, which Rust turns into a trap).
//!
//! A custom guest built on this crate can install it the same way:
//! `#[global_allocator] static ALLOCATOR: SmallBlocks = SmallBlocks::new();`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// The size-class granularity and the largest alignment served from the free lists.
pub const GRANULE: usize = 16;
/// The largest block served from the free lists.
pub const MAX_SMALL: usize = 512;
/// The number of size classes: `GRANULE`, `2 × GRANULE`, … `MAX_SMALL` bytes.
pub const CLASSES: usize = MAX_SMALL / GRANULE;
/// What a class's list is refilled from, taken from the system allocator at a time.
pub const CHUNK: usize = 64 * 1024;

/// A global allocator for single-threaded WebAssembly guests (see the module docs).
pub struct SmallBlocks(UnsafeCell<State>);

struct State {
    /// The head of each class's free list (null: empty); a free block's first word holds the
    /// next block.
    free: [*mut u8; CLASSES],
    /// The unused part of the current chunk.
    chunk_next: usize,
    chunk_end: usize,
}

// SAFETY: WebAssembly without the atomics feature has a single thread: the state is never
// touched concurrently. Elsewhere the allocator is not `Sync`, so it cannot be installed as a
// global allocator (the unit tests use local instances).
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
unsafe impl Sync for SmallBlocks {}

impl SmallBlocks {
    /// An allocator with empty free lists.
    pub const fn new() -> Self {
        Self(UnsafeCell::new(State {
            free: [ptr::null_mut(); CLASSES],
            chunk_next: 0,
            chunk_end: 0,
        }))
    }
}

impl Default for SmallBlocks {
    fn default() -> Self {
        Self::new()
    }
}

/// The size class serving `layout`, if it is small.
fn class_of(layout: Layout) -> Option<usize> {
    (layout.size() <= MAX_SMALL && layout.align() <= GRANULE)
        .then(|| layout.size().max(1).div_ceil(GRANULE) - 1)
}

/// The block size of `class`.
fn block_size(class: usize) -> usize {
    (class + 1) * GRANULE
}

impl State {
    /// A block of `class`: the head of its free list, else carved from the chunk.
    fn take(&mut self, class: usize) -> *mut u8 {
        let head = self.free[class];
        if !head.is_null() {
            // SAFETY: `head` is a free block of this class; its first word is the next one.
            self.free[class] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        let size = block_size(class);
        if self.chunk_end - self.chunk_next < size {
            // SAFETY: the layout has a non-zero size and a power-of-two alignment.
            let chunk = unsafe { System.alloc(Layout::from_size_align_unchecked(CHUNK, GRANULE)) };
            if chunk.is_null() {
                return ptr::null_mut();
            }
            self.chunk_next = chunk as usize;
            self.chunk_end = chunk as usize + CHUNK;
        }
        let block = self.chunk_next as *mut u8;
        self.chunk_next += size;
        block
    }

    /// Put `block` back on the free list of `class`.
    fn give_back(&mut self, block: *mut u8, class: usize) {
        // SAFETY: `block` is a block of this class no longer in use, at least a word long and
        // aligned to `GRANULE`.
        unsafe { block.cast::<*mut u8>().write(self.free[class]) };
        self.free[class] = block;
    }
}

// SAFETY: small blocks are `GRANULE`-aligned (chunks are, and block sizes are multiples of
// `GRANULE`), at least `layout.size()` bytes long, and handed out once until given back; the
// rest is the system allocator's.
unsafe impl GlobalAlloc for SmallBlocks {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            // SAFETY: single-threaded (see `Sync`); no other reference to the state is live.
            Some(class) => unsafe { (*self.0.get()).take(class) },
            // SAFETY: forwarded with the caller's guarantees.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class_of(layout) {
            // SAFETY: as in `alloc`; `block` came from `alloc` with this layout.
            Some(class) => unsafe { (*self.0.get()).give_back(block, class) },
            // SAFETY: forwarded with the caller's guarantees.
            None => unsafe { System.dealloc(block, layout) },
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` is valid with `layout`'s alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new_layout)) {
            // The block already has room.
            (Some(old), Some(new)) if old == new => block,
            // SAFETY: forwarded with the caller's guarantees.
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            _ => {
                // SAFETY: as in `alloc` and `dealloc`; the copy stays within both blocks.
                unsafe {
                    let moved = self.alloc(new_layout);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                    moved
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).expect("a valid layout")
    }

    #[test]
    fn small_blocks_are_reused_by_class_and_large_ones_are_not_kept() {
        let allocator = SmallBlocks::new();
        unsafe {
            let a = allocator.alloc(layout(24, 8));
            let b = allocator.alloc(layout(32, 8));
            assert_eq!(a as usize % GRANULE, 0);
            assert_eq!(b as usize - a as usize, 32, "carved one after the other");
            allocator.dealloc(a, layout(24, 8));
            // Same class (17..=32 bytes): the freed block comes back.
            assert_eq!(allocator.alloc(layout(30, 4)), a);
            // Another class: a new block.
            let c = allocator.alloc(layout(8, 8));
            assert_ne!(c, a);
            assert_ne!(c, b);
            let big = allocator.alloc(layout(MAX_SMALL + 1, 8));
            assert!(!big.is_null());
            allocator.dealloc(big, layout(MAX_SMALL + 1, 8));
            let aligned = allocator.alloc(layout(64, 64));
            assert_eq!(
                aligned as usize % 64,
                0,
                "over-aligned blocks come from the system"
            );
            allocator.dealloc(aligned, layout(64, 64));
        }
    }

    #[test]
    fn realloc_keeps_the_contents_across_classes_and_sizes() {
        let allocator = SmallBlocks::new();
        unsafe {
            let mut block = allocator.alloc(layout(10, 1));
            for i in 0..10 {
                block.add(i).write(i as u8);
            }
            // Same class: the same block.
            assert_eq!(allocator.realloc(block, layout(10, 1), 16), block);
            let mut size = 16;
            for new_size in [100, 600, 5_000, 40] {
                block = allocator.realloc(block, layout(size, 1), new_size);
                assert!(!block.is_null());
                let kept: Vec<u8> = (0..10).map(|i| block.add(i).read()).collect();
                assert_eq!(
                    kept,
                    (0..10).collect::<Vec<u8>>(),
                    "after growing to {new_size}"
                );
                size = new_size;
            }
            allocator.dealloc(block, layout(size, 1));
        }
    }

    #[test]
    fn a_chunk_is_used_up_before_the_next_is_taken() {
        let allocator = SmallBlocks::new();
        unsafe {
            let first = allocator.alloc(layout(MAX_SMALL, 8));
            let per_chunk = CHUNK / MAX_SMALL;
            let mut last = first;
            for _ in 1..per_chunk {
                last = allocator.alloc(layout(MAX_SMALL, 8));
            }
            assert_eq!(last as usize - first as usize, (per_chunk - 1) * MAX_SMALL);
            let next = allocator.alloc(layout(MAX_SMALL, 8));
            assert!(!next.is_null());
            assert!(
                (next as usize) < first as usize || next as usize >= first as usize + CHUNK,
                "a new chunk"
            );
        }
    }
}
