# One bucket per layer. raw and archive are written once and read rarely: NEARLINE, then
# COLDLINE and ARCHIVE by age (every GCS class is online, so old objects stay readable by
# `etl verify`, `etl standard` and BigQuery without a restore). standard is read all the time: STANDARD.
#
# Every bucket: uniform bucket-level access, public access prevention enforced, object versioning
# plus soft delete, noncurrent versions expire, incomplete multipart uploads are aborted.
# Requests are TLS-only by construction (GCS serves no plain-HTTP API).

resource "google_storage_bucket" "raw" {
  name          = "${var.name_prefix}-raw"
  location      = local.bucket_location
  storage_class = "NEARLINE"
  force_destroy = var.force_destroy

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_days * 86400
  }

  # Only sealed objects move colder; claims, gaps and reports (small JSON the raw job lists and
  # reads on every run) stay in NEARLINE.
  lifecycle_rule {
    condition {
      age                   = var.coldline_after_days
      matches_storage_class = ["NEARLINE"]
      matches_suffix        = [".enc"]
    }
    action {
      type          = "SetStorageClass"
      storage_class = "COLDLINE"
    }
  }

  lifecycle_rule {
    condition {
      age                   = var.archive_after_days
      matches_storage_class = ["COLDLINE"]
      matches_suffix        = [".enc"]
    }
    action {
      type          = "SetStorageClass"
      storage_class = "ARCHIVE"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  labels = merge(local.labels, { layer = "raw" })

  #checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (Data Access logs for storage.googleapis.com), not a usage-log bucket.

  lifecycle {
    precondition {
      condition     = var.archive_after_days >= var.coldline_after_days + 90
      error_message = "archive_after_days must be at least coldline_after_days + 90 (COLDLINE's minimum storage duration)."
    }
  }
}

resource "google_storage_bucket" "standard" {
  name          = "${var.name_prefix}-standard"
  location      = local.bucket_location
  storage_class = "STANDARD"
  force_destroy = var.force_destroy

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_days * 86400
  }

  # Parquet files that a newer manifest version replaced are deleted by the writer; their
  # noncurrent versions go after noncurrent_version_days.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  labels = merge(local.labels, { layer = "standard" })

  #checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (Data Access logs for storage.googleapis.com), not a usage-log bucket.
}

resource "google_storage_bucket" "archive" {
  name          = "${var.name_prefix}-archive"
  location      = local.bucket_location
  storage_class = "NEARLINE"
  force_destroy = var.force_destroy

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_days * 86400
  }

  lifecycle_rule {
    condition {
      age                   = var.coldline_after_days
      matches_storage_class = ["NEARLINE"]
      matches_suffix        = [".parquet"]
    }
    action {
      type          = "SetStorageClass"
      storage_class = "COLDLINE"
    }
  }

  lifecycle_rule {
    condition {
      age                   = var.archive_after_days
      matches_storage_class = ["COLDLINE"]
      matches_suffix        = [".parquet"]
    }
    action {
      type          = "SetStorageClass"
      storage_class = "ARCHIVE"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  labels = merge(local.labels, { layer = "archive" })

  #checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (Data Access logs for storage.googleapis.com), not a usage-log bucket.

  lifecycle {
    precondition {
      condition     = var.archive_after_days >= var.coldline_after_days + 90
      error_message = "archive_after_days must be at least coldline_after_days + 90 (COLDLINE's minimum storage duration)."
    }
  }
}
