//! Atomic publishing of Parquet tables in the lake (used by `standard` and `reduce`).
//!
//! ```text
//!  <layer>/_staging/<run>/...parquet        1. write every new file here (invisible to readers)
//!  <layer>/_log/<version:020>.json          2. COMMIT: create-only manifest version N+1
//!                                              (exists already → a concurrent run won: retry)
//!  <layer>/<table>/service_date=D/part-N-<run>.parquet
//!                                           3. publish: copy staged files to their final keys
//!                                           4. delete files the new version replaced, and staging
//! ```
//!
//! The manifest is the truth: it lists every live file of every table of the layer and which
//! inputs have been consumed. A crash before step 2 leaves only staging garbage (cleaned later);
//! a crash after it is rolled forward by the next run (steps 3–4 are idempotent). Plain Parquet
//! readers (DuckDB, pyarrow, Spark, BigQuery) that list the directories see exactly the live
//! files except between steps 3 and 4 of a run, or after a crash until the next run.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use crate::lake::{Created, Lake, LakeError};
use object_store::ObjectStoreExt;

/// A random id for a run of `standard` or `reduce` (names its staging directory and files).
pub fn new_run_id() -> String {
    use rand::Rng;
    format!("{:012x}", rand::thread_rng().gen::<u64>() & 0xffff_ffff_ffff)
}

/// Errors of the commit protocol.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// Lake I/O.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// Another run committed this version first.
    #[error("{layer}: version {version} was committed by a concurrent run")]
    Conflict {
        /// Layer.
        layer: String,
        /// Version that exists.
        version: u64,
    },
}

/// One live data file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataFile {
    /// Final key in the lake.
    pub path: String,
    /// Hive partition directory (`service_date=2022-12-12`) or empty.
    pub partition: String,
    /// Rows in the file.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
}

/// A version of a layer: every live file, and which inputs are already in it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// Version number (1, 2, ...).
    pub version: u64,
    /// Run that committed it.
    pub run_id: String,
    /// When (UTC).
    pub created_at: String,
    /// Inputs consumed so far (raw object key or input file → figures), cumulative.
    pub consumed: BTreeMap<String, serde_json::Value>,
    /// Live files per table.
    pub tables: BTreeMap<String, Vec<DataFile>>,
    /// Staged key → final key of this version's new files (for roll-forward).
    pub staged: BTreeMap<String, String>,
    /// The run's report.
    pub report: serde_json::Value,
}

impl Manifest {
    /// Every live file key.
    pub fn live(&self) -> BTreeSet<&str> {
        self.tables.values().flatten().map(|f| f.path.as_str()).collect()
    }
}

/// A layer (`standard`, `archive`) of Parquet tables published through manifests.
#[derive(Clone, Debug)]
pub struct Layer {
    lake: Lake,
    root: String,
}

impl Layer {
    /// The layer rooted at `root` (e.g. "standard").
    pub fn new(lake: Lake, root: &str) -> Self {
        Self { lake, root: root.trim_end_matches('/').to_string() }
    }

    /// Layer root prefix.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The lake.
    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    fn log_key(&self, version: u64) -> String {
        format!("{}/_log/{version:020}.json", self.root)
    }

    /// Staging prefix of a run.
    pub fn staging(&self, run_id: &str) -> String {
        format!("{}/_staging/{run_id}", self.root)
    }

    /// The latest committed manifest, if any.
    pub async fn latest(&self) -> Result<Option<Manifest>, TableError> {
        let logs = self.lake.list(&format!("{}/_log/", self.root)).await?;
        let Some((key, _)) = logs.iter().filter(|(k, _)| k.ends_with(".json")).max() else { return Ok(None) };
        Ok(self.lake.get_json(key).await?)
    }

    /// Commits `next` (whose version must be parent + 1), then publishes it.
    pub async fn commit(&self, parent: Option<&Manifest>, next: &Manifest) -> Result<(), TableError> {
        let json = serde_json::to_vec_pretty(next).map_err(|e| LakeError::Json { key: self.log_key(next.version), reason: e.to_string() })?;
        if self.lake.put_create(&self.log_key(next.version), Bytes::from(json)).await? == Created::Existed {
            // A retried put (the store acted, then the answer was lost) finds our own entry:
            // that is a commit, not a conflict — discarding the staging now would lose data.
            let theirs: Option<Manifest> = self.lake.get_json(&self.log_key(next.version)).await?;
            if theirs.is_none_or(|t| t.run_id != next.run_id) {
                return Err(TableError::Conflict { layer: self.root.clone(), version: next.version });
            }
        }
        crate::fault::point("after-commit");
        self.publish(parent, next).await
    }

    /// Steps 3–4: copy staged files to their final keys, delete replaced files and staging.
    /// Idempotent; also used to roll a crashed run forward.
    pub async fn publish(&self, parent: Option<&Manifest>, m: &Manifest) -> Result<(), TableError> {
        for (staged, final_key) in &m.staged {
            let store = self.lake.store_for(staged);
            if self.lake.exists(final_key).await? {
                continue;
            }
            let (from, to) = (object_store::path::Path::from(staged.as_str()), object_store::path::Path::from(final_key.as_str()));
            store.copy(&from, &to).await.map_err(|source| LakeError::Store { op: "copy", key: final_key.clone(), source })?;
        }
        crate::fault::point("after-publish");
        // Only clean up while this version is still the latest.
        if self.latest().await?.map(|l| l.version) != Some(m.version) {
            return Ok(());
        }
        let live = m.live();
        if let Some(p) = parent {
            for f in p.live() {
                if !live.contains(f) {
                    self.lake.delete(f).await?;
                }
            }
        }
        for staged in m.staged.keys() {
            self.lake.delete(staged).await?;
        }
        Ok(())
    }

    /// Rolls the latest version forward (after a crash) and removes files in the table
    /// directories that no version references (left by crashed runs before they committed).
    pub async fn recover(&self, tables: &[&str]) -> Result<Option<Manifest>, TableError> {
        let latest = self.latest().await?;
        if let Some(m) = &latest {
            self.publish(None, m).await?;
        }
        let live: BTreeSet<String> = latest.as_ref().map(|m| m.live().into_iter().map(str::to_string).collect()).unwrap_or_default();
        for t in tables {
            for (k, _) in self.lake.list(&format!("{}/{t}/", self.root)).await? {
                if k.ends_with(".parquet") && !live.contains(&k) {
                    self.lake.delete(&k).await?;
                }
            }
        }
        Ok(latest)
    }

    /// Deletes a run's staging files (after a failed or conflicting attempt).
    pub async fn discard_staging(&self, run_id: &str) -> Result<(), TableError> {
        for (k, _) in self.lake.list(&self.staging(run_id)).await? {
            self.lake.delete(&k).await?;
        }
        Ok(())
    }
}
