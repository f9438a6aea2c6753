#!/usr/bin/python3
"""An RTSP camera served by GStreamer's RTSP server (gst-rtsp-server, not
gortsplib): an implementation nobody at Vigil wrote, for interoperability
tests. Started by internal/testrig (StartGstCamera); usable by hand too.

Debian packages (installed by `make deps`): python3-gi gir1.2-gst-rtsp-server-1.0
gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
gstreamer1.0-tools.

usage: gst-rtsp-camera.py [--port 0] [--minutes 2] [--user U --password P [--digest]]
                          NAME=FILE [NAME=FILE ...]
FILE is an MP4 (H.264 or H.265, passed through, looped for --minutes) or an
MPEG-TS (served as it is: a stream whose resolution or codec changes).
Prints one JSON object per line on stdout:
  {"listening": PORT}                          once the server listens
  {"served": NAME, "wall": UNIX_SECONDS, "pts": SECONDS}
                                               for each stream's first buffer
                                               that leaves the payloader, and
                                               for every buffer flagged with
                                               --trace NAME (one line a frame)
Stops on SIGTERM / SIGINT."""
import argparse, json, os, signal, socket, subprocess, sys, tempfile, time
import gi
gi.require_version('Gst', '1.0'); gi.require_version('GstRtsp', '1.0'); gi.require_version('GstRtspServer', '1.0')
from gi.repository import Gst, GstRtsp, GstRtspServer, GLib


def say(obj):
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()


def probe(path, entries):
    out = subprocess.run(['ffprobe', '-v', 'error', '-select_streams', 'v:0', '-show_entries', entries,
                          '-of', 'csv=p=0', path], check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[0].strip().rstrip(',')


def free_port():
    s = socket.socket(); s.bind(('127.0.0.1', 0)); p = s.getsockname()[1]; s.close()
    return p


class Factory(GstRtspServer.RTSPMediaFactory):
    """One shared pipeline per path, like a camera: every client sees the
    same live stream. Reports when frames leave the payloader."""

    def __init__(self, name, launch, trace):
        super().__init__()
        self.name, self.trace, self.last = name, trace, None
        self.set_launch(launch)
        self.set_shared(True)

    def do_configure(self, media):
        pay = media.get_element().get_by_name('pay0')
        pay.get_static_pad('src').add_probe(Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, self.on_data)

    def on_data(self, pad, info):
        # Each buffer is one RTP packet, pushed alone or in a list; a
        # frame's packets share a timestamp.
        if info.type & Gst.PadProbeType.BUFFER_LIST:
            bl = info.get_buffer_list()
            for i in range(bl.length()):
                self.on_packet(bl.get(i))
        else:
            self.on_packet(info.get_buffer())
        return Gst.PadProbeReturn.OK

    def on_packet(self, buf):
        ts = rtp_timestamp(buf)
        if ts is not None and ts != self.last and (self.last is None or self.trace):
            say({'served': self.name, 'wall': time.time(), 'pts': buf.pts / 1e9, 'rtp': ts})
        self.last = ts


def rtp_timestamp(buf):
    """The RTP timestamp of an outgoing packet: bytes 4..8 of its header."""
    ok, info = buf.map(Gst.MapFlags.READ)
    if not ok:
        return None
    try:
        d = bytes(info.data[:12])
        return int.from_bytes(d[4:8], 'big') if len(d) >= 12 else None
    finally:
        buf.unmap(info)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--user'); ap.add_argument('--password')
    ap.add_argument('--digest', action='store_true', help='digest authentication instead of basic')
    ap.add_argument('--minutes', type=float, default=2, help='how long each MP4 stream runs before it ends')
    ap.add_argument('--trace', action='append', default=[], help='report every buffer of this stream')
    ap.add_argument('streams', nargs='+', help='NAME=FILE')
    a = ap.parse_args()
    Gst.init(None)
    port = a.port or free_port()
    server = GstRtspServer.RTSPServer()
    server.set_address('127.0.0.1'); server.set_service(str(port))
    mounts = server.get_mount_points()
    if a.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, 'user')
        if a.digest:
            auth.add_digest(a.user, a.password, token)
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        else:
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(a.user, a.password), token)
        server.set_auth(auth)
    tmp = tempfile.mkdtemp(prefix='gst-rtsp-camera-')
    for spec in a.streams:
        name, path = spec.split('=', 1)
        if path.endswith('.ts'):
            # MPEG-TS as it is: its codec or resolution may change mid-stream.
            launch = (f'( filesrc location="{path}" ! tsdemux ! h264parse config-interval=-1 ! '
                      f'rtph264pay name=pay0 pt=96 config-interval=-1 )')
        else:
            codec = probe(path, 'stream=codec_name')
            dur = float(probe(path, 'format=duration'))
            loops = max(0, int(a.minutes * 60 / dur))
            long = os.path.join(tmp, name + '.mp4')
            # A camera never ends: repeat the clip (stream copy, timestamps
            # kept continuous by ffmpeg) until it lasts --minutes.
            subprocess.run(['ffmpeg', '-v', 'error', '-y', '-stream_loop', str(loops), '-i', path,
                            '-c', 'copy', '-an', long], check=True)
            if codec == 'hevc':
                launch = (f'( filesrc location="{long}" ! qtdemux ! h265parse config-interval=-1 ! '
                          f'rtph265pay name=pay0 pt=96 config-interval=-1 )')
            else:
                launch = (f'( filesrc location="{long}" ! qtdemux ! h264parse config-interval=-1 ! '
                          f'rtph264pay name=pay0 pt=96 config-interval=-1 )')
        f = Factory(name, launch, name in a.trace)
        if a.user:
            perm = GstRtspServer.RTSPPermissions()
            perm.add_permission_for_role('user', 'media.factory.access', True)
            perm.add_permission_for_role('user', 'media.factory.construct', True)
            f.set_permissions(perm)
        mounts.add_factory('/' + name, f)
    if server.attach(None) == 0:
        sys.exit(f'gst-rtsp-camera: cannot listen on 127.0.0.1:{port}')
    say({'listening': port, 'gstreamer': Gst.version_string()})
    loop = GLib.MainLoop()
    for s in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, s, loop.quit)
    loop.run()


if __name__ == '__main__':
    main()
