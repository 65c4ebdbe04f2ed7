#!/usr/bin/env python3
"""Checks Cargo.lock against a local copy of the RustSec advisory database.

    python3 scripts/audit.py --db /path/to/advisory-db [--lock Cargo.lock]

The same check `cargo deny check advisories` makes, for machines that can
reach crates.io but not the advisory database's host: get a copy of the
database any way you can, point --db at it. Exits 1 when a locked crate has
a vulnerability advisory that its version is not patched against;
"unmaintained"/"unsound" informational advisories are listed but do not fail.
"""

import argparse
import pathlib
import re
import sys
import tomllib


def parse_version(text):
    core = text.split("+")[0].split("-")[0]
    parts = [int(p) for p in core.split(".") if p.isdigit()]
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts[:3])


def matches(version, requirement):
    """True when `version` satisfies every comma-separated clause of `requirement`."""
    for clause in requirement.split(","):
        clause = clause.strip()
        m = re.match(r"^(>=|<=|>|<|=|\^|~)?\s*(.+)$", clause)
        if not m:
            return False
        op, bound_text = m.group(1) or "^", m.group(2)
        bound = parse_version(bound_text)
        if op == ">=" and not version >= bound:
            return False
        if op == ">" and not version > bound:
            return False
        if op == "<=" and not version <= bound:
            return False
        if op == "<" and not version < bound:
            return False
        if op == "=" and version != bound:
            return False
        if op == "^":
            if version < bound:
                return False
            # Caret: same left-most non-zero component.
            if bound[0] != 0:
                if version[0] != bound[0]:
                    return False
            elif bound[1] != 0:
                if version[:2] != bound[:2]:
                    return False
            elif version != bound:
                return False
        if op == "~" and not (version >= bound and version[:2] == bound[:2]):
            return False
    return True


def load_advisory(path):
    text = path.read_text(encoding="utf-8")
    m = re.search(r"```toml\n(.*?)\n```", text, re.S)
    if not m:
        return None
    advisory = tomllib.loads(m.group(1))
    title = re.search(r"^# (.+)$", text[m.end():], re.M)
    if title:
        advisory.setdefault("advisory", {}).setdefault("title", title.group(1).strip())
    return advisory


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, type=pathlib.Path)
    parser.add_argument("--lock", default="Cargo.lock", type=pathlib.Path)
    args = parser.parse_args()

    lock = tomllib.loads(args.lock.read_text(encoding="utf-8"))
    locked = {}
    for package in lock.get("package", []):
        if "source" in package:  # crates.io dependencies only, not our own crates
            locked.setdefault(package["name"], []).append(package["version"])

    vulnerable, informational = [], []
    crates_dir = args.db / "crates"
    if not crates_dir.is_dir():
        print(f"{crates_dir} not found: --db must point at a checkout of the advisory database", file=sys.stderr)
        return 2
    for name, versions in sorted(locked.items()):
        folder = crates_dir / name
        if not folder.is_dir():
            continue
        for advisory_path in sorted(folder.glob("*.md")):
            advisory = load_advisory(advisory_path)
            if not advisory:
                continue
            info = advisory.get("advisory", {})
            if info.get("withdrawn"):
                continue
            ranges = advisory.get("versions", {})
            safe = ranges.get("patched", []) + ranges.get("unaffected", [])
            for version_text in versions:
                version = parse_version(version_text)
                if any(matches(version, req) for req in safe):
                    continue
                line = f"{info.get('id')} {name} {version_text}: {info.get('title', advisory_path.stem)}"
                if info.get("informational"):
                    informational.append(f"{line} ({info['informational']})")
                else:
                    vulnerable.append(line)

    checked = sum(len(v) for v in locked.values())
    for line in informational:
        print(f"note: {line}")
    for line in vulnerable:
        print(f"VULNERABLE: {line}")
    print(f"{checked} locked crates checked: {len(vulnerable)} vulnerable, {len(informational)} informational")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
