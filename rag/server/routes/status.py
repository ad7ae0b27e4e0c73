"""The service itself: health and readiness, index statistics, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rag.server.deps import Reader, ServiceDep
from rag.server.errors import error
from rag.server.schemas import Health, Stats

router = APIRouter(tags=["service"])


@router.get("/health", response_model=Health)
def health(svc: ServiceDep) -> dict:
    """The index is open; how many articles it holds."""
    return {"status": "ok", "ready": True, "documents": svc.counts()["documents"]}


@router.get("/health/live")
def live() -> dict:
    """The process answers (no index access)."""
    return {"status": "ok"}


@router.get("/health/ready", response_model=Health)
def ready(request: Request) -> JSONResponse:
    """The index is open and readable; 503 otherwise."""
    svc = getattr(request.app.state, "service", None)
    try:
        docs = svc.counts()["documents"] if svc else None
    except Exception:  # noqa: BLE001 - any failure to read means not ready
        docs = None
    if docs is None:
        return error(503, "not_ready", "the index is not open")
    return JSONResponse({"status": "ok", "ready": True, "documents": docs})


@router.get("/stats", response_model=Stats, dependencies=Reader)
def stats(svc: ServiceDep) -> dict:
    """Model, dimension, chunking parameters, counts and the index's generation."""
    return svc.stats()


@router.get("/metrics", dependencies=Reader, response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {}},
                             "description": "Prometheus text format"}})
def metrics(request: Request) -> Response:
    """Requests by route and status, latency histograms, index size, write counters."""
    return Response(generate_latest(request.app.state.telemetry.registry),
                    media_type=CONTENT_TYPE_LATEST)
