use thiserror::Error;

#[derive(Debug, Error)]
pub enum TagError {
    /// A validation error; `line` is 0 when the position is not known.
    #[error("{file}:{line}: field '{field}': {msg}")]
    Field {
        file: String,
        line: usize,
        field: String,
        msg: String,
    },
    #[error("{file}: {msg}")]
    Parse { file: String, msg: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("label store: {0}")]
    Store(String),
}

impl TagError {
    pub fn field(file: &str, line: usize, field: &str, msg: impl Into<String>) -> Self {
        TagError::Field {
            file: file.into(),
            line,
            field: field.into(),
            msg: msg.into(),
        }
    }
}

macro_rules! store_err {
    ($($t:ty),*) => {$(
        impl From<$t> for TagError {
            fn from(e: $t) -> Self { TagError::Store(e.to_string()) }
        }
    )*};
}
store_err!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    serde_json::Error
);
