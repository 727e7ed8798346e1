project_id  = "acme-data-prod"
region      = "europe-west1"
name_prefix = "acme-etl-prod"
image       = "europe-west1-docker.pkg.dev/acme-data-prod/acme-etl-prod-etl/etl:0.1.0"
brokers     = "10.10.0.11:9092,10.10.0.12:9092,10.10.0.13:9092"
topic       = "breadcrumbs"

public_key_pem = <<-PEM
  -----BEGIN PUBLIC KEY-----
  MIIBojANBgkqhkiG9w0BAQEFAAOCAY8AMIIBigKCAYEA...
  -----END PUBLIC KEY-----
PEM

schedules = {
  raw      = "*/15 * * * *"
  standard = "5 * * * *"
  reduce   = "30 3 * * *"
  query    = ""
}

vpc_network    = "projects/acme-data-prod/global/networks/data"
vpc_subnetwork = "projects/acme-data-prod/regions/europe-west1/subnetworks/jobs"

labels = {
  team = "data-platform"
  env  = "prod"
}
