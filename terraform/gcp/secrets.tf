# The private key opens every raw object. Terraform creates the secret but never its value (which
# would then sit in the state): add a version by hand, see ../README.md.
resource "google_secret_manager_secret" "private_key" {
  secret_id = "${var.name_prefix}-etl-private-key"

  replication {
    auto {}
  }

  labels = local.labels
}

# The public key is not secret; it is kept in Secret Manager so Cloud Run can mount it as a file.
resource "google_secret_manager_secret" "public_key" {
  secret_id = "${var.name_prefix}-etl-public-key"

  replication {
    auto {}
  }

  labels = local.labels
}

resource "google_secret_manager_secret_version" "public_key" {
  secret      = google_secret_manager_secret.public_key.id
  secret_data = "${trimspace(var.public_key_pem)}\n"
}
