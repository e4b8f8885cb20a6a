//! Read-only data a catalog builds at load (its tracks' words, the search index, the
//! posting lists) kept in
//! unnamed temporary files mapped into memory instead of on the heap: the kernel keeps the
//! pages read lately and may drop the others, so a catalog of 100M tracks does not need its
//! text resident. The files are made in `TMPDIR`, which should be on disk, not tmpfs (a
//! tmpfs file is memory). Nothing but this process can open them, since they are unlinked
//! as they are made. The files jobs wrote (a saved search index, a model version's
//! artifact and ANN index) are mapped here too, and a server tells the kernel how it reads
//! them all: at random, a few bytes at a time, with a request's pages asked for together.

use std::io::{BufWriter, Write};
use std::sync::Arc;

/// A temporary file, written once, then mapped.
pub(super) struct Mapped {
    /// `None` for a file of no bytes (which cannot be mapped).
    map: Option<memmap2::Mmap>,
}

impl Mapped {
    /// A new file with what `write` writes, mapped.
    pub(super) fn write(
        write: impl FnOnce(&mut BufWriter<std::fs::File>) -> std::io::Result<()>,
    ) -> std::io::Result<Mapped> {
        let mut out = BufWriter::with_capacity(1 << 20, tempfile::tempfile()?);
        write(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        Mapped::of(&file)
    }

    /// A new file of `len` zero bytes that `fill` writes in place, then mapped read-only:
    /// data built where it will be read (posting lists), with no copy on the heap.
    pub(super) fn fill(len: usize, fill: impl FnOnce(&mut [u8])) -> std::io::Result<Mapped> {
        if len == 0 {
            fill(&mut []);
            return Ok(Mapped { map: None });
        }
        let file = tempfile::tempfile()?;
        file.set_len(len as u64)?;
        // SAFETY: as in `of`: the file is unnamed, so nothing but this mapping writes it,
        // and it is mapped read-only once `fill` is done.
        let mut map = unsafe { memmap2::MmapMut::map_mut(&file)? };
        fill(&mut map);
        Ok(Mapped {
            map: Some(map.make_read_only()?),
        })
    }

    /// No file: no bytes.
    pub(super) fn empty() -> Mapped {
        Mapped { map: None }
    }

    /// Maps the file at `path`: one the catalog job wrote (through a new file renamed into
    /// place) and nothing rewrites, as a model version's files are never rewritten.
    pub(super) fn open(path: &std::path::Path) -> std::io::Result<Mapped> {
        Mapped::of(&std::fs::File::open(path)?)
    }

    /// Maps `file`, which nothing will write to again.
    pub(super) fn of(file: &std::fs::File) -> std::io::Result<Mapped> {
        if file.metadata()?.len() == 0 {
            return Ok(Mapped { map: None });
        }
        // SAFETY: a mapped file must not change while it is mapped. The temporary files are
        // unnamed (`tempfile` unlinks them at once), so no other process can open one, and
        // this code writes each only before mapping it; a saved search index and a model
        // version's ANN index are written once, by the job that makes the catalog or the
        // version, through a new file renamed into place, and never rewritten (`open`).
        let map = unsafe { memmap2::Mmap::map(file)? };
        Ok(Mapped { map: Some(map) })
    }

    pub(super) fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }

    /// Tells the kernel that this file is read at random, a few bytes at a time, from now
    /// on: a page fault then reads its page only. By default a fault reads the 128 KB or so
    /// around the page as well, which for rows spread over a file larger than memory reads
    /// 32 pages for each one used and pushes out pages that are used (1,200 rows of the
    /// 100M-track artifact, cold: 4 s with read-around, 87 ms without). Loads that scan a
    /// file run before this.
    pub(super) fn read_at_random(&self) {
        #[cfg(unix)]
        if let Some(map) = &self.map
            && let Err(e) = map.advise(memmap2::Advice::Random)
        {
            tracing::debug!(error = %e, "madvise(MADV_RANDOM) refused");
        }
    }

    /// Has the kernel read the pages of `ranges` (byte ranges of the file) all at once, in
    /// the background, so that a request that is about to read them waits for the disk
    /// once rather than once a page (those 1,200 rows: 87 ms one fault after another,
    /// 15 ms asked for together). Asking costs about half a microsecond a range even when
    /// the pages are resident, so a few of the ranges, evenly spread, are looked at first,
    /// and when they are all resident (a file that fits memory) nothing is asked.
    pub(super) fn prefetch(&self, ranges: &[std::ops::Range<usize>]) {
        let Some(map) = &self.map else { return };
        let step = ranges.len().div_ceil(RESIDENT_PROBES).max(1);
        if ranges.iter().step_by(step).all(|r| resident(map, r.start)) {
            return;
        }
        #[cfg(unix)]
        for r in ranges {
            let end = r.end.min(map.len());
            if r.start < end {
                let _ = map.advise_range(memmap2::Advice::WillNeed, r.start, end - r.start);
            }
        }
    }
}

/// How many of a prefetch's ranges are looked at to tell whether its pages are resident.
const RESIDENT_PROBES: usize = 4;

/// Whether the page holding byte `at` of `map` is in memory (when it cannot be told:
/// yes, so that nothing is asked for).
#[cfg(unix)]
fn resident(map: &memmap2::Mmap, at: usize) -> bool {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    // SAFETY: sysconf reads a constant of the system; it touches no memory of ours.
    let page = *PAGE.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        size if size > 0 => size as usize,
        _ => 4096,
    });
    if at >= map.len() {
        return true;
    }
    let mut status = 0u8;
    // SAFETY: mincore reads the page table of the one page at the page-aligned address
    // (a mapping starts on a page), which lies inside this mapping since `at` does, and
    // writes one byte, into `status`, for it.
    let failed = unsafe {
        libc::mincore(
            map.as_ptr().add(at - at % page) as *mut libc::c_void,
            1,
            &mut status as *mut u8 as _,
        )
    } != 0;
    failed || status & 1 == 1
}

#[cfg(not(unix))]
fn resident(_map: &memmap2::Mmap, _at: usize) -> bool {
    true
}

/// A part of a mapped file, shared: what `fst::Map` reads its dictionary from.
#[derive(Clone)]
pub(super) struct Region {
    mapped: Arc<Mapped>,
    start: usize,
    end: usize,
}

impl Region {
    pub(super) fn new(mapped: Arc<Mapped>, start: usize, end: usize) -> Region {
        assert!(
            start <= end && end <= mapped.bytes().len(),
            "a region inside the file"
        );
        Region { mapped, start, end }
    }
}

impl AsRef<[u8]> for Region {
    fn as_ref(&self) -> &[u8] {
        &self.mapped.bytes()[self.start..self.end]
    }
}

/// Writes `values` in this machine's byte order (the file is read only by this process).
pub(super) fn write_u32s(out: &mut impl Write, values: &[u32]) -> std::io::Result<()> {
    out.write_all(bytemuck::cast_slice(values))
}

/// Zero bytes up to the next multiple of 4 after `written` bytes, so that the `u32`s that
/// follow are aligned (a mapping starts on a page).
pub(super) fn pad4(out: &mut impl Write, written: usize) -> std::io::Result<usize> {
    let pad = (4 - written % 4) % 4;
    out.write_all(&[0u8; 3][..pad])?;
    Ok(written + pad)
}

/// `bytes` (written by `write_u32s` at an offset `pad4` aligned) as `u32`s.
pub(super) fn as_u32s(bytes: &[u8]) -> &[u32] {
    bytemuck::try_cast_slice(bytes).expect("u32s written aligned, whole")
}

/// `bytes` (a whole file of `u64`s in this machine's byte order) as `u64`s.
pub(super) fn as_u64s(bytes: &[u8]) -> &[u64] {
    bytemuck::try_cast_slice(bytes).expect("u64s written aligned, whole")
}
