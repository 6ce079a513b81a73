"""`python -m inspection simulate scale|dws|reader|xray|camera ...`: devices speaking their real protocol.

The socket simulators print `<device> listening on HOST:PORT` (port 0 picks a free one) and serve until
Ctrl-C; the folder simulators write their files and exit. `--bad INDEX:KIND` makes parcel INDEX (from 0)
bad output of that kind; repeat it for more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from inspection.simulators import dws, files, reader, scale


def register(sub: Any) -> None:
    """Adds the `simulate` command and its five devices."""
    p = sub.add_parser("simulate", help="run a device simulator (scale, dws, reader, xray, camera)")
    devices = p.add_subparsers(dest="device", required=True)
    s = _socket(devices, "scale", "an MT-SICS scale (and its station's reader with --reader-port)")
    s.add_argument("--reader-port", type=int, default=None, help="also serve the station's reader here")
    s.add_argument("--parcels", default="", help="CODE:GRAMS,... (an empty code: the reader reads nothing)")
    s.add_argument("--plan", default="", help="more steps after the parcels, e.g. S:500,X,junk (see the docs)")
    s.add_argument("--bad", action="append", default=[], help="INDEX:STEP, e.g. 1:X (unknown status) or 0:junk")
    d = _socket(devices, "dws", "a DWS station sending records")
    d.add_argument("--waybills", required=True, help="WAYBILL,...")
    d.add_argument("--bad", action="append", default=[], help=f"INDEX:KIND, KIND one of {', '.join(dws.BAD_KINDS)}")
    r = _socket(devices, "reader", "a barcode reader sending codes")
    r.add_argument("--codes", required=True, help="CODE,... (noread and malformed are bad output)")
    for name in ("xray", "camera"):
        f = devices.add_parser(name, help=f"write {name} image files into a folder")
        f.add_argument("--dir", required=True, type=Path)
        f.add_argument("--waybills", required=True, help="WAYBILL,...")
        f.add_argument("--bad", action="append", default=[], help=f"INDEX:KIND, one of {', '.join(files.BAD_KINDS)}")
        f.add_argument("--interval", type=float, default=0.2, help="seconds between files")
        f.set_defaults(func=_folder)
    devices.choices["xray"].add_argument("--format", choices=("dicom", "png", "jpeg"), default="dicom")
    devices.choices["xray"].add_argument("--alarm", action="append", default=[], help="a waybill the machine alarms on")


def _socket(devices: Any, name: str, text: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = devices.add_parser(name, help=text)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--interval", type=float, default=0.1, help="seconds between answers, records or codes")
    p.set_defaults(func=_serve)
    return p


def bad_map(given: list[str]) -> dict[int, str]:
    """--bad INDEX:KIND options as {index: kind}."""
    out: dict[int, str] = {}
    for item in given:
        index, _, kind = item.partition(":")
        if not index.isdigit() or not kind:
            raise SystemExit(f"--bad {item!r}: expected INDEX:KIND")
        out[int(index)] = kind
    return out


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()] if text else []


def _serve(args: argparse.Namespace) -> int:
    return asyncio.run(_serve_async(args))


async def _serve_async(args: argparse.Namespace) -> int:
    bad = bad_map(args.bad) if hasattr(args, "bad") else {}
    if args.device == "scale":
        parcels = [(code, int(grams)) for code, _, grams in (p.partition(":") for p in _split(args.parcels))]
        sim: Any = scale.ScaleSimulator(scale.parcel_plan(parcels, bad) + _split(args.plan), args.interval)
        port = await sim.start(args.port, args.reader_port, args.host)
        if args.reader_port is not None:
            print(f"reader listening on {args.host}:{sim.reader_port}", flush=True)
    elif args.device == "dws":
        records = [dws.record_for(i + 1, w, bad.get(i, "")) for i, w in enumerate(_split(args.waybills))]
        sim = dws.DwsSimulator(records, args.interval)
        port = await sim.start(args.port, args.host)
    else:
        sim = reader.ReaderSimulator(_split(args.codes), args.interval)
        port = await sim.start(args.port, args.host)
    print(f"{args.device} listening on {args.host}:{port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.close()
    return 0


def _folder(args: argparse.Namespace) -> int:
    args.dir.mkdir(parents=True, exist_ok=True)
    bad = bad_map(args.bad)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i, waybill in enumerate(_split(args.waybills)):
        name = f"{stamp}-{i:04d}"
        if args.device == "xray":
            alarm = [{"category": "BATTERY", "description": "lithium cells", "confidence": 0.91, "alarm": True}]
            path = files.write_xray(args.dir, name, waybill, args.format, alarm if waybill in args.alarm else [],
                                    bad.get(i, ""), seed=i)
        else:
            path = files.write_camera(args.dir, name, waybill, bad.get(i, ""), seed=i)
        print(json.dumps({"file": str(path), "waybill": waybill, "bad": bad.get(i, "")}), flush=True)
        time.sleep(args.interval)
    return 0
