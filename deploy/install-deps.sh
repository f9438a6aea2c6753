#!/usr/bin/env bash
# Installs the Debian 12 packages Vigil needs to build, test and run the
# demo — only those missing, quietly. Idempotent; run as root (or with sudo).
#   build:  libopencv-dev pkg-config g++ (pulls FFmpeg 5.1 dev libraries)
#   tests:  ffmpeg (clips, ffprobe), opencv-doc (real sample footage),
#           mosquitto (MQTT broker), chromium, nodejs, npm (console tests),
#           fonts-wqy-zenhei (Chinese text in the console's screenshots),
#           openssl (a court's by-hand check of a bundle's signature),
#           iproute2 (ONVIF discovery over multicast in a network namespace),
#           GStreamer's RTSP server as an independent camera (python3-gi,
#           gir1.2-gst-rtsp-server-1.0, plugins base/good/bad) and its tools
#           as a judge of our files (gst-launch-1.0, gst-discoverer-1.0,
#           avdec_h264/h265 from gstreamer1.0-libav),
#           python3-pymodbus (an independent Modbus TCP server for the sensor tests),
#           kamailio (SIP registrar with digest auth playing a GB/T 28181
#           platform) and sip-tester (SIPp scenarios playing the platform),
#           postgresql (a throwaway cluster for central's PostgreSQL store tests)
set -euo pipefail
pkgs=(libopencv-dev pkg-config g++ ffmpeg opencv-doc mosquitto chromium fonts-wqy-zenhei openssl iproute2
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-libav gstreamer1.0-tools gstreamer1.0-plugins-base-apps python3-pymodbus
  kamailio sip-tester postgresql)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm for the console's browser tests (npm ci: playwright-core),
# by command: a NodeSource nodejs already brings npm.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Kamailio and PostgreSQL are test peers only: their Debian services
# would hold ports (5060, which an edge's GB/T 28181 device uses; 5432)
# and the tests start their own, so they must not run as services.
if command -v systemctl >/dev/null; then
  for svc in kamailio postgresql; do
    if [[ " ${missing[*]} " == *" $svc "* ]]; then
      $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
  done
fi
echo "deps: done"
