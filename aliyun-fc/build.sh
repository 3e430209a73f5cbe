#!/bin/sh
# Builds the Function Compute custom-runtime package: a static linux/amd64
# bootstrap, zipped as code.zip (runtime custom.debian10/11/12, command
# /code/bootstrap, port 9000).
set -eu
cd "$(dirname "$0")"
rm -f bootstrap code.zip
GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o bootstrap .
chmod 755 bootstrap
if command -v zip >/dev/null 2>&1; then
	zip -q -X code.zip bootstrap
else
	go run mkzip.go code.zip bootstrap
fi
echo "built $(pwd)/code.zip"
