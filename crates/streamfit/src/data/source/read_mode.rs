//! How a source reads its local files: through their memory maps, or by explicit reads.
//!
//! A map is the faster path while the page cache holds the data: a unit's pages are mapped
//! where they already are, with no copy. When the data does not fit in the memory the run may
//! use (a cgroup limit counts the page cache), it is the slower one: pages the kernel reads
//! ahead on a fault are evicted before a back-pressured reader reaches them and are read
//! again, and pages behind the readers crowd out the ones ahead of them. [`ReadMode::Read`]
//! reads each unit's bytes (a Parquet row group's used column chunks, a shard unit's blocks)
//! with one `pread` into the reader's own buffer, counted in the memory budget, and drops them
//! from the page cache at once, so every byte is read from storage once per epoch and the
//! page cache the run needs stays within its budget. [`ReadMode::Auto`] chooses per run:
//! reads when the data files are larger than the memory available beside the run's budget,
//! the map otherwise. The rows are the same either way; the mode never changes a batch.

use std::sync::atomic::{AtomicBool, Ordering};

/// How local data files are read (see the module docs). Remote data is always fetched by
/// ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// Explicit reads when the data is larger than the memory left beside the run's budget,
    /// else the memory map.
    #[default]
    Auto,
    /// Always through the memory map.
    Map,
    /// Always by explicit reads, dropping the pages behind the readers.
    Read,
}

impl ReadMode {
    /// The mode's name as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            ReadMode::Auto => "auto",
            ReadMode::Map => "map",
            ReadMode::Read => "read",
        }
    }

    /// Whether a run reads explicitly: `data_bytes` of data files, `room` bytes of memory
    /// left beside the run's budget (`None` when unknown: the map).
    pub fn reads_explicitly(self, data_bytes: u64, room: Option<u64>) -> bool {
        match self {
            ReadMode::Map => false,
            ReadMode::Read => true,
            ReadMode::Auto => room.is_some_and(|room| data_bytes > room),
        }
    }
}

impl std::str::FromStr for ReadMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(ReadMode::Auto),
            "map" => Ok(ReadMode::Map),
            "read" => Ok(ReadMode::Read),
            other => Err(format!("«{other}» is not auto, map or read")),
        }
    }
}

/// A source's current choice: explicit reads or the map (the map until told otherwise).
#[derive(Debug, Default)]
pub(crate) struct Access(AtomicBool);

impl Access {
    /// Sets explicit reads on or off (between passes; a pass reads with one mode).
    pub(crate) fn set(&self, explicit: bool) {
        self.0.store(explicit, Ordering::Relaxed);
    }

    /// True when units are read explicitly.
    pub(crate) fn explicit(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_reads_only_data_larger_than_the_room_left() {
        assert!(ReadMode::Auto.reads_explicitly(2_000, Some(1_000)));
        assert!(!ReadMode::Auto.reads_explicitly(1_000, Some(1_000)));
        assert!(!ReadMode::Auto.reads_explicitly(2_000, None));
        assert!(ReadMode::Read.reads_explicitly(1, None));
        assert!(!ReadMode::Map.reads_explicitly(u64::MAX, Some(0)));
        assert_eq!("read".parse::<ReadMode>(), Ok(ReadMode::Read));
        assert!("mmap".parse::<ReadMode>().is_err());
    }
}
