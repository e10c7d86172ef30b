#!/usr/bin/env bash
# build-and-push.sh REGION ACCOUNT_ID PROJECT_NAME [IMAGE]
#
# Builds the images for linux/amd64 with docker buildx and pushes them to Amazon ECR,
# in the repository PROJECT_NAME-IMAGE (created when missing, scanned on push), tagged
# with the git revision and `latest`. IMAGE is one of
#
#   ml-python-slim  Python 3.11, FFmpeg, PyTorch (CPU), faster-whisper, pyannote.audio (~2 min)
#   ml-python       CUDA 12.2, TensorFlow 2.15, PyTorch 2.1, for GPU jobs (~15-20 min)
#   ml-gateway      the HTTP gateway (~2 min)
#
# and without IMAGE all three are built, in that order. The last lines printed are the
# ECR URIs, tagged with the revision: a job image's goes into terraform.tfvars as
# `ml_container_image`.
#
# Needs docker with the buildx plugin, the AWS CLI v2 with credentials for ACCOUNT_ID,
# and git. MLGW_IMAGE_TAG overrides the revision tag (a tree that is not a git checkout).
# Exit status: 0 all pushed, 1 a step failed (named on stderr), 2 bad usage.
set -euo pipefail

IMAGES=(ml-python-slim ml-python ml-gateway)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

usage() {
  cat >&2 <<EOF
usage: $(basename "$0") REGION ACCOUNT_ID PROJECT_NAME [IMAGE]
  REGION        AWS region, e.g. us-east-1
  ACCOUNT_ID    12-digit AWS account ID (aws sts get-caller-identity --query Account --output text)
  PROJECT_NAME  the Terraform project name; the ECR repositories are PROJECT_NAME-IMAGE
  IMAGE         ${IMAGES[*]} (default: all)
EOF
}

die() {
  echo "build-and-push.sh: $*" >&2
  exit 1
}

bad_usage() {
  echo "build-and-push.sh: $*" >&2
  usage
  exit 2
}

# The Dockerfile and build context of each image.
dockerfile_of() {
  case $1 in
    ml-gateway) echo "$here/gateway/Dockerfile" ;;
    *) echo "$here/$1/Dockerfile" ;;
  esac
}
context_of() {
  case $1 in
    ml-gateway) echo "$root" ;;
    *) echo "$here" ;;
  esac
}

check_args() {
  if [[ $# -lt 3 || $# -gt 4 ]]; then
    bad_usage "expected 3 or 4 arguments, got $#"
  fi
  [[ $1 =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]] || bad_usage "REGION '$1' is not an AWS region (us-east-1, eu-west-2, ...)"
  [[ $2 =~ ^[0-9]{12}$ ]] || bad_usage "ACCOUNT_ID '$2' is not a 12-digit AWS account ID"
  # ECR repository names: lower case, digits and single separators; PROJECT_NAME-IMAGE
  # must stay within 256 characters.
  if [[ ! $3 =~ ^[a-z0-9]+([._-][a-z0-9]+)*$ || ${#3} -gt 200 ]]; then
    bad_usage "PROJECT_NAME '$3' is not usable in an ECR repository name (lower case letters, digits, '-', '_', '.')"
  fi
  if [[ $# -eq 4 ]]; then
    local known
    for known in "${IMAGES[@]}"; do
      [[ $4 == "$known" ]] && return 0
    done
    bad_usage "unknown IMAGE '$4'"
  fi
}

check_tools() {
  local tool
  for tool in docker aws git; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not on PATH (see images/README.md, Prerequisites)"
  done
  docker buildx version >/dev/null 2>&1 ||
    die "docker buildx is not available (install the docker-buildx plugin)"
}

revision() {
  if [[ -n ${MLGW_IMAGE_TAG:-} ]]; then
    [[ $MLGW_IMAGE_TAG =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] ||
      die "MLGW_IMAGE_TAG '$MLGW_IMAGE_TAG' is not a valid image tag"
    echo "$MLGW_IMAGE_TAG"
    return
  fi
  local rev
  rev=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null) ||
    die "cannot read the git revision of $root (set MLGW_IMAGE_TAG)"
  if [[ -n $(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    echo "build-and-push.sh: warning: uncommitted changes; tagging $rev-dirty" >&2
    rev=$rev-dirty
  fi
  echo "$rev"
}

ecr_login() { # REGION REGISTRY
  echo "==> logging in to $2" >&2
  # The password goes through a pipe, never an argument.
  aws ecr get-login-password --region "$1" |
    docker login --username AWS --password-stdin "$2" >/dev/null ||
    die "ECR login to $2 failed (are the AWS credentials for this account?)"
}

ensure_repository() { # REGION REPOSITORY
  local out
  if out=$(aws ecr describe-repositories --region "$1" --repository-names "$2" \
    --query 'repositories[0].repositoryUri' --output text 2>&1); then
    return 0
  fi
  if [[ $out != *RepositoryNotFoundException* ]]; then
    die "cannot look up the ECR repository $2: $out"
  fi
  echo "==> creating the ECR repository $2" >&2
  aws ecr create-repository --region "$1" --repository-name "$2" \
    --image-scanning-configuration scanOnPush=true --image-tag-mutability MUTABLE \
    --encryption-configuration encryptionType=AES256 >/dev/null ||
    die "cannot create the ECR repository $2"
}

build_and_push() { # IMAGE URI REVISION
  local image=$1 uri=$2 rev=$3
  echo "==> building $image for linux/amd64 and pushing $uri:$rev and $uri:latest" >&2
  docker buildx build --platform linux/amd64 \
    --file "$(dockerfile_of "$image")" \
    --tag "$uri:$rev" --tag "$uri:latest" \
    --label "org.opencontainers.image.title=$image" \
    --label "org.opencontainers.image.revision=$rev" \
    --provenance=false --push \
    "$(context_of "$image")" ||
    die "building or pushing $image failed"
}

main() {
  check_args "$@"
  local region=$1 account=$2 project=$3
  local images=("${IMAGES[@]}")
  [[ $# -eq 4 ]] && images=("$4")
  check_tools
  local rev registry
  rev=$(revision)
  registry=$account.dkr.ecr.$region.amazonaws.com

  ecr_login "$region" "$registry"
  local image pushed=()
  for image in "${images[@]}"; do
    ensure_repository "$region" "$project-$image"
    build_and_push "$image" "$registry/$project-$image" "$rev"
    pushed+=("$image")
  done

  echo "" >&2
  echo "Pushed. ECR image URIs (ml_container_image in terraform.tfvars takes a job image's):" >&2
  for image in "${pushed[@]}"; do
    printf '%-15s %s\n' "$image" "$registry/$project-$image:$rev"
  done
}

main "$@"
