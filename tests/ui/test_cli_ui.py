"""`mnistlab ui`: defaults to this machine only; without the web extras, one line and exit 2."""

import sys

from typer.testing import CliRunner

from mnistlab.cli import app


def test_ui_serves_on_localhost_by_default(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(
        "mnistlab.ui.serve", lambda results, host, port: calls.append((results, host, port))
    )
    outcome = CliRunner().invoke(app, ["ui", "--results", str(tmp_path)])
    assert outcome.exit_code == 0
    assert calls == [(tmp_path, "127.0.0.1", 8000)]
    assert "http://127.0.0.1:8000/" in outcome.output


def test_ui_without_the_web_extras_says_how_to_install_them(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # an import of it now fails
    outcome = CliRunner().invoke(app, ["ui"])
    assert outcome.exit_code == 2
    assert "pip install 'mnistlab[ui]'" in outcome.output
    assert "Traceback" not in outcome.output
