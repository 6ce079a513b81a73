"""The adapter's configuration file (TOML), validated at start so that a bad key stops it with one line.

    [gateway]
    target = "127.0.0.1:50051"        # HOST:PORT of the gateway
    token_file = ".var/dev-token"     # or token = "..." (a scanner-role token)
    backoff_initial_s = 0.5           # reconnect back-off: doubles per failure, full jitter ...
    backoff_max_s = 15                # ... capped here
    ack_timeout_s = 30                # no ack for this long on a live stream: reconnect and resend
    [gateway.tls]                     # TLS to the gateway (without this table: the GATEWAY_TLS_* variables)
    ca_file = "ca.pem"                # the CA that signed the gateway's certificate, or "system"
    cert_file = "scanner.pem"         # cert_file and key_file: this adapter's certificate, for mutual TLS
    key_file = "scanner.key"
    server_name = "gateway.example"   # optional: the name to check the certificate for, if not the host's

    [queue]
    path = "var/queue.sqlite"         # the durable store-and-forward queue (SQLite, WAL)

    [site]
    location = "SH-HUB-02/line-3"     # ScanEvent.location; a device may set its own

    [[devices]]
    id = "scale-1"                    # 1 to 40 characters [A-Za-z0-9_.:-]
    type = "scale"                    # scale, dws, reader or folder
    connection = { host = "127.0.0.1", port = 4001 }   # or { serial = "/dev/ttyUSB0", baud = 9600 }
    reader = "reader-1"               # scale only: the reader whose codes pair with its weights

    [[devices]]
    id = "xray-1"
    type = "folder"
    kind = "xray"                     # camera or xray
    connection = { directory = "/data/xray-1" }

Per-type options are listed in DEVICE_OPTIONS with their defaults.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.security.tls import ClientNames, ClientTLS, TLSSettingError, client_tls, client_tls_from_env

DEVICE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,40}")
TYPES = ("scale", "dws", "reader", "folder")
# Options each device type takes besides id, type, connection and location, with their defaults.
DEVICE_OPTIONS: dict[str, dict[str, Any]] = {
    "scale": {"command": "SI", "poll_interval_s": 0.2, "min_weight_g": 20, "reader": "", "pair_timeout_s": 10.0},
    "dws": {"record_timeout_s": 2.0},
    "reader": {},
    "folder": {"kind": "", "goods": False, "settle_s": 0.5, "poll_s": 0.2, "max_image_bytes": 8 * 1024 * 1024},
}
GATEWAY_KEYS = {"target", "token", "token_file", "backoff_initial_s", "backoff_max_s", "ack_timeout_s", "tls"}
SERIAL_TYPES = ("scale", "dws")
TLS_NAMES = ClientNames("gateway.tls.ca_file", "gateway.tls.cert_file", "gateway.tls.key_file",
                        "gateway.tls.server_name")


class ConfigError(Exception):
    """A bad configuration: `key` names the offending key (e.g. devices[2].connection.port)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass(frozen=True)
class Connection:
    """Where a device is: a TCP address, a serial port (a device path or a pyserial URL), or a directory."""

    host: str = ""
    port: int = 0
    serial: str = ""
    baud: int = 9600
    directory: Path | None = None


@dataclass(frozen=True)
class Device:
    """One configured device."""

    id: str
    type: str
    connection: Connection
    location: str
    options: dict[str, Any] = field(default_factory=dict)

    def opt(self, name: str) -> Any:
        """An option of this device's type, or its default."""
        return self.options.get(name, DEVICE_OPTIONS[self.type][name])


@dataclass(frozen=True)
class Config:
    """The validated configuration."""

    target: str
    token: str
    queue_path: Path
    location: str
    devices: tuple[Device, ...]
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 15.0
    ack_timeout_s: float = 30.0
    tls: ClientTLS | None = None  # None: plaintext


def load(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Reads and validates a configuration file; raises ConfigError naming the bad key.

    Without a [gateway.tls] table, TLS is what the GATEWAY_TLS_* variables of `environ` (default: the
    process's environment) say, as for the gateway's own commands.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError("config", f"cannot read {path}: {err.strerror}") from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError("config", f"{path} is not valid TOML: {err}") from err
    return parse(raw, base=path.parent, environ=os.environ if environ is None else environ)


def parse(raw: dict[str, Any], base: Path = Path("."), environ: Mapping[str, str] | None = None) -> Config:
    """Validates a parsed TOML document; relative paths are taken from `base`, GATEWAY_TLS_* from `environ`."""
    _only(raw, {"gateway", "queue", "site", "devices"}, "")
    gw = _table(raw, "gateway")
    _only(gw, GATEWAY_KEYS, "gateway.")
    tls = _tls(gw, base, environ or {})
    queue = _table(raw, "queue")
    _only(queue, {"path"}, "queue.")
    site = _table(raw, "site")
    _only(site, {"location"}, "site.")
    location = _text(site, "location", "site.location", limit=64)
    devices = tuple(_device(d, i, location, base) for i, d in enumerate(_list(raw, "devices")))
    _check_devices(devices)
    return Config(
        target=_target(gw), token=_token(gw, base), queue_path=base / _text(queue, "path", "queue.path"),
        location=location, devices=devices,
        backoff_initial_s=_number(gw, "backoff_initial_s", "gateway.backoff_initial_s", 0.5, 0.01, 60),
        backoff_max_s=_number(gw, "backoff_max_s", "gateway.backoff_max_s", 15.0, 0.1, 600),
        ack_timeout_s=_number(gw, "ack_timeout_s", "gateway.ack_timeout_s", 30.0, 1, 3600), tls=tls)


def _device(raw: Any, index: int, location: str, base: Path) -> Device:
    where = f"devices[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(where, "must be a table")
    kind = raw.get("type")
    if kind not in TYPES:
        raise ConfigError(f"{where}.type", f"must be one of {', '.join(TYPES)}")
    _only(raw, {"id", "type", "connection", "location", *DEVICE_OPTIONS[kind]}, f"{where}.")
    device_id = _text(raw, "id", f"{where}.id")
    if not DEVICE_ID.fullmatch(device_id):
        raise ConfigError(f"{where}.id", "must be 1 to 40 characters of A-Z a-z 0-9 _ . : -")
    options = {k: _option(raw, k, f"{where}.{k}", default) for k, default in DEVICE_OPTIONS[kind].items() if k in raw}
    own = _text(raw, "location", f"{where}.location", limit=64) if "location" in raw else location
    device = Device(device_id, kind, _connection(raw, kind, f"{where}.connection", base), own, options)
    if kind == "folder" and device.opt("kind") not in ("camera", "xray"):
        raise ConfigError(f"{where}.kind", "must be camera or xray")
    if kind == "scale" and device.opt("command") not in ("S", "SI", "SIR"):
        raise ConfigError(f"{where}.command", "must be S, SI or SIR")
    return device


def _connection(raw: dict[str, Any], kind: str, where: str, base: Path) -> Connection:
    conn = raw.get("connection")
    if not isinstance(conn, dict):
        raise ConfigError(where, "must be a table: { host, port }, { serial, baud } or { directory }")
    if kind == "folder":
        _only(conn, {"directory"}, f"{where}.")
        return Connection(directory=base / _text(conn, "directory", f"{where}.directory"))
    if "serial" in conn:
        if kind not in SERIAL_TYPES:
            raise ConfigError(f"{where}.serial", f"a {kind} connects over TCP only")
        _only(conn, {"serial", "baud"}, f"{where}.")
        baud = _option(conn, "baud", f"{where}.baud", 9600)
        return Connection(serial=_text(conn, "serial", f"{where}.serial"), baud=baud)
    _only(conn, {"host", "port"}, f"{where}.")
    port = _option(conn, "port", f"{where}.port", 0)
    if not 1 <= port <= 65535:
        raise ConfigError(f"{where}.port", "must be 1 to 65535")
    return Connection(host=_text(conn, "host", f"{where}.host"), port=port)


def _check_devices(devices: tuple[Device, ...]) -> None:
    ids = [d.id for d in devices]
    for i, device in enumerate(devices):
        if ids.index(device.id) != i:
            raise ConfigError(f"devices[{i}].id", f"{device.id!r} is used twice")
    readers = [d.opt("reader") if d.type == "scale" else "" for d in devices]
    for i, paired in enumerate(readers):
        if paired and not any(d.id == paired and d.type == "reader" for d in devices):
            raise ConfigError(f"devices[{i}].reader", f"no reader device {paired!r}")
        if paired and readers.index(paired) != i:
            raise ConfigError(f"devices[{i}].reader", f"reader {paired!r} already belongs to another scale")
    if not devices:
        raise ConfigError("devices", "configure at least one device")


def _target(gw: dict[str, Any]) -> str:
    target = _text(gw, "target", "gateway.target")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError("gateway.target", "must be HOST:PORT")
    return target


def _tls(gw: dict[str, Any], base: Path, environ: Mapping[str, str]) -> ClientTLS | None:
    try:
        if "tls" not in gw:
            return client_tls_from_env(environ)
        table = gw["tls"]
        if not isinstance(table, dict):
            raise ConfigError("gateway.tls", "must be a table")
        _only(table, {"ca_file", "cert_file", "key_file", "server_name"}, "gateway.tls.")
        if not table:
            raise ConfigError("gateway.tls", 'set ca_file (a PEM file, or "system"), and cert_file with key_file '
                                             "for mutual TLS")
        given = {k: _text(table, k, f"gateway.tls.{k}") for k in table}
        return client_tls(given.get("ca_file", ""), given.get("cert_file", ""), given.get("key_file", ""),
                          given.get("server_name", ""), names=TLS_NAMES, base=base)
    except TLSSettingError as err:
        raise ConfigError(err.setting, err.problem) from err


def _token(gw: dict[str, Any], base: Path) -> str:
    if "token" in gw:
        return _text(gw, "token", "gateway.token")
    path = base / _text(gw, "token_file", "gateway.token_file")
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError("gateway.token_file", f"cannot read {path}: {err}") from err
    if not token:
        raise ConfigError("gateway.token_file", f"{path} is empty")
    return token


def _only(table: dict[str, Any], allowed: set[str], prefix: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{prefix}{key}", "unknown key")


def _table(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise ConfigError(key, "missing table")
    return value


def _list(raw: dict[str, Any], key: str) -> list[Any]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(key, "must be an array of tables ([[devices]])")
    return value


def _text(table: dict[str, Any], key: str, where: str, limit: int = 4096) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(where, "missing or not a non-empty string")
    if len(value) > limit or not value.isprintable():
        raise ConfigError(where, f"must be one printable line of at most {limit} characters")
    return value


def _option(table: dict[str, Any], key: str, where: str, default: Any) -> Any:
    value = table.get(key, default)
    # bool is an int in Python, so it is checked first: `port = true` is not port 1.
    if isinstance(default, bool) or isinstance(value, bool):
        if not isinstance(value, bool) or not isinstance(default, bool):
            raise ConfigError(where, f"must be {type(default).__name__}")
        return value
    if isinstance(default, float) and isinstance(value, int):
        value = float(value)
    if not isinstance(value, type(default)):
        raise ConfigError(where, f"must be {type(default).__name__}")
    if isinstance(value, (int, float)) and value < 0:
        raise ConfigError(where, "must not be negative")
    return value


def _number(table: dict[str, Any], key: str, where: str, default: float, low: float, high: float) -> float:
    value = _option(table, key, where, default)
    if not low <= value <= high:
        raise ConfigError(where, f"must be {low} to {high}")
    return float(value)
