//! `etl query`: SQL over every layer of the lake with DataFusion, from one binary.
//!
//! Tables (registered when the layer exists):
//! - `breadcrumbs` — `standard/breadcrumbs/`, hive-partitioned by `service_date` (DATE)
//! - `rejects` — `standard/rejects/`
//! - `archive_breadcrumbs` — `archive/breadcrumbs/`, hive-partitioned by `service_date`
//! - `trips` — `archive/trips/`, one row per trip, hive-partitioned by `service_date`
//! - `standard_runs`, `archive_runs` — one row per committed version (from the manifests)
//!
//! Printing is separate from querying: [`print_batches`] writes to any `impl Write`.

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::context::SessionContext;
use datafusion::prelude::SessionConfig;
use std::io::Write;
use std::sync::Arc;

use crate::lake::Lake;

/// Errors of `etl query`.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// SQL planning or execution failed.
    #[error("{0}")]
    DataFusion(String),
    /// The lake has no table the query could use.
    #[error("the lake at {0} has no tables yet (run `etl standard` first)")]
    EmptyLake(String),
    /// A named query does not exist.
    #[error("no query named {name:?} (looked for {tried}); available: {available}")]
    NoSuchQuery {
        /// Name asked for.
        name: String,
        /// Where it looked.
        tried: String,
        /// Names found.
        available: String,
    },
    /// Output failed.
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
    /// Lake I/O.
    #[error(transparent)]
    Lake(#[from] crate::lake::LakeError),
}

impl From<datafusion::error::DataFusionError> for QueryError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        // The innermost message is what a user needs.
        QueryError::DataFusion(e.find_root().to_string())
    }
}

impl From<arrow::error::ArrowError> for QueryError {
    fn from(e: arrow::error::ArrowError) -> Self {
        QueryError::DataFusion(e.to_string())
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum OutputFormat {
    /// Aligned text table.
    #[default]
    Table,
    /// CSV with a header.
    Csv,
    /// One JSON object per row (NDJSON).
    Json,
    /// A Parquet file.
    Parquet,
}

/// (table name, layer prefix, hive-partitioned by service_date)
const TABLES: [(&str, &str, bool); 4] = [
    ("breadcrumbs", "standard/breadcrumbs/", true),
    ("rejects", "standard/rejects/", false),
    ("archive_breadcrumbs", "archive/breadcrumbs/", true),
    ("trips", "archive/trips/", true),
];

/// A DataFusion session with every existing table of the lake registered.
pub async fn session(lake: &Lake) -> Result<(SessionContext, Vec<String>), QueryError> {
    let mut config = SessionConfig::new().with_information_schema(true);
    {
        let opts = config.options_mut();
        opts.execution.parquet.pushdown_filters = true;
        opts.execution.parquet.reorder_filters = true;
        opts.execution.parquet.enable_page_index = true;
        opts.optimizer.prefer_existing_sort = true;
    }
    let ctx = SessionContext::new_with_config(config);
    for layer in crate::lake::LAYERS {
        let base = url::Url::parse(&format!("etl://{layer}/")).map_err(|e| QueryError::DataFusion(e.to_string()))?;
        ctx.register_object_store(&base, lake.store_for(&format!("{layer}/")).clone());
    }
    let mut registered = Vec::new();
    for (name, prefix, hive) in TABLES {
        let files = lake.list(prefix).await?;
        if !files.iter().any(|(k, _)| k.ends_with(".parquet")) {
            continue;
        }
        let layer = prefix.split('/').next().unwrap_or_default();
        let url = ListingTableUrl::parse(format!("etl://{layer}/{prefix}"))?;
        let mut opts = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        if hive {
            opts = opts.with_table_partition_cols(vec![("service_date".to_string(), DataType::Date32)]);
        }
        // One file per service date (the normal case; a date over `file_rows` gets several):
        // then reading files in path order yields rows sorted by date, vehicle, trip, time.
        let mut per_date: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (k, _) in files.iter().filter(|(k, _)| k.ends_with(".parquet")) {
            *per_date.entry(k.rsplit_once('/').map_or("", |(d, _)| d)).or_default() += 1;
        }
        if name.ends_with("breadcrumbs") && hive && per_date.values().all(|n| *n == 1) {
            // Every file etl writes is sorted by vehicle, trip, time (the Parquet footer says so
            // too): window functions over a trip then run without a sort.
            use datafusion::prelude::col;
            opts = opts.with_file_sort_order(vec![vec![
                col("service_date").sort(true, false),
                col("vehicle_id").sort(true, false),
                col("trip_id").sort(true, false),
                col("act_time").sort(true, false),
            ]]);
        }
        let state = ctx.state();
        let schema = opts.infer_schema(&state, &url).await?;
        let config = ListingTableConfig::new(url).with_listing_options(opts).with_schema(schema);
        ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
        registered.push(name.to_string());
    }
    for (name, root) in [("standard_runs", "standard"), ("archive_runs", "archive")] {
        if let Some(batch) = runs_batch(lake, root).await? {
            ctx.register_batch(name, batch)?;
            registered.push(name.to_string());
        }
    }
    Ok((ctx, registered))
}

/// One row per committed manifest version of a layer.
async fn runs_batch(lake: &Lake, root: &str) -> Result<Option<RecordBatch>, QueryError> {
    use arrow::array::{StringArray, UInt64Array};
    let logs = lake.list(&format!("{root}/_log/")).await?;
    if logs.is_empty() {
        return Ok(None);
    }
    let (mut versions, mut runs, mut at, mut reports) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (k, _) in logs.iter().filter(|(k, _)| k.ends_with(".json")) {
        if let Some(m) = lake.get_json::<crate::table::Manifest>(k).await? {
            versions.push(m.version);
            runs.push(m.run_id);
            at.push(m.created_at);
            reports.push(m.report.to_string());
        }
    }
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("version", DataType::UInt64, false),
        arrow::datatypes::Field::new("run_id", DataType::Utf8, false),
        arrow::datatypes::Field::new("created_at", DataType::Utf8, false),
        arrow::datatypes::Field::new("report", DataType::Utf8, false),
    ]));
    Ok(Some(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(UInt64Array::from(versions)),
            Arc::new(StringArray::from(runs)),
            Arc::new(StringArray::from(at)),
            Arc::new(StringArray::from(reports)),
        ],
    )?))
}

/// Runs one or more `;`-separated statements; returns the batches of the last one.
pub async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
    let statements: Vec<&str> = split_statements(sql);
    if statements.is_empty() {
        return Err(QueryError::DataFusion("no SQL statement given".into()));
    }
    let mut last = Vec::new();
    for s in statements {
        let df = ctx.sql(s).await?;
        last = df.collect().await?;
    }
    Ok(last)
}

/// Splits SQL text on `;` outside quotes and comments; drops empty statements.
pub fn split_statements(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut in_str, mut in_line_comment) = (0usize, None::<char>, false);
    let bytes: Vec<char> = sql.chars().collect();
    let mut byte_pos = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        if in_line_comment {
            if c == '\n' {
                in_line_comment = false;
            }
        } else if let Some(q) = in_str {
            if c == q {
                in_str = None;
            }
        } else if c == '\'' || c == '"' {
            in_str = Some(c);
        } else if c == '-' && next == Some('-') {
            in_line_comment = true;
        } else if c == ';' {
            out.push(&sql[start..byte_pos]);
            start = byte_pos + 1;
        }
        byte_pos += c.len_utf8();
        i += 1;
    }
    out.push(&sql[start..]);
    out.into_iter().filter(|s| s.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))).collect()
}

/// Writes batches in `format` to `out`.
pub fn print_batches(batches: &[RecordBatch], format: OutputFormat, out: &mut dyn Write) -> Result<(), QueryError> {
    match format {
        OutputFormat::Table => {
            writeln!(out, "{}", arrow::util::pretty::pretty_format_batches(batches)?)?;
        }
        OutputFormat::Csv => {
            let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(&mut *out);
            for b in batches {
                w.write(b)?;
            }
        }
        OutputFormat::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(&mut *out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        OutputFormat::Parquet => {
            let Some(first) = batches.first() else { return Ok(()) };
            let mut buf = Vec::new();
            let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, first.schema(), None).map_err(|e| QueryError::DataFusion(e.to_string()))?;
            for b in batches {
                w.write(b).map_err(|e| QueryError::DataFusion(e.to_string()))?;
            }
            w.close().map_err(|e| QueryError::DataFusion(e.to_string()))?;
            out.write_all(&buf)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Directories searched for named queries: `$ETL_SQL_DIR` (the container image sets it),
/// `./sql`, then the one shipped with the source.
pub fn sql_dirs() -> Vec<std::path::PathBuf> {
    let mut v: Vec<std::path::PathBuf> = std::env::var_os("ETL_SQL_DIR").map(std::path::PathBuf::from).into_iter().collect();
    v.push(std::path::PathBuf::from("sql"));
    v.push(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql"));
    v
}

/// Reads the named query `sql/<name>.sql`.
pub fn named_query(name: &str) -> Result<String, QueryError> {
    let file = format!("{}.sql", name.trim_end_matches(".sql"));
    for d in sql_dirs() {
        if let Ok(s) = std::fs::read_to_string(d.join(&file)) {
            return Ok(s);
        }
    }
    let mut available: Vec<String> = sql_dirs()
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".sql").map(str::to_string))
        .collect();
    available.sort();
    available.dedup();
    Err(QueryError::NoSuchQuery {
        name: name.into(),
        tried: sql_dirs().iter().map(|d| d.join(&file).display().to_string()).collect::<Vec<_>>().join(", "),
        available: available.join(", "),
    })
}

/// Plans and runs `sql` against the lake; a query on an empty lake explains itself.
pub async fn query(lake: &Lake, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
    let (ctx, registered) = session(lake).await?;
    match run_sql(&ctx, sql).await {
        Err(QueryError::DataFusion(m)) if registered.is_empty() && m.contains("not found") => Err(QueryError::EmptyLake(lake.url().to_string())),
        Err(QueryError::DataFusion(m)) if m.contains("not found") && m.to_lowercase().contains("table") => {
            Err(QueryError::DataFusion(format!("{m} (tables in this lake: {})", registered.join(", "))))
        }
        other => other,
    }
}

/// An interactive shell (or a script on stdin): runs each `;`-terminated statement and prints
/// its result; an error is printed and the shell goes on. Exit code: failure if any failed.
pub async fn shell(lake: &Lake, format: OutputFormat, input: &mut dyn std::io::BufRead, out: &mut dyn Write) -> Result<std::process::ExitCode, QueryError> {
    use std::io::IsTerminal;
    let interactive = std::io::stdin().is_terminal();
    let (ctx, tables) = session(lake).await?;
    if interactive {
        writeln!(out, "etl query shell on {} — tables: {}. End statements with ';', Ctrl-D to quit.", lake.url(), tables.join(", "))?;
    }
    let mut buf = String::new();
    let mut failed = false;
    loop {
        if interactive {
            write!(out, "{}", if buf.trim().is_empty() { "etl> " } else { "...> " })?;
            out.flush()?;
        }
        let mut line = String::new();
        let eof = input.read_line(&mut line)? == 0;
        buf.push_str(&line);
        let complete: Vec<String> = if eof {
            split_statements(&buf).into_iter().map(str::to_string).collect()
        } else if line.trim_end().ends_with(';') {
            split_statements(&buf).into_iter().map(str::to_string).collect()
        } else {
            continue;
        };
        buf.clear();
        for stmt in complete {
            match run_sql(&ctx, &stmt).await {
                Ok(batches) => print_batches(&batches, format, out)?,
                Err(e) => {
                    failed = true;
                    writeln!(out, "error: {}", e.to_string().split_whitespace().collect::<Vec<_>>().join(" "))?;
                }
            }
        }
        if eof {
            break;
        }
    }
    Ok(if failed { std::process::ExitCode::FAILURE } else { std::process::ExitCode::SUCCESS })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_outside_strings_and_comments() {
        let s = "-- a comment; with semicolon\nselect ';' as x;\n\nselect 2 -- trailing; here\n;  \n-- only a comment\n";
        let v = split_statements(s);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].contains("select ';'"));
        assert!(v[1].contains("select 2"));
    }

    #[test]
    fn print_formats() {
        let b = RecordBatch::try_from_iter(vec![("a", Arc::new(arrow::array::Int64Array::from(vec![1, 2])) as arrow::array::ArrayRef)]).unwrap();
        let mut out = Vec::new();
        print_batches(&[b.clone()], OutputFormat::Csv, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a\n1\n2\n");
        let mut out = Vec::new();
        print_batches(&[b.clone()], OutputFormat::Json, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "{\"a\":1}\n{\"a\":2}\n");
        let mut out = Vec::new();
        print_batches(&[b.clone()], OutputFormat::Table, &mut out).unwrap();
        assert!(String::from_utf8(out).unwrap().contains("| a |"));
        let mut out = Vec::new();
        print_batches(&[b], OutputFormat::Parquet, &mut out).unwrap();
        assert_eq!(&out[..4], b"PAR1");
    }

    #[tokio::test]
    async fn empty_lake_bad_sql_and_unknown_tables_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let e = query(&lake, "select count(*) from breadcrumbs").await.unwrap_err().to_string();
        assert!(e.contains("no tables yet"), "{e}");
        let e = query(&lake, "selec 1").await.unwrap_err().to_string();
        assert!(e.to_lowercase().contains("sql") || e.contains("Expected"), "{e}");
        assert_eq!(query(&lake, "select 1 + 1 as two").await.unwrap()[0].num_rows(), 1);
        assert!(named_query("no_such_query_xyz").unwrap_err().to_string().contains("no_such_query_xyz"));
        // The shell runs each statement, reports errors and goes on.
        let mut input = std::io::Cursor::new(b"select 1 as a;\nselec 2;\nselect\n 3 as b;\n".to_vec());
        let mut out = Vec::new();
        let code = shell(&lake, OutputFormat::Csv, &mut input, &mut out).await.unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(code, std::process::ExitCode::FAILURE);
        assert!(text.contains("a\n1\n") && text.contains("b\n3\n") && text.contains("error:"), "{text}");
    }
}
