#!/usr/bin/python3
"""A test camera that nobody on the Porchlight team wrote: GStreamer's
gst-rtsp-server, serving live test sources.

Run with Debian's /usr/bin/python3 (it needs python3-gi and
gir1.2-gst-rtsp-server-1.0):

    /usr/bin/python3 tests/support/gst_rtsp_server.py --port 0 [--restart-every SECONDS]

Prints `READY rtsp://127.0.0.1:PORT` on stdout once listening. Mounts:

    /h264_aac   H.264 (x264, no B-frames, keyframe every 30) + AAC, 640x360 30 fps
    /h265_aac   H.265 (x265, open-gop=0, I420 input) + AAC
    /h264_pcmu  H.264 + G.711 mu-law 8 kHz mono

--restart-every N closes every client session each N seconds, like a camera
that reboots mid-stream; clients must reconnect.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

VIDEO_SRC = (
    "videotestsrc is-live=true pattern=ball ! "
    "video/x-raw,width=640,height=360,framerate=30/1,format=I420 ! "
)
H264 = (
    VIDEO_SRC
    + "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bframes=0 bitrate=800 ! "
    "video/x-h264,profile=main ! h264parse ! video/x-h264,alignment=au ! "
    "rtph264pay name=pay0 pt=96 config-interval=-1"
)
H265 = (
    VIDEO_SRC
    + 'x265enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=800 option-string="open-gop=0" ! '
    "h265parse ! video/x-h265,alignment=au ! "
    "rtph265pay name=pay0 pt=96 config-interval=-1"
)
AAC = (
    "audiotestsrc is-live=true wave=sine freq=440 ! audio/x-raw,rate=48000,channels=1 ! "
    "audioconvert ! avenc_aac bitrate=64000 ! aacparse ! rtpmp4gpay name=pay1 pt=97"
)
PCMU = (
    "audiotestsrc is-live=true wave=sine freq=440 ! audio/x-raw,rate=8000,channels=1 ! "
    "audioconvert ! mulawenc ! rtppcmupay name=pay1 pt=0"
)

MOUNTS = {
    "/h264_aac": f"( {H264} {AAC} )",
    "/h265_aac": f"( {H265} {AAC} )",
    "/h264_pcmu": f"( {H264} {PCMU} )",
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--restart-every", type=float, default=0.0)
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.bind)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for path, launch in MOUNTS.items():
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch)
        # One encoder per mount however many clients; no stale media after a restart.
        factory.set_shared(True)
        factory.set_eos_shutdown(False)
        mounts.add_factory(path, factory)

    if server.attach(None) == 0:
        print(f"cannot listen on {args.bind}:{args.port}", file=sys.stderr)
        return 1
    port = server.get_bound_port()
    print(f"READY rtsp://{args.bind}:{port}", flush=True)

    loop = GLib.MainLoop()

    def close_all_clients():
        def remove(_server, _client, *_):
            return GstRtspServer.RTSPFilterResult.REMOVE

        server.client_filter(remove)
        return True

    if args.restart_every > 0:
        GLib.timeout_add(int(args.restart_every * 1000), close_all_clients)

    def stop(*_):
        loop.quit()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # Let Python see signals while GLib runs.
    GLib.timeout_add(200, lambda: True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
