//! Arrays that start as a private (copy-on-write) map of a saved file and become owned
//! vectors only when they must grow. Opening a clustering to answer one query then reads
//! the few pages the query touches: copying the 48 bytes per address into vectors took
//! 3.8 s for the 22M addresses of the 10M-transaction chain.

use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

// Saved arrays are the in-memory bytes: the files are little-endian only where memory is.
#[cfg(target_endian = "big")]
compile_error!("saved clusterings are mapped as they are in memory: little-endian only");

pub enum Arr<T> {
    Owned(Vec<T>),
    Mapped {
        map: memmap2::MmapMut,
        _t: PhantomData<T>,
    },
}

impl<T> Default for Arr<T> {
    fn default() -> Self {
        Arr::Owned(Vec::new())
    }
}

impl<T: FromBytes + IntoBytes + Immutable + KnownLayout + Copy> Arr<T> {
    /// `len` elements of `file` from byte `offset` (a multiple of the page size).
    pub fn map(file: &File, offset: u64, len: usize) -> io::Result<Arr<T>> {
        if len == 0 {
            return Ok(Arr::default());
        }
        // SAFETY: a private map: this process's writes go to its own copies of the pages,
        // and the file is replaced only by renaming a new one over it, never changed in
        // place, so what is mapped stays as it was when checked below.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(offset)
                .len(len * std::mem::size_of::<T>())
                .map_copy(file)?
        };
        if <[T]>::ref_from_bytes(&map[..]).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a mapped array is misaligned or cut short",
            ));
        }
        Ok(Arr::Mapped {
            map,
            _t: PhantomData,
        })
    }

    /// Make the array owned with room for `cap` elements, copying mapped elements once
    /// into the new vector.
    pub fn own_with_capacity(&mut self, cap: usize) {
        match self {
            Arr::Owned(v) => v.reserve_exact(cap.saturating_sub(v.len())),
            Arr::Mapped { .. } => {
                let mut v = Vec::with_capacity(cap.max(self.len()));
                v.extend_from_slice(self);
                *self = Arr::Owned(v);
            }
        }
    }

    /// The owned vector, copying the mapped elements first if need be (to grow).
    pub fn vec(&mut self) -> &mut Vec<T> {
        if let Arr::Mapped { .. } = self {
            *self = Arr::Owned(self.deref().to_vec());
        }
        match self {
            Arr::Owned(v) => v,
            Arr::Mapped { .. } => unreachable!("made owned above"),
        }
    }
}

impl<T: FromBytes + IntoBytes + Immutable + KnownLayout> Deref for Arr<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        match self {
            Arr::Owned(v) => v,
            Arr::Mapped { map, .. } => {
                <[T]>::ref_from_bytes(&map[..]).expect("checked when mapped")
            }
        }
    }
}

impl<T: FromBytes + IntoBytes + Immutable + KnownLayout> DerefMut for Arr<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            Arr::Owned(v) => v,
            Arr::Mapped { map, .. } => {
                <[T]>::mut_from_bytes(&mut map[..]).expect("checked when mapped")
            }
        }
    }
}

impl<T: FromBytes + IntoBytes + Immutable + KnownLayout + PartialEq> PartialEq for Arr<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: FromBytes + IntoBytes + Immutable + KnownLayout + std::fmt::Debug> std::fmt::Debug
    for Arr<T>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
