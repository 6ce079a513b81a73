"""The adapter's configuration: a good file loads; a bad key stops `run` with exit 2 naming it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inspection.config import ConfigError, load, parse
from tests.conftest import REPO

GOOD = """
[gateway]
target = "127.0.0.1:50051"
token = "tok"
backoff_max_s = 5

[queue]
path = "q/queue.sqlite"

[site]
location = "SH-HUB-02/line-3"

[[devices]]
id = "scale-1"
type = "scale"
connection = { host = "127.0.0.1", port = 4001 }
reader = "reader-1"
command = "SIR"

[[devices]]
id = "reader-1"
type = "reader"
connection = { host = "127.0.0.1", port = 4002 }

[[devices]]
id = "dws-1"
type = "dws"
connection = { serial = "/dev/ttyUSB0", baud = 19200 }
location = "SH-HUB-02/line-4"

[[devices]]
id = "xray-1"
type = "folder"
kind = "xray"
connection = { directory = "xray" }
"""


def test_a_good_file_loads(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(GOOD)
    cfg = load(tmp_path / "site.toml")
    assert cfg.target == "127.0.0.1:50051" and cfg.token == "tok" and cfg.backoff_max_s == 5.0
    assert cfg.queue_path == tmp_path / "q" / "queue.sqlite"
    scale, _, dws, xray = cfg.devices
    assert scale.opt("reader") == "reader-1" and scale.opt("command") == "SIR" and scale.opt("min_weight_g") == 20
    assert dws.connection.serial == "/dev/ttyUSB0" and dws.connection.baud == 19200 and dws.location.endswith("-4")
    assert xray.connection.directory == tmp_path / "xray" and xray.opt("kind") == "xray"


def test_token_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("secret\n")
    (tmp_path / "site.toml").write_text(GOOD.replace('token = "tok"', 'token_file = "token"'))
    assert load(tmp_path / "site.toml").token == "secret"


@pytest.mark.parametrize(("change", "key"), [
    (('target = "127.0.0.1:50051"', 'target = "nowhere"'), "gateway.target"),
    (('token = "tok"', 'token_file = "missing"'), "gateway.token_file"),
    (('token = "tok"', 'token = "tok"\ncolour = "red"'), "gateway.colour"),
    (('backoff_max_s = 5', 'backoff_max_s = 5\n[gateway.tls]\nca_file = "ca.pem"'), "gateway.tls.ca_file"),
    (('backoff_max_s = 5', 'backoff_max_s = "5"'), "gateway.backoff_max_s"),
    (('path = "q/queue.sqlite"', 'file = "q"'), "queue.file"),
    (('type = "scale"', 'type = "oven"'), "devices[0].type"),
    (('id = "scale-1"', 'id = "scale 1"'), "devices[0].id"),
    (('port = 4001', 'port = 70000'), "devices[0].connection.port"),
    (('port = 4001', 'port = true'), "devices[0].connection.port"),
    (('reader = "reader-1"', 'reader = "reader-9"'), "devices[0].reader"),
    (('command = "SIR"', 'command = "Z"'), "devices[0].command"),
    (('id = "reader-1"', 'id = "scale-1"'), "devices[1].id"),
    (('kind = "xray"', 'kind = "sonar"'), "devices[3].kind"),
    (('kind = "xray"', 'kind = "xray"\nbaud = 9600'), "devices[3].baud"),
    (('{ host = "127.0.0.1", port = 4002 }', '{ serial = "/dev/ttyS0" }'), "devices[1].connection.serial"),
])
def test_a_bad_key_is_named(change: tuple[str, str], key: str) -> None:
    import tomllib

    with pytest.raises(ConfigError) as caught:
        parse(tomllib.loads(GOOD.replace(*change)))
    assert caught.value.key == key, str(caught.value)


def test_run_exits_2_with_one_line_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(GOOD.replace('type = "scale"', 'type = "oven"'))
    done = subprocess.run([sys.executable, "-m", "inspection", "run", "--config", str(tmp_path / "site.toml")],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "devices[0].type" in done.stderr, done.stderr
    (tmp_path / "broken.toml").write_text("[gateway\n")
    done = subprocess.run([sys.executable, "-m", "inspection", "run", "--config", str(tmp_path / "broken.toml")],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not valid TOML" in done.stderr


def test_the_example_configuration_is_valid(tmp_path: Path) -> None:
    import tomllib

    from tests.conftest import FIXTURES

    raw = tomllib.loads((FIXTURES / "inspection" / "site.example.toml").read_text())
    raw["gateway"] = {**raw["gateway"], "token": "t"}
    del raw["gateway"]["token_file"]
    cfg = parse(raw, base=tmp_path)
    assert [d.id for d in cfg.devices] == ["scale-1", "reader-1", "dws-1", "xray-1", "camera-1"]
    assert cfg.devices[4].opt("goods") is True and cfg.devices[0].opt("reader") == "reader-1"
