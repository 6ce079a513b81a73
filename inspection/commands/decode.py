"""`python -m inspection decode IMAGE...`: the waybill codes in image files, one JSON line per file.

Each line is {"file", "codes": [{"text", "format", "corners"}], "ms"}; a file that cannot be read has "codes": []
and an "error" in plain words, and the command goes on to the next. An image in which no code could be read has
"codes": [] and no error: a code is reported only as decoded, never guessed. The exit status is 0 when every file
could be read as an image, 1 when some could not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Adds the `decode` sub-command."""
    p = sub.add_parser("decode", help="read the waybill codes in JPEG, PNG or DICOM/DICOS images",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Decodes every file named; 0 if all were readable images, 1 otherwise."""
    readable = True
    for path in args.images:
        line = decode_file(path)
        readable &= "error" not in line
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()  # a line per file as it is done: a caller can follow a long batch
    return 0 if readable else 1


def decode_file(path: str) -> dict[str, Any]:
    """One file's JSON line as a dict: its codes and the milliseconds they took, or why it could not be read."""
    # Imported here, not at the top: building the command line must not load OpenCV for every other command.
    from inspection.vision.load import ImageUnreadable, load_image
    from inspection.vision.reader import read_codes

    start = time.perf_counter()
    try:
        codes = read_codes(load_image(_read(path)))
    except ImageUnreadable as exc:
        return {"file": path, "codes": [], "ms": _ms(start), "error": exc.reason}
    found = [{"text": c.text, "format": c.format, "corners": [list(p) for p in c.corners]} for c in codes]
    return {"file": path, "codes": found, "ms": _ms(start)}


def _read(path: str) -> bytes:
    """The file's bytes; a file past the size limit is refused from its size, without reading it."""
    from inspection.vision.load import MAX_BYTES, ImageUnreadable

    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_BYTES:
                raise ImageUnreadable(f"file too large: {size:,} bytes (the limit is {MAX_BYTES:,})")
            return f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ImageUnreadable(f"cannot read the file: {exc.strerror or type(exc).__name__}") from None


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
