"""What routes depend on: the service of the app, and the API-key checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rag.server.access import check_key
from rag.service import Service


async def get_service(request: Request) -> Service:
    return request.app.state.service


# (async: FastAPI runs a plain `def` dependency in the thread pool, a hop per request)
ServiceDep = Annotated[Service, Depends(get_service)]


async def require_write_key(request: Request) -> None:
    check_key(request, request.app.state.settings.keys())


async def require_read_key(request: Request) -> None:
    settings = request.app.state.settings
    if settings.protect_reads:
        check_key(request, settings.keys())


Reader = [Depends(require_read_key)]
Writer = [Depends(require_write_key)]
