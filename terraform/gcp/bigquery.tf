# BigQuery reads the Parquet layers in place: one external table per layer and table, with hive
# partitioning inferred from the directory names (standard/<table>/service_date=2022-12-12/...).
# Readers need BigQuery Data Viewer on the dataset and objectViewer on the bucket behind the table
# (or put a BigLake connection in front; not done here).

resource "google_bigquery_dataset" "lake" {
  dataset_id                 = replace("${var.name_prefix}_lake", "-", "_")
  friendly_name              = "etl lake"
  description                = "External tables over the etl standard and archive layers (Parquet in GCS)."
  location                   = local.bucket_location
  delete_contents_on_destroy = false

  labels = local.labels

  #checkov:skip=CKV_GCP_81:The dataset holds only external table definitions; the data stays in the GCS buckets.
}

locals {
  external_tables = merge([
    for t in var.bigquery_tables : {
      "${t}_standard" = { layer = "standard", table = t, bucket = google_storage_bucket.standard.name }
      "${t}_archive"  = { layer = "archive", table = t, bucket = google_storage_bucket.archive.name }
    }
  ]...)
}

resource "google_bigquery_table" "layer" {
  for_each = local.external_tables

  dataset_id          = google_bigquery_dataset.lake.dataset_id
  table_id            = each.key
  description         = "${each.value.table} in the ${each.value.layer} layer (gs://${each.value.bucket}/${each.value.layer}/${each.value.table}/)."
  deletion_protection = true

  labels = merge(local.labels, { layer = each.value.layer })

  external_data_configuration {
    autodetect    = true
    source_format = "PARQUET"
    source_uris   = ["gs://${each.value.bucket}/${each.value.layer}/${each.value.table}/*"]

    hive_partitioning_options {
      mode                     = "AUTO"
      source_uri_prefix        = "gs://${each.value.bucket}/${each.value.layer}/${each.value.table}/"
      require_partition_filter = false
    }
  }

  #checkov:skip=CKV_GCP_80:External table: no data is stored in BigQuery, the Parquet files are in GCS.
}
