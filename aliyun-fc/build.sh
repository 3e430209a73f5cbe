#!/bin/sh
# Builds the Function Compute custom-runtime package: a static linux/amd64
# bootstrap, zipped as code.zip (runtime custom.debian10/11/12, command
# /code/bootstrap, port 9000).
#
# Usage: build.sh [OUTDIR]   (default: this directory, where s.yaml looks)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$here"
rm -f "$out/bootstrap" "$out/code.zip"
GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$out/bootstrap" .
chmod 755 "$out/bootstrap"
if command -v zip >/dev/null 2>&1; then
	(cd "$out" && zip -q -X code.zip bootstrap)
else
	go run mkzip.go "$out/code.zip" "$out/bootstrap"
fi
echo "built $out/code.zip"
