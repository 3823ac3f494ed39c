"""Real local servers the alert tests deliver to: an HTTP webhook receiver that checks the
signature and answers a scripted status per request, and an aiosmtpd SMTP server. Both bind
port 0 (a free port chosen by the system)."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller

from trading.alerts import verify_signature


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    verified: bool


@dataclass
class WebhookReceiver:
    """Answers the k-th request with ``statuses[k]`` (the last one repeats)."""

    secret: str
    statuses: list[int]
    url: str = ""
    requests: list[Received] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() of each request


@contextmanager
def webhook_receiver(secret: str, statuses: list[int]) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(secret, statuses)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = dict(self.headers.items())
            verified = verify_signature(secret, headers, body, now=time.time())
            with lock:
                receiver.arrivals.append(time.monotonic())
                receiver.requests.append(Received(body, headers, verified))
                status = statuses[min(len(receiver.requests), len(statuses)) - 1]
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's handler hook
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


class _PortZeroController(Controller):
    """aiosmtpd's Controller on the port the system picked (it would connect to port 0)."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@contextmanager
def smtp_server(**smtp_options: object) -> Iterator[tuple[int, _Inbox]]:
    """``smtp_options``: aiosmtpd's SMTP options (tls_context, require_starttls,
    authenticator, ...)."""
    inbox = _Inbox()
    controller = _PortZeroController(inbox, hostname="127.0.0.1", port=0, **smtp_options)
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key: (certificate, key) PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp.crt", folder / "smtp.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
