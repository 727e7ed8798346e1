output "buckets" {
  description = "Bucket of each layer."
  value = {
    raw      = google_storage_bucket.raw.name
    standard = google_storage_bucket.standard.name
    archive  = google_storage_bucket.archive.name
  }
}

output "lake_urls" {
  description = "Lake URL of each layer, as the etl commands take them."
  value       = local.lake_url
}

output "service_accounts" {
  description = "Service account of each stage, and of the scheduler."
  value = merge(
    { for stage, sa in google_service_account.stage : stage => sa.email },
    { scheduler = google_service_account.scheduler.email },
  )
}

output "jobs" {
  description = "Cloud Run job of each stage (gcloud run jobs execute NAME --region REGION)."
  value       = { for stage, job in google_cloud_run_v2_job.stage : stage => job.name }
}

output "private_key_secret" {
  description = "Secret Manager secret that must hold the private key (add a version by hand)."
  value       = google_secret_manager_secret.private_key.id
}

output "image_repository" {
  description = "Artifact Registry path to push the etl image to."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.etl.repository_id}"
}

output "bigquery_tables" {
  description = "BigQuery external tables (dataset.table)."
  value       = [for t in google_bigquery_table.layer : "${t.dataset_id}.${t.table_id}"]
}
