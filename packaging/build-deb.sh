#!/usr/bin/env bash
# Builds target/debian/porchlight_<version>-1_<arch>.deb: the daemon in
# release mode with the ffmpeg feature, its conffile, unit and system user
# (metadata in daemon/porchlight/Cargo.toml, decisions in docs/packaging.md).
# Needs libavcodec-dev libavformat-dev libswscale-dev clang pkg-config and
# dpkg-dev (dpkg-shlibdeps works out the libav* dependencies).
# Prints the path of the .deb on its last line.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
target="${CARGO_TARGET_DIR:-$repo/target}"

if ! cargo deb --version >/dev/null 2>&1; then
  echo "installing cargo-deb (once)" >&2
  cargo install --locked cargo-deb
fi

start=$(date +%s)
# cargo-deb runs `cargo build --release --features ffmpeg -p porchlight`.
# --strip: the release profile keeps line tables (debug = 1) for backtraces
# in development; the package ships a stripped binary.
cargo deb --locked --strip -p porchlight --output "$target/debian/" >&2
echo "built in $(( $(date +%s) - start )) s" >&2
ls -t "$target"/debian/porchlight_*.deb | head -1
