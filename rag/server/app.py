"""The HTTP app: a factory whose lifespan opens the index once, one router per feature.

Routes parse, call the service, format (rag/server/routes/); errors have one shape
(errors.py); middleware adds request ids and one log line per request (access.py) and
timeouts (deadline.py). The API docs at /docs and /redoc are served from packaged assets
(fastapi-offline), so they render without a network.
"""

from __future__ import annotations

import copy
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from rag import __version__
from rag.core.config import Settings
from rag.server.access import RequestIds
from rag.server.deadline import Deadline
from rag.server.errors import install_error_handlers
from rag.server.mcp import McpEdge, McpPath
from rag.server.mcp import build as build_mcp
from rag.server.routes import query as query_routes
from rag.server.routes import status as status_routes
from rag.server.routes.chat import chat_router
from rag.server.routes.documents import documents_router
from rag.server.schemas import ERROR_RESPONSES
from rag.server.telemetry import Telemetry
from rag.service import Service

log = logging.getLogger("rag.server")
WEB = Path(__file__).parent / "web"
DOCS_ASSETS = "/static-docs"


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    """App factory. Pass ``service`` to serve an already opened index (tests, embedding)."""
    settings = settings or Settings()

    mcp = build_mcp(lambda: app.state.service)
    mcp_app = mcp.streamable_http_app(streamable_http_path="/", stateless_http=True,
                                      json_response=True, host=settings.host)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = app.state.service = service or Service.open(settings, serving=True)
        app.state.telemetry.watch_index(svc.counts)
        # load the model and build the FAISS and BM25 indexes before traffic
        svc.ask("warm up", k=1)
        # then keep the ~290k objects loaded so far (at the dev index) out of the collector's
        # sight: a full collection took 200 ms before and 5 ms after (a pause that would land
        # on some query), and queries only make short-lived garbage
        gc.collect()
        gc.freeze()
        banner(settings, svc)
        async with mcp.session_manager.run():
            yield
        gc.unfreeze()
        svc.close()

    app = FastAPI(title="rag: cited retrieval and question answering", version=__version__,
                  lifespan=lifespan, responses=ERROR_RESPONSES, docs_url=None, redoc_url=None,
                  description="Ask questions over indexed news articles; every passage "
                  "carries its source URL, author, title, date and exact character span.")
    install_error_handlers(app)
    app.state.settings = settings
    app.state.telemetry = Telemetry()
    app.add_middleware(Deadline, read_seconds=settings.request_timeout)
    app.add_middleware(RequestIds)  # outermost: timeouts get a request id and are counted
    if settings.origins():
        app.add_middleware(CORSMiddleware, allow_origins=settings.origins(),
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID"])
    app.include_router(query_routes.router)
    app.include_router(documents_router(settings))
    app.include_router(chat_router())
    app.include_router(status_routes.router)
    app.mount("/static", StaticFiles(directory=WEB), name="static")
    app.mount("/mcp", McpEdge(mcp_app, settings.keys,
                              protect=settings.protect_reads and bool(settings.keys())))
    app.add_middleware(McpPath)
    install_docs(app)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        """The chat page (no build step; it calls /v1/chat/completions)."""
        return FileResponse(WEB / "index.html", headers={
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
            "Cache-Control": "no-cache"})

    def openapi() -> dict:
        """The generated schema, plus the limits that come from settings."""
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            question = schema["components"]["schemas"]["QueryRequest"]["properties"]["question"]
            question["maxLength"] = settings.max_question_chars
            chat = schema["components"]["schemas"]["ChatRequest"]["properties"]["messages"]
            chat["contains"]["properties"]["content"]["maxLength"] = settings.max_question_chars
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def install_docs(app: FastAPI) -> None:
    """Swagger UI at /docs and ReDoc at /redoc from the assets fastapi-offline packages."""
    import fastapi_offline

    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="static-docs")

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - API",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png", with_google_fonts=False)


def banner(settings: Settings, svc: Service) -> None:
    """Where things are, once the index is loaded."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    base = f"http://{host}:{settings.port}"
    log.info("serving %d articles from %s", svc.counts()["documents"], svc.index.location)
    for what, url in (("chat page", f"{base}/"), ("API docs", f"{base}/docs"),
                      ("OpenAI base_url", f"{base}/v1"), ("MCP endpoint", f"{base}/mcp")):
        log.info("%-16s %s", what, url)


def log_config() -> dict[str, Any]:
    """uvicorn's logging, with this package's loggers at INFO in the same format; access
    lines come from ``RequestIds`` (one a request), not from uvicorn."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["rag"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def app_from_environment() -> FastAPI:
    """The app of one `rag serve --workers N` process, configured by RAG_* variables."""
    return create_app(Settings())
