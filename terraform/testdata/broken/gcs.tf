# DELIBERATELY BROKEN: a GCS raw-layer bucket that breaks every rule terraform/gcp follows.
# scripts/tf-check.sh (--expect-fail) and tests/terraform.rs assert that their checks FAIL on
# this directory, which proves the checks can fail. Never apply it.
terraform {
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.14.0, < 7.0.0"
    }
  }
}

variable "force_destroy" {
  type    = bool
  default = true
}

# Hot class for a cold layer, no lifecycle rules, no soft delete, no versioning, fine-grained
# ACLs, public access prevention left to "inherited", force_destroy on by default.
resource "google_storage_bucket" "raw" {
  name          = "broken-etl-raw"
  location      = "EU"
  storage_class = "STANDARD"
  force_destroy = var.force_destroy

  uniform_bucket_level_access = false
  public_access_prevention    = "inherited"

  labels = {
    layer = "raw"
  }
}

# ... and the whole internet may read it.
resource "google_storage_bucket_iam_member" "public_read" {
  bucket = google_storage_bucket.raw.name
  role   = "roles/storage.objectViewer"
  member = "allUsers"
}

# The raw job's identity may administer every bucket and read the private key.
resource "google_service_account" "raw" {
  account_id = "broken-etl-raw"
}

resource "google_project_iam_member" "raw_admin" {
  project = "broken-project"
  role    = "roles/storage.admin"
  member  = "serviceAccount:${google_service_account.raw.email}"
}

resource "google_secret_manager_secret" "private_key" {
  secret_id = "broken-etl-private-key"

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_iam_member" "raw_reads_private_key" {
  secret_id = google_secret_manager_secret.private_key.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.raw.email}"
}
