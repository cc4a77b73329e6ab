"""Restores the corpus files listed in manifest.json from fetched repository snapshots.

    python bench/corpus/restore.py [--mirror /work/.mirror] [--out /work/corpus/files]

For each entry it looks for the repository's bare git directory under the mirror
(<owner>+<name>/repo/.git, <owner>+<name>/repo or <owner>+<name>), copies the file with
`git show <commit>:<path>` (original bytes; HEAD when that commit is not there) and writes
expected.json, mapping.json and SOURCE.json beside it. It then lists the repositories that
still need fetching (fetch "github:<owner>/<name>", then run this again) and the entries
that no snapshot can give (their SOURCE "obtained" says how they were read).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def git_dir(mirror: pathlib.Path, repo: str) -> pathlib.Path | None:
    base = mirror / repo.replace("/", "+")
    for candidate in (base / "repo" / ".git", base / "repo", base):
        if (candidate / "HEAD").exists():
            return candidate
    return None


def show(gdir: pathlib.Path, rev: str, path: str) -> bytes | None:
    result = subprocess.run(["git", "--git-dir", str(gdir), "show", f"{rev}:{path}"], capture_output=True)
    return result.stdout if result.returncode == 0 else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=pathlib.Path, default=HERE / "manifest.json")
    parser.add_argument("--mirror", type=pathlib.Path, default=pathlib.Path("/work/.mirror"))
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("/work/corpus/files"))
    args = parser.parse_args()
    missing_repos: set[str] = set()
    by_hand: list[str] = []
    restored = 0
    for entry in json.loads(args.manifest.read_text()):
        source, expected = entry["source"], entry["expected"]
        gdir = git_dir(args.mirror, source["repository"])
        data = None
        if gdir is not None:
            data = show(gdir, source["commit"], source["path"]) or show(gdir, "HEAD", source["path"])
        if data is None:
            if source.get("obtained"):
                by_hand.append(f"{entry['id']}: {source['repository']} {source['path']} "
                               f"at {source['commit']} ({source['obtained']})")
            else:
                missing_repos.add(source["repository"])
            continue
        folder = args.out / entry["id"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / expected["file"]).write_bytes(data)
        for name, value in (("expected.json", expected), ("mapping.json", entry["mapping"]), ("SOURCE.json", source)):
            (folder / name).write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n")
        restored += 1
    total = len(json.loads(args.manifest.read_text()))
    print(f"restored {restored} of {total} files into {args.out}")
    if missing_repos:
        print("fetch these repositories, then run again:")
        for repo in sorted(missing_repos):
            print(f"  github:{repo}")
    if by_hand:
        print("not in any snapshot (write these from the search index's read_file, by repository, path and commit):")
        for line in by_hand:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
