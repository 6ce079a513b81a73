"""Transport security: a TLS and a mutual-TLS gateway on real ports, reached (or refused) over real channels by
test clients, the scanner adapter and the CLIs; the settings that configure it; make run's plaintext loopback.

Every key and certificate is made here, at test time, with `cryptography`: nothing private is committed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from courier.v1 import acceptance_pb2_grpc, custody_pb2, custody_pb2_grpc
from courier.v1 import inspection_pb2 as pb
from gateway.security.tls import ClientTLS, client_tls, open_channel
from gateway.settings import ENVIRONMENT, Settings, SettingsError, load_settings
from gateway.storage.cluster import free_port
from inspection.config import ConfigError, load
from inspection.queue import AsyncQueue
from inspection.routing import Decision
from inspection.runner import Adapter
from tests.conftest import REPO, b64key, make_tokens
from tests.e2e.processes import wait_for_line
from tests.e2e.requests import ZHANG, verify_request

SERVER_NAME = "gateway.internal"  # a name in the server certificate besides 127.0.0.1 and localhost
CLIENT_VARIABLES = ("GATEWAY_TLS_CA", "GATEWAY_TLS_CLIENT_CERT", "GATEWAY_TLS_CLIENT_KEY", "GATEWAY_TLS_SERVER_NAME")
SERVER_VARIABLES = ("GATEWAY_TLS_CERT", "GATEWAY_TLS_KEY", "GATEWAY_TLS_CLIENT_CA", "GATEWAY_ALLOW_PLAINTEXT")
CASE = "CASE-2026-0042"


# --- a throwaway PKI ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as objects and as PEM files."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path
    key_file: Path

    @property
    def cert_pem(self) -> bytes:
        """The certificate's PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """The key's PEM (PKCS#8, unencrypted)."""
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def _issue(folder: Path, name: str, cn: str, issuer: Issued | None, *, ca: bool = False,
           usage: x509.ObjectIdentifier | None = None, dns: tuple[str, ...] = (),
           ips: tuple[str, ...] = ()) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False, key_agreement=False,
                                            key_cert_sign=ca, crl_sign=ca, encipher_only=False,
                                            decipher_only=False), critical=True))
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if dns or ips:
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    issued = Issued(cert, key, folder / f"{name}.pem", folder / f"{name}.key")
    issued.cert_file.write_bytes(issued.cert_pem)
    issued.key_file.write_bytes(issued.key_pem)
    issued.key_file.chmod(0o600)
    return issued


@dataclass(frozen=True)
class Pki:
    """A CA, the gateway's certificate, a scanner's client certificate, and one from a CA nobody trusts."""

    folder: Path
    ca: Issued
    server: Issued
    client: Issued
    other_ca: Issued
    stranger: Issued


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Made once for the module, in a temporary folder."""
    folder = tmp_path_factory.mktemp("pki")
    ca = _issue(folder, "ca", "Courier Test CA", None, ca=True)
    other = _issue(folder, "other-ca", "Somebody Else's CA", None, ca=True)
    return Pki(folder, ca,
               _issue(folder, "server", "courier-gateway", ca, usage=ExtendedKeyUsageOID.SERVER_AUTH,
                      dns=("localhost", SERVER_NAME), ips=("127.0.0.1",)),
               _issue(folder, "scanner", "scanner-sh-hub-02", ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH),
               other,
               _issue(folder, "stranger", "scanner-sh-hub-02", other, usage=ExtendedKeyUsageOID.CLIENT_AUTH))


# --- gateways -----------------------------------------------------------------------------------------------

@dataclass
class TlsGateway:
    """A gateway serving TLS on a real port, and a token per role."""

    port: int
    settings: Settings
    tokens: dict[str, str]

    @property
    def target(self) -> str:
        """HOST:PORT to dial."""
        return f"127.0.0.1:{self.port}"

    def md(self, role: str) -> tuple[tuple[str, str], ...]:
        """Call metadata with the role's token."""
        return (("authorization", f"Bearer {self.tokens[role]}"),)


@asynccontextmanager
async def serving(settings: Settings, simulator: Any, pki: Pki, *, mutual: bool) -> AsyncIterator[TlsGateway]:
    """A real gateway with TLS (and with mutual TLS when asked), talking to the authority simulator."""
    from gateway.server import create_server

    s = replace(settings, identity_authority_url=simulator.url, identity_authority_key="test-key",
                tls_cert=str(pki.server.cert_file), tls_key=str(pki.server.key_file),
                tls_client_ca=str(pki.ca.cert_file) if mutual else "")
    built = await create_server(s)
    await built.server.start()
    try:
        yield TlsGateway(built.port, s, await make_tokens(s.database_url))
    finally:
        await built.stop(0.5)


@pytest.fixture
async def tls_gateway(settings: Settings, authority_simulator: Any, pki: Pki) -> AsyncIterator[TlsGateway]:
    """TLS, no client certificates asked for."""
    async with serving(settings, authority_simulator, pki, mutual=False) as gw:
        yield gw


@pytest.fixture
async def mtls_gateway(settings: Settings, authority_simulator: Any, pki: Pki) -> AsyncIterator[TlsGateway]:
    """Mutual TLS: client certificates required, verified against the test CA."""
    async with serving(settings, authority_simulator, pki, mutual=True) as gw:
        yield gw


async def _verify(target: str, tls: ClientTLS | None, metadata: Any) -> Any:
    async with open_channel(target, tls) as channel:
        return await acceptance_pb2_grpc.AcceptanceStub(channel).VerifySender(verify_request(), metadata=metadata,
                                                                              timeout=10)


async def _refused(target: str, tls: ClientTLS | None, metadata: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _verify(target, tls, metadata)
    return caught.value.code()


def _trusting(pki: Pki, **given: Any) -> ClientTLS:
    return ClientTLS(roots=pki.ca.cert_pem, **given)


# --- the gateway's side -------------------------------------------------------------------------------------

async def test_a_tls_gateway_answers_a_real_call_over_a_secure_channel(tls_gateway: TlsGateway, pki: Pki) -> None:
    answer = await _verify(tls_gateway.target, _trusting(pki), tls_gateway.md("terminal"))
    assert answer.sender_ref and answer.masked_document_number.endswith(ZHANG["number"][-4:])
    # The certificate names the gateway as localhost too, and, with the override, as its service name.
    assert (await _verify(f"localhost:{tls_gateway.port}", _trusting(pki), tls_gateway.md("terminal"))).sender_ref
    named = _trusting(pki, server_name=SERVER_NAME)
    assert (await _verify(tls_gateway.target, named, tls_gateway.md("terminal"))).sender_ref


async def test_a_tls_gateway_refuses_plaintext_and_is_refused_by_a_client_that_does_not_trust_it(
        tls_gateway: TlsGateway, pki: Pki) -> None:
    md = tls_gateway.md("terminal")
    assert await _refused(tls_gateway.target, None, md) is grpc.StatusCode.UNAVAILABLE
    # A client that trusts another CA, or checks for a name the certificate does not hold, does not talk to it.
    assert await _refused(tls_gateway.target, ClientTLS(roots=pki.other_ca.cert_pem), md) is grpc.StatusCode.UNAVAILABLE
    wrong_name = _trusting(pki, server_name="elsewhere.example")
    assert await _refused(tls_gateway.target, wrong_name, md) is grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_refuses_a_client_without_a_certificate_or_with_one_from_another_ca(
        mtls_gateway: TlsGateway, pki: Pki) -> None:
    md, target = mtls_gateway.md("terminal"), mtls_gateway.target
    assert await _refused(target, None, md) is grpc.StatusCode.UNAVAILABLE
    assert await _refused(target, _trusting(pki), md) is grpc.StatusCode.UNAVAILABLE
    stranger = _trusting(pki, cert_chain=pki.stranger.cert_pem, private_key=pki.stranger.key_pem)
    assert await _refused(target, stranger, md) is grpc.StatusCode.UNAVAILABLE
    good = _trusting(pki, cert_chain=pki.client.cert_pem, private_key=pki.client.key_pem)
    assert (await _verify(target, good, md)).sender_ref


async def test_with_mutual_tls_the_bearer_token_still_decides_who_calls(mtls_gateway: TlsGateway, pki: Pki) -> None:
    good = _trusting(pki, cert_chain=pki.client.cert_pem, private_key=pki.client.key_pem)
    assert await _refused(mtls_gateway.target, good, ()) is grpc.StatusCode.UNAUTHENTICATED
    # A scanner's certificate with a scanner's token is a scanner: VerifySender is for terminals.
    assert await _refused(mtls_gateway.target, good, mtls_gateway.md("scanner")) is grpc.StatusCode.PERMISSION_DENIED


# --- the scanner adapter ------------------------------------------------------------------------------------

ADAPTER = """
[gateway]
target = "{target}"
token = "{token}"
backoff_initial_s = 0.05
backoff_max_s = 0.2
{tls}
[queue]
path = "queue.sqlite"

[site]
location = "SH-HUB-02/line-3"

[[devices]]
id = "camera-1"
type = "folder"
kind = "camera"
connection = {{ directory = "camera" }}
"""


async def _forwarded(folder: Path, environ: dict[str, str], within_s: float) -> tuple[list[Decision], int]:
    """Runs the adapter of folder/site.toml with one event queued; returns its acks and what is still pending."""
    config = load(folder / "site.toml", environ=environ)
    queue = AsyncQueue(config.queue_path)
    adapter = Adapter(config, queue)
    seen: list[Decision] = []
    adapter.board.subscribe(seen.append)
    await queue.put(pb.ScanEvent(device_id="camera-1", kind=pb.SCAN_KIND_HANDHELD, waybill_no="SF100000000001"))
    tasks = [asyncio.ensure_future(job) for job in adapter.jobs()]
    try:
        for _ in range(int(within_s / 0.05)):
            if seen:
                break
            await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        pending = queue.sync.depth()
        await queue.close()
    return seen, pending


def _site(folder: Path, gw: TlsGateway, tls: str) -> Path:
    folder.mkdir()
    (folder / "camera").mkdir()
    (folder / "site.toml").write_text(ADAPTER.format(target=gw.target, token=gw.tokens["scanner"], tls=tls))
    return folder


async def test_the_scanner_adapter_reaches_a_mutual_tls_gateway_with_its_config(
        mtls_gateway: TlsGateway, pki: Pki, tmp_path: Path) -> None:
    table = (f'[gateway.tls]\nca_file = "{pki.ca.cert_file}"\ncert_file = "{pki.client.cert_file}"\n'
             f'key_file = "{pki.client.key_file}"\nserver_name = "{SERVER_NAME}"\n')
    seen, pending = await _forwarded(_site(tmp_path / "with", mtls_gateway, table), {}, within_s=20)
    assert [(d.decision, d.reasons[0].split(" ")[0]) for d in seen] == [("DIVERT_TO_HOLD", "UNKNOWN_WAYBILL")]
    assert pending == 0
    # The same adapter without its certificate is refused, and keeps its reading queued.
    no_cert = f'[gateway.tls]\nca_file = "{pki.ca.cert_file}"\n'
    seen, pending = await _forwarded(_site(tmp_path / "without", mtls_gateway, no_cert), {}, within_s=1.5)
    assert seen == [] and pending == 1


async def test_without_a_tls_table_the_adapter_takes_the_gateway_tls_variables(
        mtls_gateway: TlsGateway, pki: Pki, tmp_path: Path) -> None:
    environ = {"GATEWAY_TLS_CA": str(pki.ca.cert_file), "GATEWAY_TLS_CLIENT_CERT": str(pki.client.cert_file),
               "GATEWAY_TLS_CLIENT_KEY": str(pki.client.key_file)}
    seen, pending = await _forwarded(_site(tmp_path / "site", mtls_gateway, ""), environ, within_s=20)
    assert len(seen) == 1 and pending == 0


@pytest.mark.parametrize(("table", "key"), [
    ('ca_file = "missing.pem"', "gateway.tls.ca_file"),
    ('ca_file = "system"\ncert_file = "{cert}"', "gateway.tls.key_file"),
    ('ca_file = "{key}"', "gateway.tls.ca_file"),
    ('cert_file = "{cert}"\nkey_file = "{other_key}"', "gateway.tls.key_file"),
    ('server_name = "gateway.internal"', "gateway.tls.server_name"),
    ('ca_file = "{ca}"\npassword = "x"', "gateway.tls.password"),
    ('', "gateway.tls"),
])
def test_a_bad_tls_table_is_named(table: str, key: str, pki: Pki, tmp_path: Path) -> None:
    body = table.format(cert=pki.client.cert_file, key=pki.client.key_file, other_key=pki.stranger.key_file,
                        ca=pki.ca.cert_file)
    (tmp_path / "site.toml").write_text(ADAPTER.format(target="127.0.0.1:1", token="t",
                                                       tls=f"[gateway.tls]\n{body}\n"))
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "site.toml", environ={})
    assert caught.value.key == key, str(caught.value)


# --- the CLIs -----------------------------------------------------------------------------------------------

def _env(**extra: str) -> dict[str, str]:
    """A clean environment: none of the developer's settings decide where or how the command goes."""
    dropped = ("DATABASE_URL", "GATEWAY_LISTEN", "GATEWAY_TOKEN", "INVESTIGATION_CASE", "METRICS_PORT",
               *CLIENT_VARIABLES, *SERVER_VARIABLES)
    return {**{k: v for k, v in os.environ.items() if k not in dropped}, "COLUMNS": "200", **extra}


def _client_env(pki: Pki, client: Issued | None) -> dict[str, str]:
    env = {"GATEWAY_TLS_CA": str(pki.ca.cert_file)}
    if client is not None:
        env |= {"GATEWAY_TLS_CLIENT_CERT": str(client.cert_file), "GATEWAY_TLS_CLIENT_KEY": str(client.key_file)}
    return env


async def _gateway_cli(*args: str, env: dict[str, str], cwd: Path = REPO) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", *args, cwd=cwd, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_demo_reaches_a_mutual_tls_gateway_with_the_client_settings(
        mtls_gateway: TlsGateway, pki: Pki, tmp_path: Path) -> None:
    argv = ("demo", "--target", mtls_gateway.target, "--token", mtls_gateway.tokens["terminal"])
    code, out, err = await _gateway_cli(*argv, env=_env(**_client_env(pki, pki.client)), cwd=tmp_path)
    assert code == 0 and "ACCEPT_DECISION_ACCEPTED" in out and "PARCEL_STATE_DISPATCHED" in out, out + err
    code, out, err = await _gateway_cli(*argv, env=_env(**_client_env(pki, None)), cwd=tmp_path)
    assert code == 1 and "UNAVAILABLE" in out and mtls_gateway.target in out, out + err


async def test_investigate_reaches_a_mutual_tls_gateway_by_its_service_name(
        mtls_gateway: TlsGateway, pki: Pki) -> None:
    argv = ("investigate", "search", "--case", CASE, "--document", ZHANG["number"], "--json",
            "--target", mtls_gateway.target, "--token", mtls_gateway.tokens["investigator"])
    env = _env(**_client_env(pki, pki.client), GATEWAY_TLS_SERVER_NAME=SERVER_NAME)
    code, out, err = await _gateway_cli(*argv, env=env)
    assert code == 0 and '"shipments"' in out, out + err
    code, out, err = await _gateway_cli(*argv, env=_env())  # plaintext to a TLS gateway
    assert code == 1 and err.startswith(f"UNAVAILABLE from the gateway at {mtls_gateway.target}"), out + err


@pytest.mark.parametrize(("command", "given", "named"), [
    (("demo", "--token", "t"), {"GATEWAY_TLS_CLIENT_CERT": "{cert}"}, "GATEWAY_TLS_CLIENT_KEY"),
    (("investigate", "search", "--case", CASE, "--waybill", "SF1", "--token", "t"),
     {"GATEWAY_TLS_CA": "{key}"}, "GATEWAY_TLS_CA"),
])
async def test_a_cli_with_a_bad_client_setting_exits_2_naming_it(command: tuple[str, ...], given: dict[str, str],
                                                                 named: str, pki: Pki) -> None:
    env = _env(**{k: v.format(cert=pki.client.cert_file, key=pki.client.key_file) for k, v in given.items()})
    code, out, err = await _gateway_cli(*command, env=env)
    assert code == 2 and err.strip().splitlines() == [err.strip()] and f"bad setting: {named}: " in err, out + err


# --- the settings -------------------------------------------------------------------------------------------

GOOD = {"DATABASE_URL": "postgresql://u@/db", "GATEWAY_DATA_KEY": b64key(), "GATEWAY_INDEX_KEY": b64key()}


def _server_env(pki: Pki, **extra: str) -> dict[str, str]:
    return {**GOOD, "GATEWAY_TLS_CERT": str(pki.server.cert_file), "GATEWAY_TLS_KEY": str(pki.server.key_file),
            **extra}


def test_tls_settings_load(pki: Pki) -> None:
    s = load_settings(_server_env(pki, GATEWAY_TLS_CLIENT_CA=str(pki.ca.cert_file), GATEWAY_LISTEN="0.0.0.0:50051"))
    assert (s.tls_cert, s.tls_key, s.tls_client_ca) == (str(pki.server.cert_file), str(pki.server.key_file),
                                                        str(pki.ca.cert_file))
    assert not s.allow_plaintext  # TLS off loopback needs no permission


@pytest.fixture
def encrypted_key(pki: Pki, tmp_path: Path) -> Path:
    """The server's key, encrypted with a password."""
    path = tmp_path / "encrypted.key"
    path.write_bytes(pki.server.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.BestAvailableEncryption(b"secret")))
    return path


@pytest.mark.parametrize(("change", "named", "says"), [
    ({"GATEWAY_TLS_KEY": ""}, "GATEWAY_TLS_KEY", "required when GATEWAY_TLS_CERT is set"),
    ({"GATEWAY_TLS_CERT": ""}, "GATEWAY_TLS_CERT", "required when GATEWAY_TLS_KEY is set"),
    ({"GATEWAY_TLS_CERT": "", "GATEWAY_TLS_KEY": "", "GATEWAY_TLS_CLIENT_CA": "{ca}"}, "GATEWAY_TLS_CERT",
     "required when GATEWAY_TLS_CLIENT_CA is set"),
    ({"GATEWAY_TLS_CERT": "{folder}/nowhere.pem"}, "GATEWAY_TLS_CERT", "cannot read {folder}/nowhere.pem"),
    ({"GATEWAY_TLS_CERT": "{server_key}"}, "GATEWAY_TLS_CERT", "{server_key} holds no PEM certificate"),
    ({"GATEWAY_TLS_KEY": "{server_cert}"}, "GATEWAY_TLS_KEY", "{server_cert} holds no PEM private key"),
    ({"GATEWAY_TLS_KEY": "{client_key}"}, "GATEWAY_TLS_KEY", "is not the private key of the certificate in "
                                                             "GATEWAY_TLS_CERT"),
    ({"GATEWAY_TLS_KEY": "{encrypted}"}, "GATEWAY_TLS_KEY", "{encrypted} is an encrypted key"),
    ({"GATEWAY_TLS_CLIENT_CA": "{folder}"}, "GATEWAY_TLS_CLIENT_CA", "cannot read {folder}"),
    ({"GATEWAY_ALLOW_PLAINTEXT": "perhaps"}, "GATEWAY_ALLOW_PLAINTEXT", "'perhaps' is not 1 or 0"),
])
def test_a_bad_tls_setting_is_named(change: dict[str, str], named: str, says: str, pki: Pki,
                                    encrypted_key: Path) -> None:
    paths = {"ca": pki.ca.cert_file, "folder": pki.folder, "server_key": pki.server.key_file,
             "server_cert": pki.server.cert_file, "client_key": pki.client.key_file, "encrypted": encrypted_key}
    env = _server_env(pki, **{k: v.format(**paths) for k, v in change.items()})
    with pytest.raises(SettingsError) as caught:
        load_settings({k: v for k, v in env.items() if v})
    assert str(caught.value).startswith(f"{named}: {says.format(**paths)}"), str(caught.value)


@pytest.mark.parametrize("listen", ["0.0.0.0:50051", "[::]:50051", "10.1.2.3:50051", "gateway.internal:50051"])
def test_plaintext_off_loopback_is_refused_unless_allowed(listen: str) -> None:
    with pytest.raises(SettingsError, match="^GATEWAY_LISTEN: .* not a loopback address and TLS is off"):
        load_settings({**GOOD, "GATEWAY_LISTEN": listen})
    assert load_settings({**GOOD, "GATEWAY_LISTEN": listen, "GATEWAY_ALLOW_PLAINTEXT": "1"}).allow_plaintext


@pytest.mark.parametrize("listen", ["127.0.0.1:50051", "127.0.0.2:1", "[::1]:50051", "localhost:50051"])
def test_plaintext_on_loopback_is_the_default(listen: str) -> None:
    assert load_settings({**GOOD, "GATEWAY_LISTEN": listen}).listen == listen


def test_bad_client_settings_are_named(pki: Pki) -> None:
    with pytest.raises(SettingsError, match="^GATEWAY_TLS_CLIENT_CERT: required when GATEWAY_TLS_CLIENT_KEY"):
        client_tls(ca=str(pki.ca.cert_file), key=str(pki.client.key_file))
    with pytest.raises(SettingsError, match="^GATEWAY_TLS_CLIENT_KEY: is not the private key"):
        client_tls(cert=str(pki.client.cert_file), key=str(pki.stranger.key_file))
    with pytest.raises(SettingsError, match="^GATEWAY_TLS_SERVER_NAME: means nothing without TLS"):
        client_tls(server_name=SERVER_NAME)
    assert client_tls() is None and client_tls(ca="system") == ClientTLS()  # plaintext; the system's roots


def test_every_tls_variable_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    assert [v for v in (*SERVER_VARIABLES, *CLIENT_VARIABLES) if f"`{v}`" not in readme] == []
    assert all(v in ENVIRONMENT for v in SERVER_VARIABLES) and "## Transport security" in readme


# --- the processes ------------------------------------------------------------------------------------------


@asynccontextmanager
async def _process(*args: str, env: dict[str, str], cwd: Path, ready: str) -> AsyncIterator[list[str]]:
    """A `python -m gateway` process, its output up to the ready line; interrupted (SIGINT) at the end."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", *args, cwd=cwd, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        await wait_for_line(proc.stdout, ready, seen)
        yield seen
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.communicate(), timeout=30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def test_serve_with_the_tls_settings_says_mutual_tls_and_serves_it(db_dsn: str, pki: Pki,
                                                                         tmp_path: Path) -> None:
    port = free_port()
    env = _env(**_server_env(pki, DATABASE_URL=db_dsn, GATEWAY_LISTEN=f"127.0.0.1:{port}",
                             GATEWAY_TLS_CLIENT_CA=str(pki.ca.cert_file), BLOB_STORE_DIR=str(tmp_path / "blobs")))
    async with _process("serve", env=env, cwd=tmp_path, ready="gateway transport:") as seen:
        assert any(line.startswith("gateway transport: mutual TLS") for line in seen), seen
        token = (await make_tokens(db_dsn))["terminal"]
        good = _trusting(pki, cert_chain=pki.client.cert_pem, private_key=pki.client.key_pem)
        async with open_channel(f"127.0.0.1:{port}", good) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await custody_pb2_grpc.CustodyStub(channel).GetParcel(
                    custody_pb2.GetParcelRequest(waybill_no="SF100000000002"),
                    metadata=(("authorization", f"Bearer {token}"),), timeout=10)
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND  # through TLS, the token and the database
        assert await _refused(f"127.0.0.1:{port}", _trusting(pki), ()) is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(("extra", "line"), [
    ({"GATEWAY_TLS_CERT": "{cert}"}, "gateway: bad setting: GATEWAY_TLS_KEY: required when GATEWAY_TLS_CERT is set"),
    ({"GATEWAY_LISTEN": "0.0.0.0:50051"}, "gateway: bad setting: GATEWAY_LISTEN: 0.0.0.0:50051 is not a loopback"),
])
async def test_serve_and_make_run_with_a_bad_tls_setting_exit_2_naming_it(extra: dict[str, str], line: str,
                                                                          pki: Pki, tmp_path: Path) -> None:
    env = _env(**GOOD, **{k: v.format(cert=pki.server.cert_file) for k, v in extra.items()})
    for command in ("serve", "dev"):  # make run with no DATABASE_URL: it would start a cluster of its own
        given = env if command == "serve" else {k: v for k, v in env.items() if k != "DATABASE_URL"}
        code, out, err = await _gateway_cli(command, env=given, cwd=tmp_path)
        assert code == 2 and err.startswith(line) and len(err.strip().splitlines()) == 1, (command, out + err)
    assert not (tmp_path / ".var" / "pg").exists()  # make run refused before it started a cluster


async def test_make_run_says_it_serves_plaintext_on_loopback_only(db_dsn: str, tmp_path: Path) -> None:
    port = free_port()
    env = _env(DATABASE_URL=db_dsn, GATEWAY_LISTEN=f"127.0.0.1:{port}")
    async with _process("dev", env=env, cwd=tmp_path, ready="gateway transport:") as seen:
        said = "".join(seen)
        assert f"make run serves plaintext (no TLS), on loopback only: 127.0.0.1:{port}" in said, said
        assert "gateway transport: plaintext, on loopback only" in said, said
        # It is plaintext indeed: a plaintext client's call reaches it (and is refused for its missing token).
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await custody_pb2_grpc.CustodyStub(channel).GetParcel(
                    custody_pb2.GetParcelRequest(waybill_no="SF100000000003"), timeout=10)
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
