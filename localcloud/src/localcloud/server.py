"""The HTTP front of localcloud: one loopback port for every service, as AWS's endpoints are one per
service. A request is routed by its SigV4 credential scope to a service's protocol, after its
signature is verified against the local credentials or the temporary credentials a service issued.

The scope names the *signing* name, which services may share; on AWS their hosts tell them apart. On our one
port the request's shape does: a service whose model has a ``targetPrefix`` claims requests with that target,
and a protocol with a ``claims(request)`` method (rest-json, by its ``requestUri`` templates) claims the rest.

This module names no service. What a service does differently (streaming bodies, other signature versions,
issuing temporary credentials, holding the policies they act under, local web pages) it declares through the
optional hooks documented on :class:`~localcloud.protocols.base.ServiceProtocol`.

A service's local web pages (``web_routes``) live under ``/_localcloud/``. Those routes are unsigned; they are
reachable only through this loopback-bound server, only under a loopback ``Host`` (no DNS rebinding), and their
writes only as same-origin JSON (no cross-site form posts).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import io
import ipaddress
import json
import logging
import os
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, urlsplit

from localcloud import iam_policy, sigv2, sigv4
from localcloud.core import AwsError, Credentials, RequestContext, ensure_dir
from localcloud.protocols.base import (
    CredentialIssuer,
    Request,
    Response,
    RolePolicies,
    ServiceProtocol,
    TemporarySession,
)
from localcloud.protocols.shapes import service_model
from localcloud.services import build

log = logging.getLogger("localcloud")
HEALTH_PATH = "/_localcloud/health"
WEB_PREFIX = "/_localcloud/"
MAX_BUFFERED_BODY = 64 * 1024 * 1024  # JSON/query bodies are read whole to hash them


class BodyReader:
    """The request body, bounded by Content-Length, optionally checked against a declared SHA-256."""

    def __init__(self, stream: BinaryIO, length: int, expected_sha256: str | None = None) -> None:
        self.stream = stream
        self.remaining = length
        self.expected = expected_sha256
        self.digest = hashlib.sha256() if expected_sha256 else None

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        chunk = self.stream.read(size)
        if not chunk:
            raise AwsError("IncompleteBody", "The request body terminated unexpectedly")
        self.remaining -= len(chunk)
        if self.digest is not None:
            self.digest.update(chunk)
            if self.remaining == 0 and not hmac.compare_digest(self.digest.hexdigest(), self.expected or ""):
                raise AwsError(
                    "XAmzContentSHA256Mismatch",
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                )
        return chunk

    def drain(self) -> None:
        self.digest = None
        while self.remaining > 0 and self.stream.read(min(self.remaining, 1 << 20)):
            self.remaining = max(self.remaining - (1 << 20), 0)


class LocalCloud:
    """The service table and credentials, independent of the HTTP server that carries requests."""

    def __init__(self, data_dir: Path, credentials: Credentials, services: list[str] | None = None) -> None:
        self.data_dir = ensure_dir(Path(data_dir))
        self.credentials = credentials
        self._lock = _lock_data_dir(self.data_dir)
        self.services: dict[str, ServiceProtocol] = build(self.data_dir, services)
        self.by_signing_name: dict[str, list[str]] = {}
        for name, protocol in self.services.items():
            self.by_signing_name.setdefault(protocol.model.signing_name, []).append(name)
        # Temporary credentials come from the service that issues them; what they may do, from the policies of
        # their role, held by the service that holds roles.
        self.issuer: CredentialIssuer | None = _first_hook(self.services.values(), "credential_issuer")
        self.policies: RolePolicies | None = _first_hook(self.services.values(), "role_policies")
        self.authorizer = iam_policy.Authorizer.from_env(
            self._role_policies, lambda service: service_model(service).metadata["protocol"]
        )
        self.web_routes: dict[str, Callable[[Request], Response]] = {}
        for protocol in self.services.values():
            for prefix, handler in getattr(protocol, "web_routes", {}).items():
                if not prefix.startswith(WEB_PREFIX) or prefix == HEALTH_PATH:
                    raise ValueError(f"web route {prefix!r} must live under {WEB_PREFIX}")
                self.web_routes[prefix] = handler

    def _role_policies(self, principal: iam_policy.Principal) -> list[str]:
        return self.policies.role_policy_documents(principal.role_name, principal.role_id) if self.policies else []

    def _signing_credentials(self, access_key_id: str | None) -> tuple[Credentials, TemporarySession | None]:
        """The secret to verify a request with, and the issuer's session when the key is a temporary one.

        An unknown key gets the local credentials, whose key id then fails to match: the verifier answers
        with the service's own unknown-key error."""
        if not access_key_id or access_key_id == self.credentials.access_key_id or self.issuer is None:
            return self.credentials, None
        session = self.issuer.session(access_key_id)
        if session is None:
            return self.credentials, None
        return Credentials(access_key_id, session.secret_access_key), session

    def _check_session(self, name: str, request: Request, session: TemporarySession) -> None:
        """A request signed with temporary credentials must carry their session token, before they expire."""
        query = dict(request.query)
        token = (
            request.headers.get("x-amz-security-token")
            or query.get("X-Amz-Security-Token")
            or query.get("x-amz-security-token")  # SigV2 presigned URLs
        )
        if not token:
            raise sigv4.unknown_access_key(name)
        if self.issuer is not None:
            self.issuer.check_session_token(name, session, token)

    def _bind_authorization(self, ctx: RequestContext, session: TemporarySession | None) -> None:
        if session is not None:
            principal = session.principal
            ctx.principal = principal
            ctx.authorize = lambda service, op, params: self.authorizer.check(
                principal, service, op, params, ctx.region
            )
        elif self.authorizer.audit.enabled:
            who = iam_policy.root_arn(ctx.account_id)
            ctx.authorize = lambda service, op, params: self.authorizer.record_unevaluated(
                service, op, params, ctx.region, who
            )

    def close(self) -> None:
        # Reverse build order: a service closes before the services it reads from.
        for protocol in reversed(list(self.services.values())):
            close = getattr(getattr(protocol, "backend", None), "close", None)
            if close:
                close()

    def health(self) -> dict:
        return {"status": "ok", "services": sorted(self.services), "data_dir": str(self.data_dir.resolve())}

    def _claimant(self, names: list[str], request: Request) -> str | None:
        target = request.headers.get("x-amz-target", "").split(".", 1)[0]
        for name in names:
            if target and self.services[name].model.metadata.get("targetPrefix") == target:
                return name
        for name in names:
            claims = getattr(self.services[name], "claims", None)
            if not target and claims is not None and claims(request):
                return name
        return None

    def _first(self, hook: str) -> str | None:
        """The first service (in build order) whose protocol sets ``hook``."""
        return next((name for name, protocol in self.services.items() if getattr(protocol, hook, False)), None)

    def service_for(self, signing_name: str, request: Request) -> str:
        """The service a request signed for ``signing_name`` is meant for (see the module docstring)."""
        names = self.by_signing_name.get(signing_name, [])
        if len(names) <= 1:
            return names[0] if names else signing_name
        return self._claimant(names, request) or names[0]

    def guess_service(self, request: Request) -> str | None:
        """The service an unsigned request was meant for, so its error is in that service's format; None when
        no service claims it and none is the catch-all."""
        if sigv2.is_presigned_v2(request.query):  # such a URL, whatever its path looks like
            taker = self._first("presigned_v2")
            if taker:
                return taker
        claimant = self._claimant(list(self.services), request)
        if claimant:
            return claimant
        for name, protocol in self.services.items():
            claims_unsigned = getattr(protocol, "claims_unsigned", None)
            if claims_unsigned is not None and claims_unsigned(request):
                return name
        return self._first("catch_all")

    def dispatch(self, request: Request) -> Response:
        ctx = RequestContext(host=request.host)
        scope = sigv4.scope_of(request.headers, request.query)
        name = self.service_for(scope[1], request) if scope else self.guess_service(request)
        protocol = self.services.get(name) if name else None
        if protocol is None:
            wanted = f"does not serve {name!r}" if name else "cannot tell which service this request is for"
            error = AwsError("UnknownService", f"localcloud {wanted}; it serves {sorted(self.services)}.")
            fallback = self._first("catch_all")
            return self.services[fallback or next(iter(self.services))].error(ctx, request, error)
        streams = bool(getattr(protocol, "streams_body", False))
        try:
            body_sha256 = None
            if not streams:
                length = int(request.headers.get("content-length") or 0)
                if length > MAX_BUFFERED_BODY:
                    raise AwsError("RequestEntityTooLarge", "Request body is too large.", 413)
                raw = request.body.read()
                body_sha256 = hashlib.sha256(raw).hexdigest()
                request.body = io.BytesIO(raw)
            if getattr(protocol, "presigned_v2", False) and sigv2.is_presigned_v2(request.query):
                credentials, session = self._signing_credentials(dict(request.query).get("AWSAccessKeyId"))
                ctx.access_key_id = sigv2.verify_presigned(
                    method=request.method,
                    raw_path=request.raw_path,
                    query=request.query,
                    headers=request.headers,
                    credentials=credentials,
                )
                if session is not None:
                    self._check_session(name, request, session)
                self._bind_authorization(ctx, session)
                return protocol.handle(ctx, request)
            credentials, session = self._signing_credentials(sigv4.access_key_of(request.headers, request.query))
            signed = sigv4.verify(
                method=request.method,
                raw_path=request.raw_path,
                query=request.query,
                headers=request.headers,
                body_sha256=body_sha256,
                credentials=credentials,
                service_hint=name,
            )
            if session is not None:
                self._check_session(name, request, session)
            ctx.region, ctx.access_key_id = signed.region, signed.access_key_id
            self._bind_authorization(ctx, session)
            ctx.streaming_upload = signed.streaming
            if streams and isinstance(request.body, BodyReader) and _is_hex_sha256(signed.payload_hash):
                request.body.expected = signed.payload_hash
                request.body.digest = hashlib.sha256()
            return protocol.handle(ctx, request)
        except AwsError as error:
            return protocol.error(ctx, request, error)
        except Exception:  # a bug of ours: answer like AWS does, and keep the trace in our log
            log.exception("internal error handling %s %s", request.method, request.raw_path)
            error = AwsError("InternalError", "We encountered an internal error. Please try again.", 500)
            return protocol.error(ctx, request, error)

    def web(self, request: Request) -> Response | None:
        """A service's local web page or its JSON API, or None when no web route has the path."""
        prefixes = [p for p in self.web_routes if request.raw_path.startswith(p) or request.raw_path == p.rstrip("/")]
        if not prefixes:
            return None
        refusal = _web_refusal(request)
        if refusal:
            return Response(403, {"Content-Type": "text/plain; charset=utf-8"}, refusal.encode())
        try:
            return self.web_routes[max(prefixes, key=len)](request)
        except Exception:
            log.exception("internal error serving %s %s", request.method, request.raw_path)
            return Response(500, {"Content-Type": "text/plain; charset=utf-8"}, b"Internal error; see the log.\n")


def _first_hook(protocols: Iterable[ServiceProtocol], hook: str) -> Any:
    """The first protocol's value for an optional ``hook``, or None when no protocol sets it."""
    return next((value for p in protocols if (value := getattr(p, hook, None)) is not None), None)


def _web_refusal(request: Request) -> str | None:
    """Why a web request must be refused: a non-loopback Host (a rebound DNS name) or a cross-site write."""
    try:
        host = urlsplit(f"//{request.host}").hostname or ""
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        return "localcloud's pages answer loopback hosts only.\n"
    if request.method not in ("GET", "HEAD"):
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            return "Cross-origin writes are refused.\n"
        # A JSON content type cannot be sent cross-site without a CORS preflight, which we never grant.
        if request.headers.get("content-type", "").split(";", 1)[0].strip() != "application/json":
            return "Writes must be application/json.\n"
    return None


def _lock_data_dir(data_dir: Path) -> object:
    """Hold an exclusive lock on the data dir for the life of the process.

    Two servers on one data dir would interleave SQLite writes and object files; refuse the second.
    """
    handle = open(data_dir / ".lock", "a+")  # noqa: SIM115 - held open on purpose until exit
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise OSError(f"data dir {data_dir} is in use by localcloud pid {owner}") from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _is_hex_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def make_handler(cloud: LocalCloud) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "localcloud"
        # Headers and body go out in separate writes; with Nagle on, delayed ACKs add ~40 ms to each response.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            log.debug("%s " + format, self.client_address[0], *args)

        def _serve(self) -> None:
            split = urlsplit(self.path)
            headers: dict[str, str] = {}
            for key, value in self.headers.items():
                key = key.lower()
                headers[key] = f"{headers[key]},{value}" if key in headers else value
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._send(Response(411, {"Content-Type": "text/plain"}, b"Send a Content-Length.\n"), close=True)
                return
            try:
                length = int(headers.get("content-length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self._send(Response(400, {"Content-Type": "text/plain"}, b"Bad Content-Length.\n"), close=True)
                return
            body = BodyReader(self.rfile, length)
            if split.path == HEALTH_PATH and self.command == "GET":
                payload = json.dumps(cloud.health()).encode()
                self._send(Response(200, {"Content-Type": "application/json"}, payload))
                return
            request = Request(
                method=self.command,
                raw_path=split.path or "/",
                query=parse_qsl(split.query, keep_blank_values=True),
                headers=headers,
                body=body,
                host=headers.get("host", ""),
            )
            response = cloud.web(request) if split.path.startswith(WEB_PREFIX) else None
            if response is None:
                response = cloud.dispatch(request)
            # Whatever the handler left unread must not be parsed as the next request on this connection.
            unread = body.remaining > 0
            if unread and body.remaining <= (1 << 20):
                body.drain()
                unread = False
            self._send(response, close=unread)

        def _send(self, response: Response, close: bool = False) -> None:
            self.send_response(response.status)
            lower = {k.lower() for k in response.headers}
            for key, value in response.headers.items():
                self.send_header(key, value)
            if "content-length" not in lower:
                self.send_header("Content-Length", str(response.content_length))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command == "HEAD" or response.status in (204, 304):
                if not isinstance(response.body, bytes):
                    response.body.close()
                return
            for chunk in response.chunks():
                self.wfile.write(chunk)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _serve

    return Handler


class LocalCloudServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    cloud: LocalCloud

    def server_close(self) -> None:
        super().server_close()
        self.cloud.close()


def make_server(
    host: str, port: int, data_dir: Path, credentials: Credentials, services: list[str] | None = None
) -> LocalCloudServer:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"localcloud binds to loopback only; {host!r} is not a loopback IP address.")
    cloud = LocalCloud(data_dir, credentials, services)
    server = LocalCloudServer((host, port), make_handler(cloud))
    server.cloud = cloud
    return server


def serve(
    host: str,
    port: int,
    data_dir: Path,
    credentials: Credentials,
    services: list[str] | None = None,
    ready: Callable[[], None] | None = None,
) -> None:
    server = make_server(host, port, data_dir, credentials, services)
    log.info("localcloud listening on http://%s:%d (data in %s)", host, server.server_port, Path(data_dir).resolve())
    if ready:
        ready()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
