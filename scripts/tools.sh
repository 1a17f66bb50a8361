#!/usr/bin/env bash
# Installs the local toolchain the project needs into project-local venvs.
# ministack and aws-sam-cli pin conflicting botocore versions, so each gets its own venv.
# Idempotent: a venv whose pinned packages are already installed is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

MINISTACK_VERSION=1.5.33
# ministack applies the SAM transform with aws-sam-translator (its optional "full" extra, of
# which we need only this); boto3 pinned to match ministack's exact botocore pin.
SAM_TRANSLATOR_VERSION=1.115.0
MINISTACK_BOTO_VERSION=1.43.106
SAM_VERSION=1.170.0
CFN_LINT_VERSION=1.53.3
CARGO_LAMBDA_VERSION=1.9.2
# The template's security checks (make validate). Its own venv: it pins its own boto3 and
# cloudformation parsers, which must not move the SAM venv's.
CHECKOV_VERSION=3.3.30

VENVS=.local/venvs
mkdir -p "$VENVS"

ensure_venv() { # name, marker, packages...
  local name=$1 marker=$2; shift 2
  local dir="$VENVS/$name"
  if [ -f "$dir/.installed-$marker" ]; then return 0; fi
  echo "==> installing $name venv: $*"
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
  touch "$dir/.installed-$marker"
}

ensure_venv ministack "$MINISTACK_VERSION-$SAM_TRANSLATOR_VERSION" "ministack==$MINISTACK_VERSION" \
  "aws-sam-translator==$SAM_TRANSLATOR_VERSION" "botocore==$MINISTACK_BOTO_VERSION" "boto3==$MINISTACK_BOTO_VERSION"
ensure_venv sam "$SAM_VERSION-$CFN_LINT_VERSION-$CARGO_LAMBDA_VERSION" \
  "aws-sam-cli==$SAM_VERSION" "cfn-lint==$CFN_LINT_VERSION" "cargo-lambda==$CARGO_LAMBDA_VERSION"
ensure_venv checkov "$CHECKOV_VERSION" "checkov==$CHECKOV_VERSION"
echo "==> tools ready in $VENVS"
