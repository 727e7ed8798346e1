terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.14.0, < 7.0.0"
    }
  }

  # State lives in a bucket made once by hand (see ../README.md), e.g.
  #   terraform init -backend-config="bucket=my-tf-state" -backend-config="prefix=etl/prod"
  backend "gcs" {}
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = local.labels
}
