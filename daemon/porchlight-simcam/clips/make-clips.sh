#!/bin/sh
# Regenerates the clips bundled into porchlight-simcam (embedded with
# include_bytes! in src/clip.rs). The committed files were made with exactly
# these commands, using ffmpeg 5.1 (Debian 12) with libx264 and the native
# AAC encoder. Re-running needs no input files: everything comes from lavfi
# test sources. Run from anywhere; output lands next to this script.
#
# Video: testsrc2 (moving gradients, sweeping lines, a frame counter) with
# light temporal noise so the encoder spends its bit budget the way a real
# sensor makes it. H.264 High profile, no B-frames, an IDR every 30 frames
# (1 s), an access unit delimiter before every frame and SPS/PPS repeated
# before every IDR, as raw Annex-B.
#   hd.h264: 1920x1080, 30 fps, ~4 Mbit/s, 2 s = 60 frames
#   sd.h264:  640x360,  30 fps, ~1 Mbit/s, 4 s = 120 frames
# Audio: audio.aac, a 880 Hz beep every second, AAC-LC 48 kHz mono
# ~64 kbit/s in ADTS, 4 s (189 AAC frames incl. encoder priming). The audio
# loop is independent of the video loop; each keeps its own timestamps.
set -eu
cd "$(dirname "$0")"

X264="-c:v libx264 -preset medium -profile:v high -pix_fmt yuv420p -bf 0 -g 30 -keyint_min 30 -sc_threshold 0 -x264-params aud=1:repeat-headers=1"

ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=2,noise=alls=12:allf=t" \
  $X264 -b:v 4M -maxrate 4.4M -bufsize 4M -f h264 hd.h264

ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=640x360:rate=30:duration=4,noise=alls=12:allf=t" \
  $X264 -b:v 1M -maxrate 1.1M -bufsize 1M -f h264 sd.h264

ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "sine=frequency=880:beep_factor=4:sample_rate=48000:duration=4" \
  -c:a aac -b:a 64k -ac 1 -f adts audio.aac

ls -l hd.h264 sd.h264 audio.aac
