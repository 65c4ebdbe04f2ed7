#!/usr/bin/env bash
# Installs a Porchlight .deb into a throwaway Debian 12 (bookworm, minbase)
# root with dpkg, the way a user would, and checks what landed: files, the
# conffile, the system user, the data dir, the unit (systemd-analyze
# verify), `porchlight check-config` on the shipped config as that user,
# then remove (config and data kept) and purge (config gone, data kept).
#
#   packaging/install-test.sh target/debian/porchlight_0.1.0-1_amd64.deb
#
# Needs root, debootstrap and Debian's package mirror. The bootstrapped root
# (with apt's lists) is cached as a tarball under
# $PORCHLIGHT_DEBOOTSTRAP_CACHE (default: <target dir>/debootstrap), and so
# are the .debs apt fetched, so later runs need neither.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deb="$(realpath "${1:?usage: install-test.sh PATH/TO/porchlight_VERSION_ARCH.deb}")"
cache="${PORCHLIGHT_DEBOOTSTRAP_CACHE:-${CARGO_TARGET_DIR:-$repo/target}/debootstrap}"
mirror="${PORCHLIGHT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
seed="$cache/bookworm-minbase.tar"
mkdir -p "$cache/apt-archives"

fail() { echo "install test FAILED: $*" >&2; exit 1; }
ok() { echo "  ok: $*"; }

root=""
cleanup() {
  if [ -n "$root" ]; then
    # Anything mounted below the root goes first (none normally: nothing
    # here needs /proc), so rm never walks into the host.
    grep -F " $root/" /proc/self/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l || true
    rm -rf --one-file-system "$root"
  fi
}
trap cleanup EXIT

if [ ! -f "$seed" ]; then
  echo "bootstrapping Debian 12 minbase (once; cached in $seed)"
  fresh="$(mktemp -d "$cache/seed.XXXXXX")"
  chmod 0755 "$fresh" # mktemp's 0700 would become the root's "/" mode in the tarball
  debootstrap --variant=minbase bookworm "$fresh" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; rm -rf --one-file-system "$fresh"; fail "debootstrap"; }
  cp /etc/resolv.conf "$fresh/etc/resolv.conf"
  chroot "$fresh" apt-get update -q >/dev/null
  tar -C "$fresh" -cf "$seed.part" . && mv "$seed.part" "$seed"
  rm -rf --one-file-system "$fresh"
fi

root="$(mktemp -d "$cache/root.XXXXXX")"
tar -C "$root" -xpf "$seed"
# "/" must be traversable by the porchlight user, whatever mode the seed
# recorded for it (mktemp makes 0700).
chmod 0755 "$root"
cp /etc/resolv.conf "$root/etc/resolv.conf"
in_root() { chroot "$root" "$@"; }

echo "dpkg -i $(basename "$deb")"
cp "$deb" "$root/tmp/porchlight.deb"
cp "$cache"/apt-archives/*.deb "$root/var/cache/apt/archives/" 2>/dev/null || true
# Its libav* dependencies are not in minbase: dpkg stops, apt-get -f fetches them.
if ! in_root dpkg -i /tmp/porchlight.deb >"$root/tmp/dpkg.log" 2>&1; then
  grep -q "dependency problems" "$root/tmp/dpkg.log" || { cat "$root/tmp/dpkg.log" >&2; fail "dpkg -i"; }
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -f -y -q --no-install-recommends >"$root/tmp/apt.log" 2>&1 \
    || { tail -30 "$root/tmp/apt.log" >&2; fail "apt-get install -f"; }
fi
cp "$root"/var/cache/apt/archives/*.deb "$cache/apt-archives/" 2>/dev/null || true
status="$(in_root dpkg-query -W -f='${Status}' porchlight)"
[ "$status" = "install ok installed" ] || fail "package state is '$status'"
ok "installed: $(in_root dpkg-query -W -f='${Package} ${Version} depends on ${Depends}' porchlight)"

echo "files"
for f in /usr/bin/porchlight /etc/porchlight/config.toml /lib/systemd/system/porchlight.service \
         /usr/lib/sysusers.d/porchlight.conf /usr/share/doc/porchlight/README.md \
         /usr/share/doc/porchlight/config.example.toml; do
  [ -f "$root$f" ] || fail "$f missing"
done
ok "binary, config, unit, sysusers file, docs"
conffiles="$(in_root dpkg-query -W -f='${Conffiles}' porchlight)"
echo "$conffiles" | grep -q "^ /etc/porchlight/config.toml [0-9a-f]\{32\}$" \
  || fail "/etc/porchlight/config.toml is not a conffile (Conffiles: '$conffiles')"
ok "/etc/porchlight/config.toml is a conffile"

echo "system user"
entry="$(in_root getent passwd porchlight)" || fail "no porchlight user"
IFS=: read -r _ _ uid _ _ home shell <<<"$entry"
[ "$uid" -lt 1000 ] || fail "porchlight is not a system user (uid $uid)"
case "$shell" in */nologin|/bin/false) ;; *) fail "porchlight has a login shell: $shell" ;; esac
ok "porchlight: uid $uid, home $home, shell $shell"
owner="$(in_root stat -c '%U:%G %a' /var/lib/porchlight)"
[ "$owner" = "porchlight:porchlight 750" ] || fail "/var/lib/porchlight is '$owner'"
ok "/var/lib/porchlight is $owner"
if [ -x "$root/usr/bin/deb-systemd-helper" ]; then
  [ -L "$root/etc/systemd/system/multi-user.target.wants/porchlight.service" ] \
    || fail "the unit was not enabled"
  ok "unit enabled (multi-user.target.wants)"
fi

echo "the unit"
verify="$(systemd-analyze verify --root="$root" /lib/systemd/system/porchlight.service 2>&1 || true)"
if echo "$verify" | grep -F "porchlight.service" | grep -viE "not found|no such file" | grep -q .; then
  echo "$verify" >&2; fail "systemd-analyze verify"
fi
ok "systemd-analyze verify"
security="$(systemd-analyze security --offline=true --root="$root" porchlight.service 2>/dev/null | tail -1 || true)"
ok "systemd-analyze security: ${security:-not available}"

echo "the shipped config"
in_root setpriv --reuid=porchlight --regid=porchlight --clear-groups \
  porchlight check-config --config /etc/porchlight/config.toml >"$root/tmp/check.out" 2>&1 \
  || { cat "$root/tmp/check.out" >&2; fail "porchlight check-config on the shipped config"; }
ok "porchlight check-config passes (as the porchlight user)"

echo "remove and purge"
echo "footage" > "$root/var/lib/porchlight/kept"
in_root dpkg -r porchlight >/dev/null 2>&1 || fail "dpkg -r"
[ ! -e "$root/usr/bin/porchlight" ] || fail "binary left after remove"
[ -f "$root/etc/porchlight/config.toml" ] || fail "config gone after remove"
[ -f "$root/var/lib/porchlight/kept" ] || fail "data gone after remove"
ok "remove: binary gone, config and data kept"
in_root dpkg -P porchlight >/dev/null 2>&1 || fail "dpkg -P"
[ ! -e "$root/etc/porchlight/config.toml" ] || fail "config left after purge"
[ -f "$root/var/lib/porchlight/kept" ] || fail "data gone after purge"
[ -z "$(in_root dpkg-query -W -f='${Status}' porchlight 2>/dev/null || true)" ] || fail "package still known after purge"
ok "purge: config gone, data kept"
echo "install test passed"
