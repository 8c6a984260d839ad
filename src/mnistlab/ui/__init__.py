"""`mnistlab ui`: a local web app to browse, compare and watch studies, and draw a digit."""

from __future__ import annotations

from pathlib import Path

DEFAULT_HOST = "127.0.0.1"  # local only unless the user says otherwise
DEFAULT_PORT = 8000


def serve(results: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the UI for a results folder until interrupted (needs the `ui` extra)."""
    import uvicorn

    from mnistlab.ui.app import create_app

    uvicorn.run(create_app(results), host=host, port=port, log_level="warning")
