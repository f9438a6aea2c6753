#!/usr/bin/env bash
# Fails when a pinned module drifted (e.g. `go mod tidy` "upgrading" gocv to
# a version that does not build against Debian's OpenCV 4.6).
set -euo pipefail
want=(
  "github.com/bluenviron/gortsplib/v4 v4.16.2"
  "github.com/bluenviron/mediacommon/v2 v2.4.1"
  "gocv.io/x/gocv v0.31.0"
  "github.com/dgraph-io/badger/v4 v4.9.6"
  "github.com/gorilla/websocket v1.5.3"
  "github.com/pion/rtp v1.8.21"
)
rc=0
for w in "${want[@]}"; do
  mod=${w% *}
  got=$(go list -m "$mod")
  if [ "$got" != "$w" ]; then echo "version drift: have '$got', want '$w'" >&2; rc=1; fi
done
exit $rc
