"""Settings, read from the environment once at start-up and validated."""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.core.model import Role
from gateway.core.retention import MIN_RETENTION_MONTHS

# Calls per second and burst per role (RATE_LIMITS); generous enough that one bench principal driving every
# scenario at full speed is never refused, tight enough that a runaway client cannot starve the rest.
DEFAULT_RATE_LIMITS: tuple[tuple[str, float, int], ...] = (
    ("terminal", 5000.0, 10000), ("scanner", 5000.0, 10000), ("reviewer", 2000.0, 4000),
    ("investigator", 2000.0, 4000), ("admin", 2000.0, 4000),
)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Every setting of the gateway; see the table in README.md."""

    database_url: str
    database_replica_url: str = ""  # a streaming replica for Investigation's reads; empty: the primary serves them
    listen: str = "127.0.0.1:50051"
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    allow_plaintext: bool = False
    data_key: bytes = b""
    index_key: bytes = b""
    past_data_keys: tuple[bytes, ...] = ()
    past_index_keys: tuple[bytes, ...] = ()
    sender_ref_ttl_s: int = 1800
    identity_authority_url: str = ""
    identity_authority_key: str = ""
    identity_authority_timeout_s: float = 2.0
    db_pool_min: int = 2
    db_pool_max: int = 16
    db_connect_timeout_s: float = 5.0
    db_acquire_timeout_s: float = 5.0
    db_command_timeout_s: float = 30.0
    max_message_bytes: int = 16 * 1024 * 1024
    shutdown_grace_s: float = 10.0
    token_cache_ttl_s: float = 30.0
    metrics_port: int = 0
    log_level: str = "INFO"
    log_format: str = "json"
    group_commit_max: int = 64
    sender_pattern_window_s: int = 86400
    blocklist_poll_s: float = 5.0
    blob_store_dir: str = ".var/blobs"
    blob_max_bytes: int = 16 * 1024 * 1024
    weight_mismatch_share: float = 0.2
    weight_mismatch_g: int = 200
    evidence_signing_key: bytes = b""
    evidence_key_name: str = "courier-gateway"
    evidence_origin: str = "courier-gateway.example/evidence"
    evidence_past_keys: tuple[str, ...] = ()
    evidence_head_interval_s: float = 60.0
    evidence_append_s: float = 0.25
    rate_limits: tuple[tuple[str, float, int], ...] = DEFAULT_RATE_LIMITS
    max_streams_per_principal: int = 256
    processes: int = 0  # GATEWAY_PROCESSES; 0: one per core (`serve`); each has its own DB_POOL_MIN..DB_POOL_MAX
    process_index: int = 0  # GATEWAY_PROCESS_INDEX: which of them this is (the parent sets it; metrics use it)
    retention_months: int = 36  # RETENTION_MONTHS: events kept at least this long before `partitions archive`
    partition_months_ahead: int = 3  # PARTITION_MONTHS_AHEAD: months of partitions created ahead (start, daily)


def _b64_key(name: str, raw: str) -> bytes:
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SettingsError(f"{name}: not valid base64 ({exc})") from None
    if len(key) != 32:
        raise SettingsError(f"{name}: must decode to 32 bytes, got {len(key)}")
    return key


def _b64_keys(name: str, raw: str) -> tuple[bytes, ...]:
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    return tuple(_b64_key(f"{name}[{i}]", k) for i, k in enumerate(keys))


def _number_in(kind: type[int] | type[float], lo: float, hi: float) -> Callable[[str, str], Any]:
    noun = "a whole number" if kind is int else "a number"

    def parse(name: str, raw: str) -> Any:
        try:
            value = kind(raw)
        except ValueError:
            raise SettingsError(f"{name}: {raw!r} is not {noun}") from None
        if not lo <= value <= hi:
            raise SettingsError(f"{name}: {value} is outside {lo}..{hi}")
        return value

    return parse


def _int_in(lo: int, hi: int) -> Callable[[str, str], int]:
    return _number_in(int, lo, hi)


def _float_in(lo: float, hi: float) -> Callable[[str, str], float]:
    return _number_in(float, lo, hi)


def retention_months(name: str, raw: str) -> int:
    """RETENTION_MONTHS: whole months, never below the three years the express licensing rules keep records."""
    months: int = _int_in(1, 1200)(name, raw)
    if months < MIN_RETENTION_MONTHS:
        raise SettingsError(f"{name}: {months} months is below {MIN_RETENTION_MONTHS}: the express licensing rules "
                            "keep records (快递业务档案) at least 3 years")
    return months


def _listen(name: str, raw: str) -> str:
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise SettingsError(f"{name}: {raw!r} is not HOST:PORT")
    return raw


def _dsn(name: str, raw: str) -> str:
    if not raw.startswith(("postgres://", "postgresql://")):
        raise SettingsError(f"{name}: must be a postgresql:// URL")
    return raw


def _url(name: str, raw: str) -> str:
    if raw and not raw.startswith(("http://", "https://")):
        raise SettingsError(f"{name}: must be an http:// or https:// URL")
    return raw


def _level(name: str, raw: str) -> str:
    if raw.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise SettingsError(f"{name}: {raw!r} is not one of DEBUG, INFO, WARNING, ERROR")
    return raw.upper()


def _log_format(name: str, raw: str) -> str:
    if raw.lower() not in {"json", "text"}:
        raise SettingsError(f"{name}: {raw!r} is not json or text")
    return raw.lower()


def _text(name: str, raw: str) -> str:
    return raw


def _flag(name: str, raw: str) -> bool:
    if raw.lower() in {"1", "true", "yes"}:
        return True
    if raw.lower() in {"0", "false", "no"}:
        return False
    raise SettingsError(f"{name}: {raw!r} is not 1 or 0")


def _pem_file(kind: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        from gateway.security import tls  # it imports this module, so not at the top

        return tls.private_key_file(name, raw) if kind == "key" else tls.certificate_file(name, raw)

    return parse


_NOTE_NAME = re.compile(r"[A-Za-z0-9._/\-]{1,100}")


def _note_name(name: str, raw: str) -> str:
    if not _NOTE_NAME.fullmatch(raw):
        raise SettingsError(f"{name}: {raw!r} is not a log or key name (letters, digits and . _ / - only)")
    return raw


def _verifier_keys(name: str, raw: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    for key in keys:
        if key.count("+") != 2:
            raise SettingsError(f"{name}: {key[:40]!r} is not a verifier key (name+keyhash+base64)")
    return keys


def _rate_limits(name: str, raw: str) -> tuple[tuple[str, float, int], ...]:
    """`role=RATE/BURST` (or `role=off`), comma-separated; roles not named keep their defaults."""
    known = {r.value for r in Role}
    limits = {role: (rate, burst) for role, rate, burst in DEFAULT_RATE_LIMITS}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        role, sep, value = item.partition("=")
        role = role.strip()
        if not sep or role not in known:
            raise SettingsError(f"{name}: {item!r} is not ROLE=RATE/BURST with ROLE one of {', '.join(sorted(known))}")
        if value.strip() == "off":
            limits[role] = (float("inf"), 0)
            continue
        rate_text, _, burst_text = value.partition("/")
        try:
            rate, burst = float(rate_text), int(burst_text or max(1, round(float(rate_text))))
        except ValueError:
            raise SettingsError(f"{name}: {item!r} is not ROLE=RATE/BURST (calls per second, then a whole number)") \
                from None
        if not 0 < rate < float("inf") or burst < 1:
            raise SettingsError(f"{name}: {item!r} needs a rate above 0 and a burst of at least 1")
        limits[role] = (rate, burst)
    return tuple((role, rate, burst) for role, (rate, burst) in limits.items())


# environment variable -> (field, parser); the order is the README table's order.
ENVIRONMENT: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "DATABASE_URL": ("database_url", _dsn),
    "DATABASE_REPLICA_URL": ("database_replica_url", _dsn),
    "GATEWAY_LISTEN": ("listen", _listen),
    "GATEWAY_TLS_CERT": ("tls_cert", _pem_file("certificate")),
    "GATEWAY_TLS_KEY": ("tls_key", _pem_file("key")),
    "GATEWAY_TLS_CLIENT_CA": ("tls_client_ca", _pem_file("certificate")),
    "GATEWAY_ALLOW_PLAINTEXT": ("allow_plaintext", _flag),
    "GATEWAY_DATA_KEY": ("data_key", _b64_key),
    "GATEWAY_INDEX_KEY": ("index_key", _b64_key),
    "GATEWAY_PAST_DATA_KEYS": ("past_data_keys", _b64_keys),
    "GATEWAY_PAST_INDEX_KEYS": ("past_index_keys", _b64_keys),
    "SENDER_REF_TTL_S": ("sender_ref_ttl_s", _int_in(60, 86400)),
    "IDENTITY_AUTHORITY_URL": ("identity_authority_url", _url),
    "IDENTITY_AUTHORITY_KEY": ("identity_authority_key", _text),
    "IDENTITY_AUTHORITY_TIMEOUT_S": ("identity_authority_timeout_s", _float_in(0.05, 30)),
    "DB_POOL_MIN": ("db_pool_min", _int_in(1, 256)),
    "DB_POOL_MAX": ("db_pool_max", _int_in(1, 256)),
    "DB_CONNECT_TIMEOUT_S": ("db_connect_timeout_s", _float_in(0.1, 300)),
    "DB_ACQUIRE_TIMEOUT_S": ("db_acquire_timeout_s", _float_in(0.1, 300)),
    "DB_COMMAND_TIMEOUT_S": ("db_command_timeout_s", _float_in(0.1, 3600)),
    "GRPC_MAX_MESSAGE_BYTES": ("max_message_bytes", _int_in(64 * 1024, 64 * 1024 * 1024)),
    "SHUTDOWN_GRACE_S": ("shutdown_grace_s", _float_in(0, 300)),
    "TOKEN_CACHE_TTL_S": ("token_cache_ttl_s", _float_in(0, 3600)),
    "METRICS_PORT": ("metrics_port", _int_in(0, 65535)),
    "LOG_LEVEL": ("log_level", _level),
    "LOG_FORMAT": ("log_format", _log_format),
    "GROUP_COMMIT_MAX": ("group_commit_max", _int_in(1, 1024)),
    "SENDER_PATTERN_WINDOW_S": ("sender_pattern_window_s", _int_in(60, 30 * 86400)),
    "BLOCKLIST_POLL_S": ("blocklist_poll_s", _float_in(0.2, 300)),
    "BLOB_STORE_DIR": ("blob_store_dir", _text),
    "BLOB_MAX_BYTES": ("blob_max_bytes", _int_in(64 * 1024, 64 * 1024 * 1024)),
    "WEIGHT_MISMATCH_SHARE": ("weight_mismatch_share", _float_in(0.01, 10)),
    "WEIGHT_MISMATCH_G": ("weight_mismatch_g", _int_in(0, 10**6)),
    "EVIDENCE_SIGNING_KEY": ("evidence_signing_key", _b64_key),
    "EVIDENCE_KEY_NAME": ("evidence_key_name", _note_name),
    "EVIDENCE_ORIGIN": ("evidence_origin", _note_name),
    "EVIDENCE_PAST_KEYS": ("evidence_past_keys", _verifier_keys),
    "EVIDENCE_HEAD_INTERVAL_S": ("evidence_head_interval_s", _float_in(1, 86400)),
    "EVIDENCE_APPEND_S": ("evidence_append_s", _float_in(0, 60)),
    "RATE_LIMITS": ("rate_limits", _rate_limits),
    "MAX_STREAMS_PER_PRINCIPAL": ("max_streams_per_principal", _int_in(1, 100_000)),
    "GATEWAY_PROCESSES": ("processes", _int_in(1, 256)),
    "GATEWAY_PROCESS_INDEX": ("process_index", _int_in(0, 255)),
    "RETENTION_MONTHS": ("retention_months", retention_months),
    "PARTITION_MONTHS_AHEAD": ("partition_months_ahead", _int_in(1, 24)),
}
REQUIRED = ("DATABASE_URL", "GATEWAY_DATA_KEY", "GATEWAY_INDEX_KEY")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Reads and validates every setting; raises SettingsError naming the first bad one."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for var, (field_name, parse) in ENVIRONMENT.items():
        raw = env.get(var, "")
        if raw == "":
            if var in REQUIRED:
                raise SettingsError(f"{var}: required but not set")
            continue
        values[field_name] = parse(var, raw)
    settings = Settings(**values)
    if settings.db_pool_min > settings.db_pool_max:
        raise SettingsError("DB_POOL_MIN: larger than DB_POOL_MAX")
    if settings.process_index >= max(settings.processes, 1) and settings.process_index:
        raise SettingsError(f"GATEWAY_PROCESS_INDEX: {settings.process_index} is not below GATEWAY_PROCESSES")
    if settings.database_replica_url and settings.database_replica_url == settings.database_url:
        raise SettingsError("DATABASE_REPLICA_URL: is DATABASE_URL itself; leave it unset to read from the primary")
    if settings.data_key == settings.index_key:
        raise SettingsError("GATEWAY_INDEX_KEY: must differ from GATEWAY_DATA_KEY")
    _check_transport(settings)
    return settings


def _check_transport(settings: Settings) -> None:
    """TLS files that belong together, and no plaintext off loopback unless GATEWAY_ALLOW_PLAINTEXT says so."""
    from gateway.security import tls

    tls.check_server(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
    if not settings.tls_cert and not settings.allow_plaintext and not tls.is_loopback(settings.listen):
        raise SettingsError(f"GATEWAY_LISTEN: {settings.listen} is not a loopback address and TLS is off: set "
                            "GATEWAY_TLS_CERT and GATEWAY_TLS_KEY, or GATEWAY_ALLOW_PLAINTEXT=1 to serve plaintext "
                            "there (behind a proxy that terminates TLS)")
