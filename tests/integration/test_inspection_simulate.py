"""`python -m inspection simulate ...` as a process: it speaks the protocol on a real socket, or writes files."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from inspection.devices import dws, mtsics
from tests.conftest import REPO


async def _listening(proc: asyncio.subprocess.Process) -> list[int]:
    assert proc.stdout is not None
    ports, line = [], b""
    while not ports or b"reader" in line:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
        assert b"listening on" in line, line
        ports.append(int(line.rsplit(b":", 1)[1]))
    return ports


async def _start(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "inspection", "simulate", *args, cwd=REPO,
                                                stdout=asyncio.subprocess.PIPE)


async def test_scale_and_dws_simulators_speak_their_protocols() -> None:
    scale = await _start("scale", "--parcels", "SF1234567890:750", "--reader-port", "0", "--bad", "0:X")
    station = await _start("dws", "--waybills", "SF1234567890,SF1234567891", "--bad", "1:truncated")
    try:
        reader_port, scale_port = await _listening(scale)
        (dws_port,) = await _listening(station)
        code_in, code_out = await asyncio.open_connection("127.0.0.1", reader_port)
        s_in, s_out = await asyncio.open_connection("127.0.0.1", scale_port)
        answers = []
        for _ in range(8):
            s_out.write(b"SI\r\n")
            await s_out.drain()
            answers.append(mtsics.parse((await s_in.readline()).rstrip()))
        assert (await code_in.readline()) == b"SF1234567890\r\n"
        code_out.close()
        kinds = [a.reason if hasattr(a, "reason") else (a.kind, a.grams) for a in answers]
        assert kinds[:6] == [("stable", 0), ("dynamic", 225), ("dynamic", 675), "UNKNOWN_STATUS",
                             ("stable", 750), ("stable", 750)]
        d_in, d_out = await asyncio.open_connection("127.0.0.1", dws_port)
        record = await d_in.readexactly(dws.RECORD_LEN)
        parsed = dws.parse_record(record)
        assert isinstance(parsed, dws.Record) and (parsed.sequence, parsed.waybill) == (1, "SF1234567890")
        d_out.write(dws.ACK)
        await d_out.drain()
        assert len(await asyncio.wait_for(d_in.read(100), timeout=5)) == 30  # the truncated one
    finally:
        for proc in (scale, station):
            proc.terminate()
            await proc.wait()


def test_xray_and_camera_simulators_write_real_files(tmp_path: Path) -> None:
    from inspection.vision.load import load_image, media_type

    done = subprocess.run([sys.executable, "-m", "inspection", "simulate", "xray", "--dir", str(tmp_path / "x"),
                           "--waybills", "SF1234567890,SF1234567891", "--alarm", "SF1234567891", "--interval", "0"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    written = [json.loads(line) for line in done.stdout.splitlines()]
    assert [w["waybill"] for w in written] == ["SF1234567890", "SF1234567891"]
    first = Path(written[0]["file"]).read_bytes()
    assert media_type(first) == "application/dicom" and load_image(first).ndim == 2
    assert json.loads(Path(written[1]["file"] + ".json").read_text())["findings"][0]["alarm"] is True
    done = subprocess.run([sys.executable, "-m", "inspection", "simulate", "camera", "--dir", str(tmp_path / "c"),
                           "--waybills", "SF1234567890", "--bad", "0:corrupt", "--interval", "0"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    photo = Path(json.loads(done.stdout)["file"]).read_bytes()
    assert media_type(photo) == "image/jpeg"
