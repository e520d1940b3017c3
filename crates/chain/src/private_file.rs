//! Stores that hold secrets or case work (API key hashes, webhook secrets, labels, cases)
//! are created readable by their owner only: a data directory is often on a shared
//! analysis machine, and the default umask would make them world-readable.

use std::path::Path;

/// Owner read and write, nothing for group and others.
pub const PRIVATE_MODE: u32 = 0o600;

/// Create `path` as an empty file of mode 0600 if it does not exist, so the store that
/// opens it next never creates it with the umask's mode. An existing file is left as it is
/// (its owner may have chosen its mode; a read-only mount must still open).
pub fn create_private(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(PRIVATE_MODE);
    }
    match o.open(path) {
        Ok(_) => Ok(()),
        // Another process created it between the check and the open.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
