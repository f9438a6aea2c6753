#!/usr/bin/env bash
# Installs, upgrades or rolls back Vigil on a Debian 12 box.
#
#   deploy/install.sh edge|central [--root DIR] [--binary PATH]
#   deploy/install.sh rollback     [--root DIR]
#
# edge|central: creates the system user `vigil`, /etc/vigil (config, kept
# on upgrade), /var/lib/vigil (state), installs the binary (the previous
# one is kept as vigil.prev for rollback) and the systemd unit, installs
# the runtime libraries and enables the service. --root installs into a
# directory instead of / (used by the tests, and to prepare an image); it
# skips apt and systemctl, which act on the running system.
set -euo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage
role=$1; shift
root=""
binary=""
while [ $# -gt 0 ]; do
  case $1 in
    --root) root=${2%/}; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    *) usage ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
bindir=$root/usr/local/bin
say() { echo "install: $*"; }

if [ "$role" = rollback ]; then
  [ -x "$bindir/vigil.prev" ] || { echo "install: no previous version to roll back to" >&2; exit 1; }
  mv -f "$bindir/vigil.prev" "$bindir/vigil"
  say "rolled back to the previous binary"
  [ -z "$root" ] && systemctl try-restart vigil-edge.service vigil-central.service || true
  exit 0
fi
case $role in edge|central) ;; *) usage ;; esac
if [ -z "$binary" ]; then
  # Central runs the static central-only binary (no cgo, no FFmpeg or
  # OpenCV) when it was built; an edge needs the full one.
  binary="bin/vigil"
  [ "$role" = central ] && [ -x bin/vigil-central ] && binary="bin/vigil-central"
fi
[ -x "$binary" ] || { echo "install: $binary is not an executable (run 'make build' first)" >&2; exit 1; }

if [ -z "$root" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "install: run as root" >&2; exit 1; }
fi
if [ -z "$root" ] && [ "$(basename "$binary")" != vigil-central ]; then
  # Runtime libraries only: OpenCV 4.6 and FFmpeg 5.1 as Debian 12 ships them.
  apt-get install -y -qq --no-install-recommends libopencv-core406 libopencv-imgproc406 libopencv-highgui406 \
    libopencv-videoio406 libopencv-objdetect406 libopencv-calib3d406 libopencv-features2d406 libopencv-dnn406 \
    libopencv-photo406 libopencv-flann406 \
    libopencv-video406 libopencv-imgcodecs406 libavcodec59 libavformat59 libswscale6 libavutil57 >/dev/null
fi

# The service user: no login, no home.
useradd_root=()
[ -n "$root" ] && useradd_root=(--prefix "$root")
if ! grep -q '^vigil:' "$root/etc/passwd" 2>/dev/null; then
  groupadd "${useradd_root[@]}" --system vigil 2>/dev/null || true
  useradd "${useradd_root[@]}" --system --gid vigil --no-create-home --home-dir /var/lib/vigil --shell /usr/sbin/nologin vigil
  say "created system user vigil"
fi
if [ "$role" = edge ] && ! grep -q '^gpio:' "$root/etc/group"; then
  groupadd "${useradd_root[@]}" --system gpio
fi

install -d -m 0755 "$bindir" "$root/etc/systemd/system" "$root/usr/share/doc/vigil"
install -d -m 0750 "$root/etc/vigil"
install -d -m 0750 "$root/var/lib/vigil"
if [ "$role" = edge ]; then
  # The edge writes its own config: numbered revisions from the setup page
  # and from central replace edge.yaml atomically (a rename in this
  # directory), so the service's group may write here.
  chmod 0770 "$root/etc/vigil"
fi
if [ -z "$root" ]; then
  chown root:vigil /etc/vigil
  chown vigil:vigil /var/lib/vigil
fi

# Upgrade keeps the running version for `install.sh rollback`.
if [ -x "$bindir/vigil" ]; then
  cp -p "$bindir/vigil" "$bindir/vigil.prev"
  say "kept the previous binary as vigil.prev"
fi
install -m 0755 "$binary" "$bindir/vigil.new"
mv -f "$bindir/vigil.new" "$bindir/vigil"

# Config: an example the first time, never overwritten afterwards.
conf=$root/etc/vigil/$role.yaml
if [ ! -e "$conf" ]; then
  install -m 0640 "$here/$role.example.yaml" "$conf"
  say "wrote $conf from the example: edit it before starting"
fi
if [ -z "$root" ]; then
  chgrp vigil "$conf"
  [ "$role" = edge ] && chmod 0660 "$conf"
fi
install -m 0644 "$here/systemd/vigil-$role.service" "$root/etc/systemd/system/vigil-$role.service"
[ -f "$here/../README.md" ] && install -m 0644 "$here/../README.md" "$root/usr/share/doc/vigil/README.md"

if [ -z "$root" ]; then
  systemctl daemon-reload
  systemctl enable "vigil-$role.service" >/dev/null
  say "enabled vigil-$role; start it with: systemctl start vigil-$role"
else
  say "installed into $root (apt and systemctl skipped)"
fi
