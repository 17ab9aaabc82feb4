"""The receiver's ASGI app (docs/contracts.md §4): webhooks and Segment-style events in, landing files out.

Every handler follows the same order: check what can be checked from headers, read
the body up to its size limit (after gzip), verify and validate, build the landing
lines, then wait for :class:`GroupCommitWriter` to sync them. Anything that fails
before the last step raises :class:`Rejected` (4xx, nothing written); a failed disk
write answers 503, so the sender retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from triangulate.landing import ndjson_line, utc_iso, webhook_record
from triangulate.paths import landing_folder
from triangulate.receiver.landing_writer import GroupCommitWriter, recover_open_files
from triangulate.receiver.settings import ReceiverSettings
from triangulate.receiver.validation import (
    SHOPIFY_HEADERS,
    Rejected,
    check_declared_length,
    check_segment_basic_auth,
    check_segment_body_write_key,
    check_stripe_event,
    decode_content,
    parse_json_object,
    provider_headers,
    segment_messages,
    verify_shopify_hmac,
    verify_stripe_signature,
)

log = logging.getLogger("triangulate.receiver")

LANDING_SOURCES = ("stripe", "shopify", "events")
"""Landing folders the receiver writes (paths.LANDING_FOLDERS keys)."""

SEGMENT_ROUTES = {
    "batch": None,
    "track": "track",
    "page": "page",
    "identify": "identify",
    "alias": "alias",
}
"""``/v1/<path>`` -> the message type it implies (``None``: a batch of any types)."""


async def read_body(request: Request, limit: int) -> bytes:
    """The decoded body, refusing (413) once more than ``limit`` bytes arrive or inflate."""
    check_declared_length(request.headers.get("content-length"), limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Rejected(413, "body_too_large", f"body is over the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise Rejected(400, "client_disconnected", "the client hung up mid-body") from None
    return decode_content(b"".join(chunks), request.headers.get("content-encoding"), limit)


def _unwritable_landing_folders(folders: list) -> list[str]:
    """Names of landing folders where a file cannot be created right now."""
    failing = []
    for folder in folders:
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".healthz-"):
                pass
        except OSError:
            failing.append(folder.name)
    return failing


def require_secret(settings: ReceiverSettings, variable: str) -> None:
    """503 naming ``variable`` when this receiver runs without that secret (its routes are off)."""
    if variable in settings.missing_secrets():
        raise Rejected(
            503,
            "route_not_configured",
            f"this route is disabled: {variable} is not set on the receiver",
        )


def create_app(settings: ReceiverSettings) -> Starlette:
    """Build the receiver for ``settings``; the landing writers live for the app's lifespan."""
    writers: dict[str, GroupCommitWriter] = {}
    folders = {source: landing_folder(source, settings.home) for source in LANDING_SOURCES}

    async def rotate_periodically() -> None:
        interval = min(1.0, settings.rotate_seconds / 4)
        while True:
            await asyncio.sleep(interval)
            for writer in writers.values():
                try:
                    await writer.seal_if_due()
                except OSError:
                    log.exception(
                        "time-based rotation failed",
                        extra={"fields": {"folder": str(writer.folder)}},
                    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for source, folder in folders.items():
            folder.mkdir(parents=True, exist_ok=True)
            await run_in_threadpool(recover_open_files, folder)
            writers[source] = GroupCommitWriter(
                folder, rotate_bytes=settings.rotate_bytes, rotate_seconds=settings.rotate_seconds
            )
        rotator = asyncio.create_task(rotate_periodically())
        # Everything allocated so far (stripe, starlette, uvicorn: ~40k objects) lives
        # forever; exempting it from the cyclic GC keeps full collections from pausing
        # the event loop for milliseconds, which shows in p99 latency.
        gc.freeze()
        log.info(
            "receiver started",
            extra={
                "fields": {
                    "landing": str(settings.home / "landing"),
                    "rotate_bytes": settings.rotate_bytes,
                    "rotate_seconds": settings.rotate_seconds,
                }
            },
        )
        if settings.missing_secrets():
            log.warning(
                "routes disabled until their secret is set: they answer 503",
                extra={"fields": {"missing": list(settings.missing_secrets())}},
            )
        try:
            yield
        finally:
            rotator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rotator
            for writer in writers.values():
                await writer.close()
            log.info(
                "receiver stopped",
                extra={
                    "fields": {
                        s: {"records": w.records, "commits": w.commits} for s, w in writers.items()
                    }
                },
            )

    async def commit(source: str, lines: list[bytes]) -> None:
        try:
            await writers[source].append(lines)
        except OSError as exc:
            raise _LandingUnavailable(source) from exc
        if log.isEnabledFor(logging.DEBUG):
            log.debug("stored", extra={"fields": {"source": source, "records": len(lines)}})

    async def stripe_webhook(request: Request) -> Response:
        require_secret(settings, "STRIPE_WEBHOOK_SECRET")
        body = await read_body(request, settings.max_webhook_bytes)
        verify_stripe_signature(
            body,
            request.headers.get("stripe-signature"),
            settings.stripe_webhook_secrets,
            settings.stripe_tolerance_s,
        )
        check_stripe_event(parse_json_object(body, "Stripe event"))
        record = webhook_record(body, provider_headers(request.headers.items(), "stripe-"))
        await commit("stripe", [ndjson_line(record)])
        return JSONResponse({"received": True})

    async def shopify_webhook(request: Request) -> Response:
        require_secret(settings, "SHOPIFY_WEBHOOK_SECRET")
        body = await read_body(request, settings.max_webhook_bytes)
        verify_shopify_hmac(
            body, request.headers.get("x-shopify-hmac-sha256"), settings.shopify_webhook_secret
        )
        parse_json_object(body, "Shopify payload")
        if not request.headers.get("x-shopify-webhook-id"):
            raise Rejected(
                400, "shopify_webhook_id_missing", "X-Shopify-Webhook-Id header is missing"
            )
        headers = provider_headers(request.headers.items(), "x-shopify-", SHOPIFY_HEADERS)
        record = webhook_record(body, headers)
        await commit("shopify", [ndjson_line(record)])
        return JSONResponse({"received": True})

    def segment_endpoint(route_type: str | None) -> Callable[[Request], Awaitable[Response]]:
        limit = (
            settings.max_segment_batch_bytes
            if route_type is None
            else settings.max_segment_message_bytes
        )

        async def segment(request: Request) -> Response:
            require_secret(settings, "SEGMENT_WRITE_KEY")
            authorization = request.headers.get("authorization")
            if authorization is not None:  # fail fast, before reading the body
                check_segment_basic_auth(authorization, settings.segment_write_key)
            payload = parse_json_object(await read_body(request, limit), "Segment body")
            if authorization is None:
                check_segment_body_write_key(payload, settings.segment_write_key)
            lines = segment_messages(
                payload, route_type, utc_iso(), settings.max_segment_message_bytes
            )
            await commit("events", lines)
            return JSONResponse({"success": True})

        return segment

    async def healthz(request: Request) -> Response:
        failing = await run_in_threadpool(_unwritable_landing_folders, list(folders.values()))
        status = 503 if failing else 200
        return JSONResponse(
            {
                "status": "unavailable" if failing else "ok",
                "landing_writable": not failing,
                "failing": failing,
            },
            status_code=status,
        )

    async def on_rejected(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Rejected)
        log.warning(
            "request rejected",
            extra={
                "fields": {
                    "path": request.url.path,
                    "status": exc.status,
                    "code": exc.code,
                    "client": request.client.host if request.client else None,
                }
            },
        )
        headers = {"WWW-Authenticate": 'Basic realm="segment"'} if exc.status == 401 else None
        return JSONResponse(
            {"code": exc.code, "message": exc.message}, status_code=exc.status, headers=headers
        )

    async def on_landing_unavailable(request: Request, exc: Exception) -> Response:
        log.error(
            "landing write failed; answered 503", extra={"fields": {"path": request.url.path}}
        )
        return JSONResponse(
            {"code": "landing_unavailable", "message": "could not store the request; retry later"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    routes = [
        Route("/webhooks/stripe", stripe_webhook, methods=["POST"]),
        Route("/webhooks/shopify", shopify_webhook, methods=["POST"]),
        *(
            Route(f"/v1/{path}", segment_endpoint(kind), methods=["POST"])
            for path, kind in SEGMENT_ROUTES.items()
        ),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={Rejected: on_rejected, _LandingUnavailable: on_landing_unavailable},
    )
    app.state.writers = writers
    return app


class _LandingUnavailable(Exception):
    """The landing write or sync failed: answer 503 (retryable), never 2xx."""
