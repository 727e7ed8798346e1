locals {
  stages = ["raw", "standard", "reduce", "query"]

  labels = merge(var.labels, {
    app        = "etl"
    managed-by = "terraform"
  })

  bucket_location = coalesce(var.bucket_location, var.region)

  lake_url = {
    raw      = "gs://${google_storage_bucket.raw.name}"
    standard = "gs://${google_storage_bucket.standard.name}"
    archive  = "gs://${google_storage_bucket.archive.name}"
  }

  # Where each job finds its key file (mounted from Secret Manager, see jobs.tf).
  public_key_path  = "/secrets/public/etl-public.pem"
  private_key_path = "/secrets/private/etl-private.pem"

  # Command line of each stage after the image's ENTRYPOINT ["etl"]. Every stage reads only the
  # layers its identity may read (iam.tf) and writes only the one it may write.
  default_args = {
    raw      = concat(["raw", "--brokers", var.brokers, "--topic", var.topic, "--lake", local.lake_url.raw, "--public-key", local.public_key_path], var.raw_extra_args)
    standard = ["standard", "--topic", var.topic, "--raw-lake", local.lake_url.raw, "--standard-lake", local.lake_url.standard, "--private-key", local.private_key_path]
    reduce   = ["reduce", "--standard-lake", local.lake_url.standard, "--archive-lake", local.lake_url.archive]
    query    = ["query", "--standard-lake", local.lake_url.standard, "--archive-lake", local.lake_url.archive, "--name", "quality_summary"]
  }
  job_args = merge(local.default_args, var.stage_args)

  scheduled = { for stage, cron in var.schedules : stage => cron if cron != "" }
}
