terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.25"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.7"
    }
  }

  # Partial configuration: bucket, region and dynamodb_table come from
  # `terraform init -backend-config=…` (deploy/README.md; deploy/bootstrap creates them).
  backend "s3" {
    key     = "ml-pipeline/terraform.tfstate"
    encrypt = true
  }
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, {
      Project   = var.project_name
      ManagedBy = "terraform"
      Component = "ml-pipeline"
    })
  }
}
