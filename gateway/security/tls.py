"""Transport security: the gateway's TLS and mutual-TLS credentials, and the one channel builder every client uses.

The server side is configured by GATEWAY_TLS_CERT and GATEWAY_TLS_KEY (TLS) and GATEWAY_TLS_CLIENT_CA (client
certificates required and verified against it: mutual TLS). Every client of the project (the CLIs, the scanner
adapters) opens its channel through `open_channel`, configured by GATEWAY_TLS_CA (the CA that signed the
gateway's certificate, or `system` for the system's roots), GATEWAY_TLS_CLIENT_CERT and GATEWAY_TLS_CLIENT_KEY
(its own certificate, for mutual TLS) and GATEWAY_TLS_SERVER_NAME (the name to check the certificate against,
when it differs from the target's host). Files are PEM; each is checked when the setting is read, so a bad
one is named at start, not at the first call.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from gateway.settings import SettingsError

# Client-side environment variables, in the order of the README's table.
CLIENT_CA = "GATEWAY_TLS_CA"
CLIENT_CERT = "GATEWAY_TLS_CLIENT_CERT"
CLIENT_KEY = "GATEWAY_TLS_CLIENT_KEY"
CLIENT_SERVER_NAME = "GATEWAY_TLS_SERVER_NAME"
SYSTEM_ROOTS = "system"


class TLSSettingError(SettingsError):
    """A TLS setting is missing or bad; `setting` names it and `problem` says what is wrong."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting, self.problem = setting, problem


@dataclass(frozen=True)
class ClientNames:
    """What the client settings are called where they are read (environment variables, or a config's keys)."""

    ca: str = CLIENT_CA
    cert: str = CLIENT_CERT
    key: str = CLIENT_KEY
    server_name: str = CLIENT_SERVER_NAME


@dataclass(frozen=True)
class ClientTLS:
    """How a client dials the gateway over TLS: the roots it trusts, its own certificate, the name to check."""

    roots: bytes | None = None  # None: the system's trust store
    cert_chain: bytes | None = None
    private_key: bytes | None = None
    server_name: str = ""

    @property
    def mutual(self) -> bool:
        """Whether the client presents a certificate of its own."""
        return self.cert_chain is not None

    def credentials(self) -> grpc.ChannelCredentials:
        """The channel credentials for grpc.aio.secure_channel."""
        return grpc.ssl_channel_credentials(root_certificates=self.roots, private_key=self.private_key,
                                            certificate_chain=self.cert_chain)


# --- reading and checking PEM files -------------------------------------------------------------------------

def _read(setting: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise TLSSettingError(setting, f"cannot read {path}: {err.strerror}") from None


def read_certificates(setting: str, path: str) -> bytes:
    """The PEM bytes of a file holding one or more X.509 certificates; TLSSettingError naming it otherwise."""
    data = _read(setting, path)
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TLSSettingError(setting, f"{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)") from None
    return data


def read_private_key(setting: str, path: str) -> bytes:
    """The PEM bytes of an unencrypted private key file; TLSSettingError naming it otherwise."""
    data = _read(setting, path)
    try:
        serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise TLSSettingError(setting, f"{path} is an encrypted key; give it unencrypted (mode 600)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise TLSSettingError(setting, f"{path} holds no PEM private key (-----BEGIN PRIVATE KEY-----)") from None
    return data


def check_pair(cert_setting: str, cert_pem: bytes, key_setting: str, key_pem: bytes) -> None:
    """Raises TLSSettingError naming the key's setting when the key is not the first certificate's."""
    leaf = x509.load_pem_x509_certificates(cert_pem)[0]
    key = serialization.load_pem_private_key(key_pem, password=None)
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*fmt) != leaf.public_key().public_bytes(*fmt):
        raise TLSSettingError(key_setting, f"is not the private key of the certificate in {cert_setting}")


def certificate_file(setting: str, raw: str) -> str:
    """Settings parser: a readable PEM certificate file's path."""
    read_certificates(setting, raw)
    return raw


def private_key_file(setting: str, raw: str) -> str:
    """Settings parser: a readable, unencrypted PEM private key file's path."""
    read_private_key(setting, raw)
    return raw


# --- the server ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ServerTLS:
    """The gateway's certificate chain and key, and the CA its clients' certificates must chain to (mTLS)."""

    cert_chain: bytes
    private_key: bytes
    client_ca: bytes | None = None

    @property
    def mutual(self) -> bool:
        """Whether client certificates are required and verified."""
        return self.client_ca is not None

    def credentials(self) -> grpc.ServerCredentials:
        """The server credentials for add_secure_port; with a client CA, a client without a good cert is refused."""
        return grpc.ssl_server_credentials([(self.private_key, self.cert_chain)], root_certificates=self.client_ca,
                                           require_client_auth=self.mutual)


def check_server(cert: str, key: str, client_ca: str) -> None:
    """The settings' cross-checks: cert and key come together, the key is the cert's, a client CA needs TLS."""
    if cert and not key:
        raise TLSSettingError("GATEWAY_TLS_KEY", "required when GATEWAY_TLS_CERT is set")
    if key and not cert:
        raise TLSSettingError("GATEWAY_TLS_CERT", "required when GATEWAY_TLS_KEY is set")
    if client_ca and not cert:
        raise TLSSettingError("GATEWAY_TLS_CERT", "required when GATEWAY_TLS_CLIENT_CA is set (mutual TLS is "
                                                  "TLS with client certificates)")
    if cert:
        check_pair("GATEWAY_TLS_CERT", read_certificates("GATEWAY_TLS_CERT", cert),
                   "GATEWAY_TLS_KEY", read_private_key("GATEWAY_TLS_KEY", key))


def server_tls(cert: str, key: str, client_ca: str = "") -> ServerTLS | None:
    """The server's TLS from the settings' file paths; None when no certificate is configured (plaintext)."""
    check_server(cert, key, client_ca)
    if not cert:
        return None
    ca = read_certificates("GATEWAY_TLS_CLIENT_CA", client_ca) if client_ca else None
    return ServerTLS(read_certificates("GATEWAY_TLS_CERT", cert), read_private_key("GATEWAY_TLS_KEY", key), ca)


def describe(cert: str, client_ca: str, listen: str) -> str:
    """How the gateway serves, from its settings, for its start-up line: plaintext, TLS, or mutual TLS."""
    if client_ca:
        return "mutual TLS (client certificates required, verified against GATEWAY_TLS_CLIENT_CA)"
    if cert:
        return "TLS (no client certificates asked for: GATEWAY_TLS_CLIENT_CA is not set)"
    if is_loopback(listen):
        return "plaintext, on loopback only (no TLS: GATEWAY_TLS_CERT is not set)"
    return "plaintext on a non-loopback address (GATEWAY_ALLOW_PLAINTEXT=1): TLS must be in front of it"


def is_loopback(listen: str) -> bool:
    """Whether HOST:PORT names a loopback address (127.0.0.0/8, ::1 or localhost); a host name other than
    localhost is not, since it may resolve to anything."""
    host = listen.rpartition(":")[0].strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- clients ------------------------------------------------------------------------------------------------

def client_tls(ca: str = "", cert: str = "", key: str = "", server_name: str = "", *,
               names: ClientNames = ClientNames(), base: Path = Path(".")) -> ClientTLS | None:
    """A client's TLS from file paths (relative ones from `base`); None when none is set (plaintext).

    TLS is on when a CA (`system`: the system's roots) or a client certificate is given; errors name the
    setting as `names` calls it.
    """
    if cert and not key:
        raise TLSSettingError(names.key, f"required when {names.cert} is set")
    if key and not cert:
        raise TLSSettingError(names.cert, f"required when {names.key} is set")
    if server_name and not (ca or cert):
        raise TLSSettingError(names.server_name, f"means nothing without TLS: set {names.ca} too")
    if server_name and (not server_name.isprintable() or " " in server_name or len(server_name) > 253):
        raise TLSSettingError(names.server_name, f"{server_name[:60]!r} is not a host name")
    if not (ca or cert):
        return None
    roots = None if ca in ("", SYSTEM_ROOTS) else read_certificates(names.ca, str(base / ca))
    chain = private = None
    if cert:
        chain = read_certificates(names.cert, str(base / cert))
        private = read_private_key(names.key, str(base / key))
        check_pair(names.cert, chain, names.key, private)
    return ClientTLS(roots, chain, private, server_name)


def client_tls_from_env(environ: Mapping[str, str] | None = None) -> ClientTLS | None:
    """The client TLS the GATEWAY_TLS_* client variables describe; None when none is set."""
    env = os.environ if environ is None else environ
    return client_tls(env.get(CLIENT_CA, ""), env.get(CLIENT_CERT, ""), env.get(CLIENT_KEY, ""),
                      env.get(CLIENT_SERVER_NAME, ""))


def open_channel(target: str, tls: ClientTLS | None, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """A grpc.aio channel to the gateway: secure with `tls`, plaintext without it."""
    if tls is None:
        return grpc.aio.insecure_channel(target, options=list(options))
    extra = [("grpc.ssl_target_name_override", tls.server_name)] if tls.server_name else []
    return grpc.aio.secure_channel(target, tls.credentials(), options=[*options, *extra])


def describe_client(tls: ClientTLS | None) -> str:
    """How a client dials, for its messages: plaintext, TLS, or mutual TLS."""
    if tls is None:
        return "plaintext"
    return "mutual TLS" if tls.mutual else "TLS"
