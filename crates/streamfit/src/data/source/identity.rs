//! The identity of a data file, as a checkpoint records it: its path, its size, and a CRC32C
//! of its last 64 KiB (a Parquet file's footer, or a shard's checksum table), plus the ETag
//! of a remote object, so a resume on changed data is refused.
//!
//! Reading the tail is the only file access here; comparing identities is the checkpoint's
//! job. The field names are part of the checkpoint's JSON and must not change.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Bytes at the end of each data file covered by its identity checksum.
pub const TAIL_BYTES: u64 = 64 << 10;

/// One data file as a checkpoint remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    /// Path as opened.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// CRC32C of the last [`TAIL_BYTES`] (the whole file when it is shorter).
    pub tail_crc32c: u32,
    /// The ETag of a remote object (absent for local files, and in checkpoints written
    /// before remote data existed, which therefore compare equal for local files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl FileIdentity {
    /// Reads the identity of the file at `path`: its size, then its tail.
    pub fn of(path: &Path) -> Result<FileIdentity> {
        let io = |e| Error::io(path, e);
        let mut file = File::open(path).map_err(io)?;
        let bytes = file.metadata().map_err(io)?.len();
        let start = bytes.saturating_sub(TAIL_BYTES);
        let mut tail = Vec::with_capacity((bytes - start) as usize);
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        file.read_to_end(&mut tail).map_err(io)?;
        Ok(FileIdentity {
            path: path.to_path_buf(),
            bytes,
            tail_crc32c: crc32c::crc32c(&tail),
            etag: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_covers_the_last_64_kib_or_the_whole_of_a_short_file() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let long = dir.path().join("long.bin");
        std::fs::write(&long, &data).unwrap();
        let id = FileIdentity::of(&long).unwrap();
        assert_eq!(id.path, long);
        assert_eq!(id.bytes, 100_000);
        assert_eq!(id.tail_crc32c, crc32c::crc32c(&data[100_000 - 65_536..]));
        let short = dir.path().join("short.bin");
        std::fs::write(&short, &data[..1_000]).unwrap();
        let id = FileIdentity::of(&short).unwrap();
        assert_eq!(id.bytes, 1_000);
        assert_eq!(id.tail_crc32c, crc32c::crc32c(&data[..1_000]));
    }

    #[test]
    fn identity_json_keeps_the_checkpoint_field_names() {
        let id = FileIdentity {
            path: PathBuf::from("a.parquet"),
            bytes: 12,
            tail_crc32c: 7,
            etag: None,
        };
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, r#"{"path":"a.parquet","bytes":12,"tail_crc32c":7}"#);
        let back: FileIdentity = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let err = FileIdentity::of(Path::new("/nonexistent/x.parquet")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.parquet"), "{err}");
    }
}
