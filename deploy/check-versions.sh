#!/usr/bin/env bash
# Fails when a pinned module drifted (e.g. `go mod tidy` "upgrading" gocv to
# a version that does not build against Debian's OpenCV 4.6).
#
# gortsplib v4.16.2 misreads (and writes) the NTP fraction of RTCP sender
# reports (upstream #869/#870, fixed after v4.16.2; v4.16.3 is an empty stub):
# Vigil reads and writes sender reports itself (streams/rtcptime) and must
# not use Client.PacketNTP or the server's own reports — the grep below
# keeps it so.
set -euo pipefail
want=(
  "github.com/bluenviron/gortsplib/v4 v4.16.2"
  "github.com/pion/rtcp v1.2.15"
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
if git grep -n -e '\.PacketNTP(' -- '*.go' ':!*_test.go' >/dev/null 2>&1; then
  echo "gortsplib's PacketNTP misreads sender reports: use streams/rtcptime" >&2
  git grep -n -e '\.PacketNTP(' -- '*.go' ':!*_test.go' >&2; rc=1
fi
exit $rc
