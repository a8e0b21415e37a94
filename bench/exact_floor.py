"""The pure-Python floor of an exact-duplicate scan: what any Python program pays.

Usage: python bench/exact_floor.py TREE

Interpreter start, one ``os.scandir`` walk with an ``lstat`` per entry, the sizes
grouped, and ``os.open`` / ``os.read`` of 4 KiB / ``os.close`` + CRC-32 of every file
whose size another file has: no SQLite, no output files, no full SHA-1, no checks
(symlinked folders, hard links, files changed since the walk). ``dedup --exact-only``
does all of that and keeps its inventory; the gap between the two is what the
project's own code costs, this script's time is what it cannot save.
"""

import os
import sys
import zlib


def main() -> None:
    files = []
    stack = [os.fsencode(sys.argv[1])]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                st = e.stat(follow_symlinks=False)
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                else:
                    files.append((e.path, st.st_size))
    by_size: dict[int, list[bytes]] = {}
    for path, size in files:
        by_size.setdefault(size, []).append(path)
    crc = {}
    for paths in by_size.values():
        if len(paths) > 1:
            for p in paths:
                fd = os.open(p, os.O_RDONLY)
                crc[p] = zlib.crc32(os.read(fd, 4096))
                os.close(fd)
    print(len(files), "files,", len(crc), "read")


if __name__ == "__main__":
    main()
