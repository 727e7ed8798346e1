# One bucket per layer. raw and archive are written once and read rarely: STANDARD_IA after
# infrequent_access_after_days, then glacier_storage_class (GLACIER_IR by default: still readable
# with GetObject, so `etl verify`, `etl standard` and queries work without a restore). standard
# is read all the time and stays in STANDARD.
#
# Every bucket: all public access blocked, ACLs disabled (bucket owner enforced), TLS-only bucket
# policy, SSE-KMS with a bucket key, versioning (noncurrent versions expire after
# noncurrent_version_days: the soft-delete window), incomplete multipart uploads aborted.

resource "aws_s3_bucket" "raw" {
  bucket              = "${var.name_prefix}-raw"
  force_destroy       = var.force_destroy
  object_lock_enabled = var.raw_object_lock_days > 0
  tags                = { layer = "raw" }

  #checkov:skip=CKV_AWS_18:Access is audited with CloudTrail S3 data events (organisation trail), not server access logs.
  #checkov:skip=CKV_AWS_144:Cross-region replication is a per-deployment decision (cost); versioning, KMS and Object Lock cover deletion and tampering.
  #checkov:skip=CKV2_AWS_62:No consumer of S3 event notifications; the jobs are scheduled.
}

resource "aws_s3_bucket" "standard" {
  bucket        = "${var.name_prefix}-standard"
  force_destroy = var.force_destroy
  tags          = { layer = "standard" }

  #checkov:skip=CKV_AWS_18:Access is audited with CloudTrail S3 data events (organisation trail), not server access logs.
  #checkov:skip=CKV_AWS_144:standard is rebuilt from raw; cross-region replication is not worth its cost.
  #checkov:skip=CKV2_AWS_62:No consumer of S3 event notifications; the jobs are scheduled.
}

resource "aws_s3_bucket" "archive" {
  bucket        = "${var.name_prefix}-archive"
  force_destroy = var.force_destroy
  tags          = { layer = "archive" }

  #checkov:skip=CKV_AWS_18:Access is audited with CloudTrail S3 data events (organisation trail), not server access logs.
  #checkov:skip=CKV_AWS_144:archive is rebuilt from standard/raw; cross-region replication is a per-deployment decision (cost).
  #checkov:skip=CKV2_AWS_62:No consumer of S3 event notifications; the jobs are scheduled.
}

locals {
  buckets = {
    raw      = aws_s3_bucket.raw
    standard = aws_s3_bucket.standard
    archive  = aws_s3_bucket.archive
  }
}

resource "aws_s3_bucket_public_access_block" "lake" {
  for_each = local.buckets

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "lake" {
  for_each = local.buckets

  bucket = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "lake" {
  for_each = local.buckets

  bucket = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "lake" {
  for_each = local.buckets

  bucket = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.lake.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_object_lock_configuration" "raw" {
  count = var.raw_object_lock_days > 0 ? 1 : 0

  bucket = aws_s3_bucket.raw.id
  rule {
    default_retention {
      mode = "GOVERNANCE"
      days = var.raw_object_lock_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.lake]
}

# TLS only (and TLS 1.2 or newer), for every principal.
data "aws_iam_policy_document" "tls_only" {
  for_each = local.buckets

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"] # a Deny: no request without TLS, whatever it is
    resources = [each.value.arn, "${each.value.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyTlsOlderThan12"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value.arn, "${each.value.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

resource "aws_s3_bucket_policy" "tls_only" {
  for_each = local.buckets

  bucket = each.value.id
  policy = data.aws_iam_policy_document.tls_only[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.lake]
}

# Lifecycle. Rules with an empty filter apply to every object; the tiering rules skip objects of
# 128 KiB or less (claims, gaps, reports, manifests: small JSON that is listed and read on every
# run, and that S3 would bill as 128 KiB in STANDARD_IA anyway).

resource "aws_s3_bucket_lifecycle_configuration" "raw" {
  bucket = aws_s3_bucket.raw.id

  rule {
    id     = "abort-incomplete-multipart-and-expire-noncurrent"
    status = "Enabled"
    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
    expiration {
      expired_object_delete_marker = true
    }
  }

  rule {
    id     = "tier-down-sealed-objects"
    status = "Enabled"
    filter {
      object_size_greater_than = 131072
    }

    transition {
      days          = var.infrequent_access_after_days
      storage_class = "STANDARD_IA"
    }
    transition {
      days          = var.glacier_after_days
      storage_class = var.glacier_storage_class
    }
  }

  depends_on = [aws_s3_bucket_versioning.lake]

  lifecycle {
    precondition {
      condition     = var.glacier_after_days >= var.infrequent_access_after_days + 30
      error_message = "glacier_after_days must be at least infrequent_access_after_days + 30 (STANDARD_IA's minimum storage duration)."
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "standard" {
  bucket = aws_s3_bucket.standard.id

  rule {
    id     = "abort-incomplete-multipart-and-expire-noncurrent"
    status = "Enabled"
    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
    expiration {
      expired_object_delete_marker = true
    }
  }

  depends_on = [aws_s3_bucket_versioning.lake]
}

resource "aws_s3_bucket_lifecycle_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id

  rule {
    id     = "abort-incomplete-multipart-and-expire-noncurrent"
    status = "Enabled"
    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
    expiration {
      expired_object_delete_marker = true
    }
  }

  rule {
    id     = "tier-down-parquet"
    status = "Enabled"
    filter {
      object_size_greater_than = 131072
    }

    transition {
      days          = var.infrequent_access_after_days
      storage_class = "STANDARD_IA"
    }
    transition {
      days          = var.glacier_after_days
      storage_class = var.glacier_storage_class
    }
  }

  depends_on = [aws_s3_bucket_versioning.lake]

  lifecycle {
    precondition {
      condition     = var.glacier_after_days >= var.infrequent_access_after_days + 30
      error_message = "glacier_after_days must be at least infrequent_access_after_days + 30 (STANDARD_IA's minimum storage duration)."
    }
  }
}
