//! A flat Parquet table: typed columns (64-bit integers, booleans, UTF-8 strings, each
//! required or optional), written in row groups through parquet's column writer, and read
//! back row by row for checks. Every table of the dataset (`tables.rs`) is one of these.

use crate::ExportError;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use parquet::schema::parser::parse_message_type;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Int64,
    Bool,
    Str,
}

/// One column of a table's schema.
#[derive(Clone, Copy, Debug)]
pub struct ColSpec {
    pub name: &'static str,
    pub kind: Kind,
    pub optional: bool,
    /// What it holds (the schema documentation is generated from these).
    pub doc: &'static str,
}

/// A table's schema: its name (the dataset directory) and columns.
#[derive(Clone, Copy, Debug)]
pub struct TableSpec {
    pub name: &'static str,
    pub cols: &'static [ColSpec],
}

impl TableSpec {
    /// The Parquet message type.
    pub fn message(&self) -> String {
        let mut s = format!("message cointrail_{} {{\n", self.name);
        for c in self.cols {
            let rep = if c.optional { "OPTIONAL" } else { "REQUIRED" };
            let ty = match c.kind {
                Kind::Int64 => "INT64",
                Kind::Bool => "BOOLEAN",
                Kind::Str => "BINARY",
            };
            let ann = if c.kind == Kind::Str { " (STRING)" } else { "" };
            s.push_str(&format!("  {rep} {ty} {}{ann};\n", c.name));
        }
        s.push('}');
        s
    }
}

/// One value of a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Val {
    I(i64),
    B(bool),
    S(String),
    Null,
}

impl Val {
    pub fn i(&self) -> Option<i64> {
        match self {
            Val::I(v) => Some(*v),
            _ => None,
        }
    }
    pub fn s(&self) -> Option<&str> {
        match self {
            Val::S(v) => Some(v),
            _ => None,
        }
    }
    pub fn b(&self) -> Option<bool> {
        match self {
            Val::B(v) => Some(*v),
            _ => None,
        }
    }
}

impl From<u64> for Val {
    fn from(v: u64) -> Val {
        Val::I(v as i64)
    }
}
impl From<u32> for Val {
    fn from(v: u32) -> Val {
        Val::I(v as i64)
    }
}
impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::I(v)
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Val {
        Val::B(v)
    }
}
impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::S(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::S(v.to_string())
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Val {
        v.map(Into::into).unwrap_or(Val::Null)
    }
}

/// Rows per row group: row groups are what Spark splits a file into tasks by.
const ROW_GROUP: usize = 1 << 20;

enum Buf {
    I(Vec<i64>),
    B(Vec<bool>),
    S(Vec<ByteArray>),
}

/// A table file being written: rows are buffered per column and flushed a row group at a
/// time; the file is written under a hidden temporary name (Spark skips names starting
/// with a dot) and renamed into place by [`TableWriter::finish`], so a reader never sees
/// half a file.
pub struct TableWriter {
    spec: TableSpec,
    path: PathBuf,
    tmp: PathBuf,
    w: Option<SerializedFileWriter<File>>,
    bufs: Vec<Buf>,
    defs: Vec<Vec<i16>>,
    pending: usize,
    rows: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl TableWriter {
    pub fn create(
        path: &Path,
        spec: TableSpec,
        metadata: &[(&str, String)],
    ) -> Result<TableWriter, ExportError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.tmp"));
        let file = File::create(&tmp).map_err(io(&tmp))?;
        let schema = Arc::new(parse_message_type(&spec.message()).map_err(|source| {
            ExportError::Parquet {
                path: path.display().to_string(),
                source,
            }
        })?);
        let props = WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .set_key_value_metadata(Some(
                metadata
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.to_string(), v.clone()))
                    .collect(),
            ))
            .build();
        let w = SerializedFileWriter::new(file, schema, Arc::new(props)).map_err(|source| {
            ExportError::Parquet {
                path: path.display().to_string(),
                source,
            }
        })?;
        let mut t = TableWriter {
            spec,
            path: path.to_path_buf(),
            tmp,
            w: Some(w),
            bufs: Vec::new(),
            defs: Vec::new(),
            pending: 0,
            rows: 0,
        };
        t.reset();
        Ok(t)
    }

    fn reset(&mut self) {
        self.bufs = self
            .spec
            .cols
            .iter()
            .map(|c| match c.kind {
                Kind::Int64 => Buf::I(Vec::new()),
                Kind::Bool => Buf::B(Vec::new()),
                Kind::Str => Buf::S(Vec::new()),
            })
            .collect();
        self.defs = vec![Vec::new(); self.spec.cols.len()];
        self.pending = 0;
    }

    fn pq(&self) -> impl FnOnce(parquet::errors::ParquetError) -> ExportError + '_ {
        |source| ExportError::Parquet {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Add one row; its values in the schema's column order.
    pub fn push(&mut self, row: Vec<Val>) -> Result<(), ExportError> {
        if row.len() != self.spec.cols.len() {
            return Err(self.invalid(format!(
                "a row of {} values for {} columns",
                row.len(),
                self.spec.cols.len()
            )));
        }
        // Checked whole before anything is buffered: a refused row leaves no partial values.
        for (c, v) in self.spec.cols.iter().zip(&row) {
            let ok = match (c.kind, v) {
                (_, Val::Null) => c.optional,
                (Kind::Int64, Val::I(_)) | (Kind::Bool, Val::B(_)) | (Kind::Str, Val::S(_)) => true,
                _ => false,
            };
            if !ok {
                return Err(self.invalid(format!(
                    "column {}: {v:?} does not fit a {}{:?} column",
                    c.name,
                    if c.optional { "" } else { "required " },
                    c.kind
                )));
            }
        }
        for (i, v) in row.into_iter().enumerate() {
            if self.spec.cols[i].optional {
                self.defs[i].push(!matches!(v, Val::Null) as i16);
            }
            match (&mut self.bufs[i], v) {
                (Buf::I(b), Val::I(x)) => b.push(x),
                (Buf::B(b), Val::B(x)) => b.push(x),
                (Buf::S(b), Val::S(x)) => b.push(ByteArray::from(x.into_bytes())),
                _ => {}
            }
        }
        self.pending += 1;
        self.rows += 1;
        if self.pending >= ROW_GROUP {
            self.flush()?;
        }
        Ok(())
    }

    fn invalid(&self, msg: String) -> ExportError {
        ExportError::Invalid {
            path: self.path.display().to_string(),
            msg,
        }
    }

    fn flush(&mut self) -> Result<(), ExportError> {
        if self.pending == 0 {
            return Ok(());
        }
        let bufs = std::mem::take(&mut self.bufs);
        let defs = std::mem::take(&mut self.defs);
        let path = self.path.display().to_string();
        let pq = |source| ExportError::Parquet {
            path: path.clone(),
            source,
        };
        let w = self.w.as_mut().expect("open until finish");
        let mut rg = w.next_row_group().map_err(pq)?;
        let mut i = 0;
        while let Some(mut col) = rg.next_column().map_err(pq)? {
            let def = self.spec.cols[i].optional.then_some(&defs[i][..]);
            match &bufs[i] {
                Buf::I(b) => col.typed::<Int64Type>().write_batch(b, def, None),
                Buf::B(b) => col.typed::<BoolType>().write_batch(b, def, None),
                Buf::S(b) => col.typed::<ByteArrayType>().write_batch(b, def, None),
            }
            .map_err(pq)?;
            col.close().map_err(pq)?;
            i += 1;
        }
        rg.close().map_err(pq)?;
        self.reset();
        Ok(())
    }

    /// Write what is buffered, close the file and move it into place. Returns the rows.
    pub fn finish(mut self) -> Result<u64, ExportError> {
        self.flush()?;
        let w = self.w.take().expect("open until finish");
        w.close().map_err(self.pq())?;
        std::fs::rename(&self.tmp, &self.path).map_err(io(&self.path))?;
        Ok(self.rows)
    }
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        // Not finished (an error on the way): leave nothing half-written behind.
        if self.w.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// What [`read_table`] returns: the rows and the file's key-value metadata.
pub type TableFile = (Vec<Vec<Val>>, Vec<(String, String)>);

/// Read a table file back (checks and tests).
pub fn read_table(path: &Path) -> Result<TableFile, ExportError> {
    let p = path.display().to_string();
    let pq = |source| ExportError::Parquet {
        path: p.clone(),
        source,
    };
    let file = File::open(path).map_err(io(path))?;
    let r = SerializedFileReader::new(file).map_err(pq)?;
    let meta = r
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for row in r.get_row_iter(None).map_err(pq)? {
        let row = row.map_err(pq)?;
        let vals = row
            .get_column_iter()
            .map(|(name, f)| match f {
                Field::Null => Ok(Val::Null),
                Field::Long(v) => Ok(Val::I(*v)),
                // Spark writes some integer results as 32-bit.
                Field::Int(v) => Ok(Val::I(*v as i64)),
                Field::Short(v) => Ok(Val::I(*v as i64)),
                Field::Bool(v) => Ok(Val::B(*v)),
                Field::Str(v) => Ok(Val::S(v.clone())),
                other => Err(ExportError::Invalid {
                    path: p.clone(),
                    msg: format!("row {}: column {name}: unexpected {other:?}", out.len()),
                }),
            })
            .collect::<Result<Vec<Val>, _>>()?;
        out.push(vals);
    }
    Ok((out, meta))
}

/// The named columns of a Parquet file, in the order asked, whatever the file's column
/// order (Spark's part files): each row's values. A missing column is an error naming the
/// file, the column and the columns the file has. Integers of any width read as `Val::I`.
pub fn read_columns(path: &Path, cols: &[&str]) -> Result<Vec<Vec<Val>>, ExportError> {
    let p = path.display().to_string();
    let pq = |source| ExportError::Parquet {
        path: p.clone(),
        source,
    };
    let file = File::open(path).map_err(io(path))?;
    let r = SerializedFileReader::new(file).map_err(pq)?;
    let fields: Vec<String> = r
        .metadata()
        .file_metadata()
        .schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let mut at = Vec::with_capacity(cols.len());
    for c in cols {
        match fields.iter().position(|f| f == c) {
            Some(i) => at.push(i),
            None => {
                return Err(ExportError::Invalid {
                    path: p.clone(),
                    msg: format!("no column `{c}` (the file has: {})", fields.join(", ")),
                })
            }
        }
    }
    let mut out = Vec::new();
    for row in r.get_row_iter(None).map_err(pq)? {
        let row = row.map_err(pq)?;
        let all: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
        let mut vals = Vec::with_capacity(at.len());
        for (k, &i) in at.iter().enumerate() {
            vals.push(match all.get(i) {
                None | Some(Field::Null) => Val::Null,
                Some(Field::Long(v)) => Val::I(*v),
                Some(Field::Int(v)) => Val::I(*v as i64),
                Some(Field::Short(v)) => Val::I(*v as i64),
                Some(Field::Byte(v)) => Val::I(*v as i64),
                Some(Field::Bool(v)) => Val::B(*v),
                Some(Field::Str(v)) => Val::S(v.clone()),
                Some(other) => {
                    return Err(ExportError::Invalid {
                        path: p.clone(),
                        msg: format!(
                            "row {}: column `{}`: unexpected value {other:?}",
                            out.len(),
                            cols[k]
                        ),
                    })
                }
            });
        }
        out.push(vals);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables;

    #[test]
    fn every_kind_round_trips_with_nulls_and_a_bad_row_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.parquet");
        let mut w = TableWriter::create(&p, tables::LABELS, &[("k", "v".into())]).unwrap();
        let rows: Vec<Vec<Val>> = (0..3000i64)
            .map(|i| {
                vec![
                    Val::I(i),
                    Val::I(i * 7),
                    Val::S(format!("bc1q{i}")),
                    "exchange".into(),
                    Val::S(format!("name {i}")),
                    "attribution.tsv".into(),
                    Val::I(i % 5),
                    Val::B(i % 2 == 0),
                    if i % 3 == 0 {
                        Val::Null
                    } else {
                        Val::I(1_700_000_000 + i)
                    },
                ]
            })
            .collect();
        for r in &rows {
            w.push(r.clone()).unwrap();
        }
        // A null in a required column names the column; the file is not spoiled by it.
        let mut bad = rows[0].clone();
        bad[3] = Val::Null;
        let err = w.push(bad).unwrap_err().to_string();
        assert!(
            err.contains("category") && err.contains("t.parquet"),
            "{err}"
        );
        assert_eq!(w.finish().unwrap(), 3000);
        let (back, meta) = read_table(&p).unwrap();
        assert_eq!(back, rows);
        assert!(meta.contains(&("k".into(), "v".into())));
        // Nothing but the file itself is left in the directory (no temporary).
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("t.parquet")]);
        // An abandoned writer leaves nothing behind.
        let q = d.path().join("u.parquet");
        drop(TableWriter::create(&q, tables::BLOCKS, &[]).unwrap());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn the_schema_document_is_current() {
        let doc = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spark/SCHEMAS.md");
        let want = tables::schemas_markdown();
        if std::env::var("COINTRAIL_WRITE_SCHEMAS").is_ok() {
            std::fs::write(&doc, &want).unwrap();
        }
        let have = std::fs::read_to_string(&doc).unwrap_or_default();
        assert!(have == want, "spark/SCHEMAS.md is not what crates/export/src/tables.rs says: run COINTRAIL_WRITE_SCHEMAS=1 cargo test -p cointrail-export");
    }
}
