#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine: installs what the tests
# need (ffmpeg, GStreamer's RTSP server, systemd-analyze), then runs format,
# lint, every test, and the packaging checks. Idempotent; run from anywhere.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
[ -n "${CI:-}" ] && export CARGO_TERM_COLOR=never

step_start=0
step() {
  if [ "$step_start" -ne 0 ]; then echo "   ($(( $(date +%s) - step_start )) s)"; fi
  step_start=$(date +%s)
  echo
  echo "==> $*"
}

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

step "system packages"
packages=(
  ffmpeg                                   # ffprobe checks every file we write
  gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi   # a real RTSP server nobody here wrote
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
  systemd                                  # systemd-analyze verify
  util-linux                               # mount (small tmpfs for the disk-full test)
  chromium                                 # a real browser plays exported clips
  openssl tar                              # evidence packages check out with plain OpenSSL and tar
  mosquitto mosquitto-clients              # a real MQTT broker (and mosquitto_sub/pub) for the Home Assistant tests
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev clang pkg-config   # the ffmpeg feature
  debootstrap dpkg-dev                     # the .deb: built (dpkg-shlibdeps), installed into a throwaway Debian root
  g++                                      # cargo fuzz builds libFuzzer (C++)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node drives the browser; keep whatever Node the machine has (it may not be Debian's).
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_if_needed apt-get update -q
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "all present"
fi
if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust with rustup (https://rustup.rs), then run this again" >&2
  exit 1
fi

export PORCHLIGHT_SYSTEM_PYTHON=/usr/bin/python3

step "browser test driver (playwright-core, driving Debian's chromium)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors), with and without the ffmpeg feature"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "cargo test (unit, integration against simcam, GStreamer, ffprobe, crash, disk full)"
cargo test --workspace --all-features --locked

step "fuzz (brief): every cargo fuzz target, ${PORCHLIGHT_FUZZ_SECONDS:-20} s each"
# Installs cargo-fuzz only when absent; any crash, hang or memory blow-up
# fails the suite. Unoptimised (--dev) so the cold build fits on 2 cores;
# the long optimised run is scripts/fuzz.sh (docs/fuzzing.md).
PORCHLIGHT_FUZZ_BUILD="${PORCHLIGHT_FUZZ_BUILD:---dev}" scripts/fuzz.sh "${PORCHLIGHT_FUZZ_SECONDS:-20}"

step "systemd unit verifies"
unit_dir="$(mktemp -d)"
trap 'rm -rf "$unit_dir"' EXIT
# verify checks ExecStart exists: point it at the binary we just built.
sed "s|^ExecStart=/usr/bin/porchlight|ExecStart=$repo/target/debug/porchlight|" packaging/porchlight.service > "$unit_dir/porchlight.service"
verify_out="$(systemd-analyze verify "$unit_dir/porchlight.service" 2>&1 || true)"
echo "$verify_out"
# Lines about the host's own units (no systemd running in CI) are not ours.
if echo "$verify_out" | grep -F "porchlight.service" | grep -viE "not found|no such file" | grep -q .; then
  echo "systemd-analyze verify reported problems in porchlight.service" >&2
  exit 1
fi
systemd-analyze security --offline=true "$unit_dir/porchlight.service" 2>/dev/null | tail -1 || true

step "dependency advisories"
# CI cannot reach the advisory database; with a local copy, the check runs.
if [ -n "${PORCHLIGHT_ADVISORY_DB:-}" ]; then
  python3 scripts/audit.py --db "$PORCHLIGHT_ADVISORY_DB"
else
  echo "skipped: set PORCHLIGHT_ADVISORY_DB to a checkout of the RustSec advisory database"
fi

step "the shipped config checks clean"
target/debug/porchlight check-config --config config.example.toml >/dev/null

step "the .deb builds and installs into a throwaway Debian 12 root"
deb="$(packaging/build-deb.sh | tail -1)"
packaging/install-test.sh "$deb"

step "done"
