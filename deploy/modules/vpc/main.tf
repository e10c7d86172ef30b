# Networking of the pipeline: public subnets only, no NAT gateway (a NAT gateway costs
# about 32 USD a month per AZ before traffic; Batch instances get public IPs and reach AWS
# APIs and image registries through the internet gateway, S3 through a free gateway endpoint).

data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:only the first az_count zones are used (local.subnets), so a zone AWS adds later does not change the subnets
  state = "available"
}

data "aws_region" "current" {}

locals {
  # Keys are known at plan time ("0", "1", …), so modules may for_each over subnet maps.
  subnets = {
    for i in range(var.az_count) : tostring(i) => {
      az   = data.aws_availability_zones.available.names[i]
      cidr = cidrsubnet(var.cidr_block, var.subnet_newbits, i)
    }
  }
}

resource "aws_vpc" "this" {
  cidr_block           = var.cidr_block
  enable_dns_support   = true
  enable_dns_hostnames = true # EFS mount targets are found by DNS name

  tags = { Name = "${var.name}-vpc" }
}

# The default security group allows all traffic between its members: take every rule away
# so that nothing uses it by accident.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = { Name = "${var.name}-default-unused" }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = { Name = "${var.name}-igw" }
}

resource "aws_subnet" "public" {
  #checkov:skip=CKV_AWS_130:public IPs on launch are the design: Batch instances reach ECR, ECS and CloudWatch without a NAT gateway; their security group admits no inbound traffic
  for_each = local.subnets

  vpc_id                  = aws_vpc.this.id
  availability_zone       = each.value.az
  cidr_block              = each.value.cidr
  map_public_ip_on_launch = true

  tags = { Name = "${var.name}-public-${each.value.az}" }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  tags = { Name = "${var.name}-public" }
}

resource "aws_route" "internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  for_each = aws_subnet.public

  subnet_id      = each.value.id
  route_table_id = aws_route_table.public.id
}

# S3 traffic (scripts, data, outputs, models) stays on the AWS network, free of charge.
resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${data.aws_region.current.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.public.id]

  tags = { Name = "${var.name}-s3" }
}

resource "aws_flow_log" "this" {
  count = var.flow_logs_retention_days > 0 ? 1 : 0

  vpc_id               = aws_vpc.this.id
  traffic_type         = "REJECT"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow_logs[0].arn
  iam_role_arn         = aws_iam_role.flow_logs[0].arn
}

resource "aws_cloudwatch_log_group" "flow_logs" {
  #checkov:skip=CKV_AWS_158:rejected-connection records only; the CloudWatch Logs service key encrypts them, a customer key would add cost and a key policy to manage
  #checkov:skip=CKV_AWS_338:retention is the flow_logs_retention_days variable; a year of rejected-packet records is rarely worth its cost here
  count = var.flow_logs_retention_days > 0 ? 1 : 0

  name              = "/aws/vpc/${var.name}-flow-logs"
  retention_in_days = var.flow_logs_retention_days
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  count = var.flow_logs_retention_days > 0 ? 1 : 0

  name               = "${var.name}-vpc-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json
}

data "aws_iam_policy_document" "flow_logs" {
  count = var.flow_logs_retention_days > 0 ? 1 : 0

  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.flow_logs[0].arn}:*"]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  count = var.flow_logs_retention_days > 0 ? 1 : 0

  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs[0].id
  policy = data.aws_iam_policy_document.flow_logs[0].json
}

# ---- security groups --------------------------------------------------------------------

# Batch instances: no inbound rule at all; outbound anywhere (ECR, ECS, S3, CloudWatch, the
# models a job downloads).
resource "aws_security_group" "batch" {
  #checkov:skip=CKV2_AWS_5:attached in modules/batch (compute environments' security_group_ids), which the check does not follow across modules
  name        = "${var.name}-batch"
  description = "AWS Batch instances of ${var.name}: outbound only"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.name}-batch" }
}

resource "aws_vpc_security_group_egress_rule" "batch_all" {
  security_group_id = aws_security_group.batch.id
  description       = "Outbound to AWS APIs, registries and model hubs"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

# EFS mount targets: NFS (2049) from the Batch instances and from each security group in
# efs_client_security_group_ids (the hook for the gateway's tasks), nothing else.
resource "aws_security_group" "efs" {
  #checkov:skip=CKV2_AWS_5:attached in modules/efs (the mount targets), which the check does not follow across modules
  name        = "${var.name}-efs"
  description = "EFS mount targets of ${var.name}: NFS from Batch (and listed clients) only"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.name}-efs" }
}

resource "aws_vpc_security_group_ingress_rule" "efs_from_clients" {
  for_each = merge({ batch = aws_security_group.batch.id }, var.efs_client_security_group_ids)

  security_group_id            = aws_security_group.efs.id
  description                  = "NFS from ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = each.value
}
