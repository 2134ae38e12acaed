#!/usr/bin/env python3
"""Layers point down only: reads every `#include "..."` of the project's sources and fails on an include from a
lower layer into a higher one, or between two folders of the same layer that must not know each other.

The layers, lowest first (README, "Layout"):
  engine     host/core < host/ops < cuda < host/models, host/eval < host/package < host/export
  datasets   datasets/
  training   training/
  suites     suites/, gate/      (the gate reads results JSON; it knows nothing of the suites, nor they of it)
  application app/, bench/       (the `reframe` CLI and the benchmark binaries)
tests/ and fuzz/ may include anything. A folder not listed here is an error, so a new folder gets a rank.

Usage: check_layers.py [--self-test] ROOT
--self-test first builds a small tree with one upward include and checks that it is reported (so this test
cannot pass by reading nothing), then checks ROOT. Run by CTest as `layers`.
"""
import os
import re
import sys
import tempfile

# Folders by rank, lowest first. An include must go to a strictly lower rank, or stay inside its own group
# (a folder's group is its last path component: host/ops -> "ops").
RANKS = [
    ["host/core"],
    ["host/ops"],
    ["cuda"],
    ["host/models", "host/eval"],
    ["host/package"],
    ["host/export"],
    ["datasets"],
    ["training"],
    ["suites", "gate"],
    ["app", "bench"],
]
# folder prefix -> (rank, group)
LAYERS = [(prefix, rank, prefix.split("/")[-1]) for rank, prefixes in enumerate(RANKS) for prefix in prefixes]
SKIP = ("tests/", "fuzz/", "build", ".git/", "docs/", "scripts/", "results/")
SOURCE = re.compile(r"\.(c|cc|cpp|cu|cuh|h|hpp)$")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(path):
    for prefix, rank, group in LAYERS:
        if path == prefix or path.startswith(prefix + "/"):
            return rank, group
    return None


def check(root):
    """Returns (files read, list of violation strings)."""
    problems, nfiles = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [d for d in dirnames if not (rel_dir + d + "/").startswith(SKIP) and not d.startswith(".")]
        for name in sorted(filenames):
            rel = rel_dir + name
            if not SOURCE.search(name) or rel.startswith(SKIP) or "/" not in rel:
                continue
            me = layer_of(rel)
            if me is None:
                problems.append(f"{rel}: folder has no layer (add it to LAYERS in tests/structure/check_layers.py)")
                continue
            nfiles += 1
            with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    target = m.group(1)
                    them = layer_of(target)
                    if them is None:
                        if "/" in target:  # a project path outside every layer (tests/, a typo)
                            problems.append(f"{rel}:{lineno}: includes \"{target}\", which is in no layer")
                        continue  # a sibling include such as "philox_impl.h" or a generated header
                    if them[1] == me[1]:
                        continue
                    if them[0] >= me[0]:
                        problems.append(f"{rel}:{lineno}: {me[1]} (rank {me[0]}) includes \"{target}\" of "
                                        f"{them[1]} (rank {them[0]}): layers must point down")
    return nfiles, problems


def self_test():
    with tempfile.TemporaryDirectory() as d:
        for path, text in [("host/core/a.h", "#pragma once\n"),
                           ("datasets/b.h", '#include "host/core/a.h"\n'),
                           ("host/ops/c.h", '#include "datasets/b.h"\n'),
                           ("suites/s.h", "#pragma once\n"),
                           ("gate/g.h", '#include "suites/s.h"\n')]:
            os.makedirs(os.path.join(d, os.path.dirname(path)), exist_ok=True)
            with open(os.path.join(d, path), "w") as f:
                f.write(text)
        n, problems = check(d)
        want = ["host/ops/c.h:1", "gate/g.h:1"]
        if n != 5 or len(problems) != 2 or not all(any(p.startswith(w) for p in problems) for w in want):
            print("self-test FAILED: expected exactly the two upward includes", want, "got", problems)
            return False
    print("self-test: an upward include and a same-rank include between folders are both reported")
    return True


def main(argv):
    args = [a for a in argv[1:] if a != "--self-test"]
    if len(args) != 1:
        print(__doc__)
        return 2
    if "--self-test" in argv and not self_test():
        return 1
    n, problems = check(args[0])
    for p in problems:
        print(p)
    if n == 0:
        print(f"no source files under {args[0]}: wrong root?")
        return 1
    print(f"layers: {n} files read, {len(problems)} upward includes")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
