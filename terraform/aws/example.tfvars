region      = "eu-west-1"
name_prefix = "acme-etl-prod"
image_tag   = "0.1.0"
brokers     = "b-1.kafka.internal:9094,b-2.kafka.internal:9094,b-3.kafka.internal:9094"
topic       = "breadcrumbs"

public_key_pem = <<-PEM
  -----BEGIN PUBLIC KEY-----
  MIIBojANBgkqhkiG9w0BAQEFAAOCAY8AMIIBigKCAYEA...
  -----END PUBLIC KEY-----
PEM

vpc_id            = "vpc-0123456789abcdef0"
subnet_ids        = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
kafka_cidr_blocks = ["10.20.0.0/16"]

schedules = {
  raw      = "cron(*/15 * * * ? *)"
  standard = "cron(5 * * * ? *)"
  reduce   = "cron(30 3 * * ? *)"
  query    = ""
}

tags = {
  team = "data-platform"
  env  = "prod"
}
