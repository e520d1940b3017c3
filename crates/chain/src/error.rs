use std::path::PathBuf;

/// Where a piece of input came from: shown in every error so a person can find the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    /// Byte offset in the (decompressed) file, or the line number for text formats.
    pub offset: u64,
    pub kind: OriginKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginKind {
    Byte,
    Line,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            OriginKind::Byte => write!(f, "{} at byte offset {}", self.file.display(), self.offset),
            OriginKind::Line => write!(f, "{} line {}", self.file.display(), self.offset),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {msg}")]
    Format { origin: Origin, msg: String },
    #[error("{origin}: block {hash} fails its merkle check: header says {header}, transactions give {computed}; the block is refused")]
    Merkle {
        origin: Origin,
        hash: String,
        header: String,
        computed: String,
    },
    #[error("{origin}: block {hash} has a witness commitment that does not match its transactions; the block is refused")]
    Witness { origin: Origin, hash: String },
    #[error("{0}")]
    Other(String),
}

impl ChainError {
    pub fn format(origin: Origin, msg: impl Into<String>) -> ChainError {
        ChainError::Format {
            origin,
            msg: msg.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, ChainError>;
