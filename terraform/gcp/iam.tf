# One service account per stage plus one for Cloud Scheduler. Every grant is on one bucket or one
# secret (never the project), with predefined object roles only:
#
#   stage     raw bucket                 standard bucket             archive bucket     private key
#   raw       objectCreator+objectViewer -                           -                  -
#   standard  objectViewer               objectUser                  -                  secretAccessor
#   reduce    -                          objectViewer                objectUser         -
#   query     -                          objectViewer                objectViewer       -
#
# objectCreator has no storage.objects.delete, so the raw job can never overwrite or delete an
# object: its create-only claims and sealed objects are immutable to it. standard and reduce
# publish tables through manifests (copy staged files, delete replaced ones) and so need
# objectUser (create/get/list/delete) on their own output bucket only.

resource "google_service_account" "stage" {
  for_each = toset(local.stages)

  account_id   = "${trimsuffix(substr(var.name_prefix, 0, 30 - length(each.key) - 1), "-")}-${each.key}"
  display_name = "etl ${each.key} job"
  description  = "Identity of the etl ${each.key} Cloud Run job."
}

resource "google_service_account" "scheduler" {
  account_id   = "${trimsuffix(substr(var.name_prefix, 0, 24), "-")}-sched"
  display_name = "etl scheduler"
  description  = "Cloud Scheduler's identity: may only start the etl Cloud Run jobs (roles/run.invoker on each job)."
}

locals {
  bucket_grants = {
    raw-creates-raw          = { stage = "raw", bucket = google_storage_bucket.raw.name, role = "roles/storage.objectCreator" }
    raw-reads-raw            = { stage = "raw", bucket = google_storage_bucket.raw.name, role = "roles/storage.objectViewer" }
    standard-reads-raw       = { stage = "standard", bucket = google_storage_bucket.raw.name, role = "roles/storage.objectViewer" }
    standard-writes-standard = { stage = "standard", bucket = google_storage_bucket.standard.name, role = "roles/storage.objectUser" }
    reduce-reads-standard    = { stage = "reduce", bucket = google_storage_bucket.standard.name, role = "roles/storage.objectViewer" }
    reduce-writes-archive    = { stage = "reduce", bucket = google_storage_bucket.archive.name, role = "roles/storage.objectUser" }
    query-reads-standard     = { stage = "query", bucket = google_storage_bucket.standard.name, role = "roles/storage.objectViewer" }
    query-reads-archive      = { stage = "query", bucket = google_storage_bucket.archive.name, role = "roles/storage.objectViewer" }
  }
}

resource "google_storage_bucket_iam_member" "stage" {
  for_each = local.bucket_grants

  bucket = each.value.bucket
  role   = each.value.role
  member = "serviceAccount:${google_service_account.stage[each.value.stage].email}"
}

# Only the standard job may read the private key.
resource "google_secret_manager_secret_iam_member" "standard_reads_private_key" {
  secret_id = google_secret_manager_secret.private_key.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.stage["standard"].email}"
}

# Only the raw job mounts the public key.
resource "google_secret_manager_secret_iam_member" "raw_reads_public_key" {
  secret_id = google_secret_manager_secret.public_key.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.stage["raw"].email}"
}

# The scheduler may start exactly the scheduled jobs and nothing else (no runWithOverrides, no
# project-level role).
resource "google_cloud_run_v2_job_iam_member" "scheduler_invokes" {
  for_each = local.scheduled

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_job.stage[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}
