# DELIBERATELY BROKEN (see gcs.tf): an S3 raw bucket without lifecycle configuration, public
# access block, TLS-only policy or versioning, and a lifecycle configuration on another bucket
# that never aborts incomplete multipart uploads. The raw role may do anything in S3.
resource "aws_s3_bucket" "raw" {
  bucket        = "broken-etl-raw"
  force_destroy = true
}

resource "aws_s3_bucket" "archive" {
  bucket = "broken-etl-archive"
}

resource "aws_s3_bucket_lifecycle_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id

  rule {
    id     = "expire"
    status = "Enabled"
    filter {}

    expiration {
      days = 30
    }
  }
}

resource "aws_iam_role" "raw" {
  name               = "broken-etl-raw"
  assume_role_policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "ecs-tasks.amazonaws.com" } }] })
}

resource "aws_iam_role_policy" "raw" {
  name   = "everything"
  role   = aws_iam_role.raw.id
  policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", Action = "s3:*", Resource = "*" }] })
}
