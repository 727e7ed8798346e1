terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 4.9.0, < 5.0.0"
    }
  }

  # State lives in a storage account made once by hand (see ../README.md), e.g.
  #   terraform init -backend-config="resource_group_name=tfstate" \
  #     -backend-config="storage_account_name=acmetfstate" -backend-config="container_name=tfstate" \
  #     -backend-config="key=etl/prod.tfstate" -backend-config="use_azuread_auth=true"
  backend "azurerm" {}
}

provider "azurerm" {
  subscription_id = var.subscription_id

  # Shared keys are disabled on the lake accounts: the provider talks to storage with Entra ID.
  storage_use_azuread = true

  features {
    key_vault {
      purge_soft_delete_on_destroy = false
    }
    resource_group {
      prevent_deletion_if_contains_resources = true
    }
  }
}
