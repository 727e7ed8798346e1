# Artifact Registry repository for the etl image (built from the repository's Dockerfile).
resource "google_artifact_registry_repository" "etl" {
  location      = var.region
  repository_id = "${var.name_prefix}-etl"
  description   = "etl container images"
  format        = "DOCKER"

  docker_config {
    immutable_tags = true
  }

  labels = local.labels

  #checkov:skip=CKV_GCP_84:Images hold no data or secrets; Google-managed encryption is enough.
}

locals {
  # Which Secret Manager secret each stage mounts as a file.
  key_mounts = {
    raw = {
      secret = google_secret_manager_secret.public_key.secret_id
      dir    = dirname(local.public_key_path)
      file   = basename(local.public_key_path)
    }
    standard = {
      secret = google_secret_manager_secret.private_key.secret_id
      dir    = dirname(local.private_key_path)
      file   = basename(local.private_key_path)
    }
  }
}

# One Cloud Run job per stage. A job runs one bounded batch and exits; Cloud Scheduler starts it.
resource "google_cloud_run_v2_job" "stage" {
  for_each = toset(local.stages)

  name     = "${var.name_prefix}-${each.key}"
  location = var.region
  labels   = merge(local.labels, { stage = each.key })

  template {
    labels      = merge(local.labels, { stage = each.key })
    task_count  = each.key == "raw" ? var.raw_task_count : 1
    parallelism = each.key == "raw" ? var.raw_task_count : 1

    template {
      service_account = google_service_account.stage[each.key].email
      timeout         = "${var.job_timeout_seconds}s"
      # A failed run is retried by the next scheduled run, which resumes from the lake's own
      # checkpoint; retrying at once would only repeat the failure.
      max_retries = 0

      containers {
        image = var.image
        args  = local.job_args[each.key]

        env {
          name  = "ETL_LOG"
          value = "info"
        }

        resources {
          limits = {
            cpu    = var.job_resources[each.key].cpu
            memory = var.job_resources[each.key].memory
          }
        }

        dynamic "volume_mounts" {
          for_each = contains(keys(local.key_mounts), each.key) ? [local.key_mounts[each.key]] : []
          content {
            name       = "key"
            mount_path = volume_mounts.value.dir
          }
        }
      }

      dynamic "volumes" {
        for_each = contains(keys(local.key_mounts), each.key) ? [local.key_mounts[each.key]] : []
        content {
          name = "key"
          secret {
            secret       = volumes.value.secret
            default_mode = 256 # 0400
            items {
              version = "latest"
              path    = volumes.value.file
            }
          }
        }
      }

      dynamic "vpc_access" {
        for_each = var.vpc_network == null ? [] : [1]
        content {
          egress = "PRIVATE_RANGES_ONLY"
          network_interfaces {
            network    = var.vpc_network
            subnetwork = var.vpc_subnetwork
          }
        }
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.raw_reads_public_key,
    google_secret_manager_secret_iam_member.standard_reads_private_key,
    google_secret_manager_secret_version.public_key,
  ]
}

# Cloud Scheduler calls the Cloud Run Admin API's jobs.run for each scheduled stage, with an
# OAuth token of the scheduler service account (which holds roles/run.invoker on that job only).
resource "google_cloud_scheduler_job" "stage" {
  for_each = local.scheduled

  name             = "${var.name_prefix}-${each.key}"
  description      = "Starts the etl ${each.key} Cloud Run job."
  region           = var.region
  schedule         = each.value
  time_zone        = var.time_zone
  attempt_deadline = "60s"

  retry_config {
    retry_count = 1
  }

  http_target {
    http_method = "POST"
    uri         = "https://run.googleapis.com/v2/projects/${var.project_id}/locations/${var.region}/jobs/${google_cloud_run_v2_job.stage[each.key].name}:run"
    body        = base64encode("{}")
    headers = {
      "Content-Type" = "application/json"
    }

    oauth_token {
      service_account_email = google_service_account.scheduler.email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }

  depends_on = [google_cloud_run_v2_job_iam_member.scheduler_invokes]
}
