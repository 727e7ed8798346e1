terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70.0, < 7.0.0"
    }
  }

  # State lives in an S3 bucket made once by hand (see ../README.md), e.g.
  #   terraform init -backend-config="bucket=acme-tf-state" -backend-config="key=etl/prod.tfstate" \
  #     -backend-config="region=eu-west-1" -backend-config="use_lockfile=true"
  backend "s3" {}
}

provider "aws" {
  region = var.region

  # Tags on every taggable resource.
  default_tags {
    tags = local.tags
  }
}
