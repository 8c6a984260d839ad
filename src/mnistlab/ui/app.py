"""The web app of `mnistlab ui`: pages for studies, runs, comparisons and drawing, plus the
JSON the pages poll.

Pages are rendered on the server (Jinja2); `static/app.js` sorts and filters tables, draws
the curves with the bundled uPlot, polls `/api/studies/{name}/live` and sends drawings to
`/api/predict`. Every read goes through `ui.data.Results` (read-only); unknown ids are 404
pages and a model that cannot classify is a one-line 400, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from mnistlab.errors import MnistlabError
from mnistlab.status import FINISHED, WITH_RESULTS
from mnistlab.studies.store import STATUSES
from mnistlab.studies.tables import Table
from mnistlab.ui.data import NotFound, Results, finite
from mnistlab.ui.models import classify_drawing, run_summary

HERE = Path(__file__).parent
POLL_MS = 2000  # how often the live pages ask for news
MAX_COMPARED = 8  # studies or runs side by side


class DrawingRequest(BaseModel):
    """What the canvas sends: the run to classify with and the drawing as a PNG data URL."""

    model: str
    image: str


def create_app(results: Path) -> FastAPI:
    """The app for one results folder (read-only)."""
    folder = Results(results)
    app = FastAPI(title="mnistlab", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.autoescape = True  # the files end in .j2, which Jinja would not escape
    templates.env.filters["tojson_safe"] = lambda value: json.dumps(finite(value))
    templates.env.globals |= {"cells": table_context, "run_label": run_label}

    def page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
        context |= {"results": folder.folder, "poll_ms": POLL_MS}
        return templates.TemplateResponse(request, template, context, status_code=status_code)

    # --- errors: one line, never a traceback ---

    def error(request: Request, status_code: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status_code)
        return page(request, "error.html.j2", status_code, message=message, code=status_code)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        return error(request, 404, str(exc))

    @app.exception_handler(MnistlabError)
    async def _bad_request(request: Request, exc: MnistlabError) -> Response:
        return error(request, 400, str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return error(request, 500, f"{type(exc).__name__}: {exc}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return error(request, exc.status_code, str(exc.detail))

    # --- pages ---

    @app.get("/", response_class=HTMLResponse)
    def studies_page(request: Request) -> Response:
        return page(request, "studies.html.j2", studies=folder.studies(), statuses=STATUSES)

    @app.get("/studies/{name}", response_class=HTMLResponse)
    def study_page(request: Request, name: str) -> Response:
        tables = folder.tables(name)
        spec = folder.spec(name)
        return page(
            request,
            "study.html.j2",
            name=name,
            spec=spec,
            tables=tables,
            runs=tables["runs"],
            reports=folder.reports(name),
            statuses=STATUSES,
        )

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str) -> Response:
        detail = folder.run(run_id)
        record = detail.record
        has_weights = record.status in WITH_RESULTS and "weights" in detail.artifacts
        summary = run_summary(run_id, folder.folder) if has_weights else None
        return page(
            request,
            "run.html.j2",
            detail=detail,
            run=record,
            config=json.dumps(record.config, indent=2, sort_keys=True),
            summary=summary,
            has_weights=has_weights,
            live=record.status not in FINISHED,
        )

    @app.get("/compare", response_class=HTMLResponse)
    def compare_page(
        request: Request,
        study: list[str] = Query(default=[]),  # noqa: B008 (FastAPI's way to say repeatable)
        run: list[str] = Query(default=[]),  # noqa: B008
    ) -> Response:
        studies = [(s, folder.tables(s)["summary"]) for s in study[:MAX_COMPARED]]
        runs = [folder.run(r) for r in run[:MAX_COMPARED]]
        metrics = sorted({k for d in runs for k in d.record.metrics})
        return page(
            request,
            "compare.html.j2",
            studies=studies,
            runs=runs,
            metrics=metrics,
            histories={d.record.run_id: d.history for d in runs},
            all_studies=[e.summary.name for e in folder.studies()],
        )

    @app.get("/draw", response_class=HTMLResponse)
    def draw_page(request: Request, model: str | None = None) -> Response:
        models = [
            (f"{e.summary.name}/{r.run_id}", r)
            for e in folder.studies()
            for r in folder.runs(e.summary.name)
            if r.status in WITH_RESULTS and r.config.get("model", {}).get("kind") in NETWORKS
        ]
        return page(request, "draw.html.j2", models=models, chosen=model)

    @app.get("/files/{relative:path}")
    def file_route(relative: str) -> Response:
        return FileResponse(folder.file(relative))

    # --- JSON ---

    @app.get("/api/studies")
    def studies_json() -> list[dict[str, Any]]:
        return [
            {
                "name": e.summary.name,
                "counts": e.summary.counts,
                "total": e.summary.total,
                "last_activity": e.last_activity,
            }
            for e in folder.studies()
        ]

    @app.get("/api/studies/{name}/live")
    def live_json(name: str) -> Response:
        runs = folder.runs(name)
        histories = folder.histories(name)
        counts = dict.fromkeys(STATUSES, 0)
        for r in runs:
            counts[r.status] += 1
        body = {
            "study": name,
            "counts": counts,
            "epochs": sum(len(h.get("loss", [])) for h in histories.values()),
            "runs": [
                {
                    "id": r.run_id,
                    "group": r.group,
                    "label": run_label(r.labels, r.seed),
                    "status": str(r.status),
                    "history": histories.get(r.run_id, {}),
                }
                for r in runs
            ],
        }
        return JSONResponse(finite(body))

    @app.get("/api/runs/{run_id}")
    def run_json(run_id: str) -> Response:
        detail = folder.run(run_id)
        record = detail.record
        return JSONResponse(
            finite(
                {
                    "id": record.run_id,
                    "study": record.study,
                    "status": str(record.status),
                    "metrics": record.metrics,
                    "history": detail.history,
                }
            )
        )

    @app.post("/api/predict")
    def predict_json(drawing: DrawingRequest) -> dict[str, Any]:
        outcome = classify_drawing(drawing.model, drawing.image, folder.folder)
        return {
            "digit": outcome.digit,
            "probabilities": outcome.probabilities,
            "image": outcome.image,
        }

    return app


NETWORKS = frozenset({"mlp", "cnn"})  # model kinds the canvas can use


def run_label(labels: dict[str, Any], seed: int) -> str:
    """A short name for a run in pickers and legends: what differs, and its seed."""
    shown = [f"{k.rsplit('.', 1)[-1]}={v}" for k, v in labels.items() if k != "variant"]
    if labels.get("variant"):
        shown.insert(0, str(labels["variant"]))
    return ", ".join([*shown, f"seed {seed}"])


def table_context(table: Table) -> list[list[tuple[str, Any]]]:
    """Each cell as (display text, sort key) for the sortable tables."""
    return [
        [(text, sort_key(raw)) for text, raw in zip(row, raws, strict=True)]
        for row, raws in zip(table.rows, table.raw or table.rows, strict=True)
    ]


def sort_key(raw: Any) -> Any:
    """What a column sorts by: a statistic's mean, a number, else the text."""
    if isinstance(raw, dict) and "mean" in raw:
        raw = raw["mean"]
    if isinstance(raw, bool) or raw is None:
        return str(raw)
    if isinstance(raw, int | float):
        return raw
    return str(raw)
