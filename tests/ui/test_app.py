"""The UI's pages and JSON through FastAPI's TestClient, on a tiny real study."""

import base64
import io
import sqlite3

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from mnistlab.studies.results_folder import DB_NAME
from mnistlab.ui.app import create_app

FLOAT32_ROUNDING = 1e-6  # probabilities from float32 logits agree to this, not bit for bit


@pytest.fixture(scope="module")
def client(results):
    return TestClient(create_app(results))


@pytest.fixture(scope="module")
def run_ids(results):
    with sqlite3.connect(results / DB_NAME) as conn:
        return [r[0] for r in conn.execute("SELECT run_id FROM runs ORDER BY ord, run_id")]


def test_studies_page_lists_the_study_with_its_counts(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "tiny-ui" in page.text
    (study,) = client.get("/api/studies").json()
    assert study["name"] == "tiny-ui"
    assert study["total"] == 4
    assert study["counts"]["done"] == 4
    assert study["last_activity"] >= "2026"


def test_study_page_has_tables_and_the_live_json_every_epoch(client, run_ids):
    page = client.get("/studies/tiny-ui")
    assert page.status_code == 200
    assert f'href="/runs/{run_ids[0]}"' in page.text  # the runs table links each run
    for table in ("summary", "selection", "runs"):
        assert f'id="{table}"' in page.text
    assert "best settings" in page.text
    live = client.get("/api/studies/tiny-ui/live").json()
    assert live["counts"]["done"] == 4
    assert live["epochs"] == 8  # 4 runs x 2 epochs
    assert [r["id"] for r in live["runs"]] == run_ids
    history = live["runs"][0]["history"]
    assert len(history["loss"]) == len(history["val_accuracy"]) == 2
    assert 0.0 <= history["val_accuracy"][-1] <= 1.0


def test_run_page_shows_config_history_artifacts_and_summary(client, run_ids):
    page = client.get(f"/runs/{run_ids[0]}")
    assert page.status_code == 200
    assert "Total params" in page.text  # the Keras-style summary
    assert f"tiny-ui/runs/{run_ids[0]}.safetensors" in page.text
    assert "&#34;hidden&#34;: [" in page.text  # the configuration, HTML-escaped
    assert client.get(f"/api/runs/{run_ids[0]}").json()["status"] == "done"


def test_compare_pages(client, run_ids):
    assert client.get("/compare", params={"study": ["tiny-ui"]}).status_code == 200
    page = client.get("/compare", params={"run": run_ids})
    assert page.status_code == 200
    assert page.text.count("/runs/") >= 2


@pytest.mark.parametrize(
    "url",
    ["/studies/nope", "/runs/0000deadbeef", "/compare?run=nope", "/no/such/page"],
)
def test_bad_ids_are_404_pages_without_a_traceback(client, url):
    page = client.get(url)
    assert page.status_code == 404
    assert "Traceback" not in page.text
    assert 'id="error-message"' in page.text


def test_artifacts_download_inside_the_results_folder(client, run_ids):
    file = client.get(f"/files/tiny-ui/runs/{run_ids[0]}.safetensors")
    assert file.status_code == 200
    assert len(file.content) > 1000


@pytest.mark.parametrize(
    "path",
    [
        "/files/../../../../etc/passwd",
        "/files/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/files/..%2F..%2F..%2Fetc%2Fpasswd",
        "/files//etc/passwd",
        "/files/%2Fetc%2Fpasswd",
        "/files/tiny-ui/../../outside.txt",
    ],
)
def test_artifact_routes_cannot_leave_the_results_folder(client, results, path):
    (results.parent / "outside.txt").write_text("secret")
    response = client.get(path)
    assert response.status_code == 404
    assert "secret" not in response.text and "root:" not in response.text


def _drawn_one() -> str:
    canvas = Image.new("RGB", (280, 280), "white")
    ImageDraw.Draw(canvas).line((150, 40, 130, 240), fill="black", width=20)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_predict_classifies_a_drawing_like_mnistlab_predict(client, results, run_ids, tmp_path):
    from mnistlab.predict import predict_files

    model = f"tiny-ui/{run_ids[0]}"
    answer = client.post("/api/predict", json={"model": model, "image": _drawn_one()})
    assert answer.status_code == 200
    body = answer.json()
    assert len(body["probabilities"]) == 10
    assert sum(body["probabilities"]) == pytest.approx(1.0)
    assert body["digit"] == max(range(10), key=body["probabilities"].__getitem__)
    assert len(body["image"]) == 28 and len(body["image"][0]) == 28
    png = tmp_path / "one.png"
    png.write_bytes(base64.b64decode(_drawn_one().split(",", 1)[1]))
    (expected,) = predict_files(model, [png], results)
    # float32 logits: the server's worker thread may take other GEMM kernels than the main
    # thread (1.3e-8 apart on an Intel Xeon for the same digit), so equal to float32 rounding
    assert body["digit"] == expected.digit
    assert body["probabilities"] == pytest.approx(expected.probabilities, abs=FLOAT32_ROUNDING)


@pytest.mark.parametrize(
    ("image", "message"),
    [("data:image/png;base64,!!!", "not a readable PNG"), ("hello", "PNG data URL")],
)
def test_predict_rejects_bad_drawings_in_one_line(client, run_ids, image, message):
    answer = client.post("/api/predict", json={"model": f"tiny-ui/{run_ids[0]}", "image": image})
    assert answer.status_code == 400
    assert message in answer.json()["error"]


def test_predict_with_an_unknown_model_is_a_one_line_error(client):
    answer = client.post("/api/predict", json={"model": "tiny-ui/ffff", "image": _drawn_one()})
    assert answer.status_code == 400
    assert "no finished run" in answer.json()["error"]


def test_the_ui_never_writes_the_store(client, results, run_ids):
    before = (results / DB_NAME).stat().st_mtime_ns
    for url in ("/", "/studies/tiny-ui", "/api/studies/tiny-ui/live", "/draw", "/compare"):
        assert client.get(url).status_code == 200
    drawing = {"model": f"tiny-ui/{run_ids[1]}", "image": _drawn_one()}
    assert client.post("/api/predict", json=drawing).status_code == 200
    assert (results / DB_NAME).stat().st_mtime_ns == before


CV_STUDY = """
name: cv-ui
data: {dataset: digits, scaling: minmax}
model: {hidden: [8]}
training: {optimizer: {name: adam, learning_rate: 0.01}, epochs: 1, batch_size: 64}
cross_validation: {folds: 2, grid: {training.optimizer.learning_rate: [0.01, 0.003]}, refit: false}
"""


def test_a_cross_validated_study_shows_its_cv_table(tmp_path):
    from mnistlab.studies import parse_study
    from mnistlab.studies.options import RunOptions
    from mnistlab.studies.runner import run_study

    run_study(parse_study(CV_STUDY, "cv-ui.yaml"), CV_STUDY, RunOptions(tmp_path))
    page = TestClient(create_app(tmp_path)).get("/studies/cv-ui")
    assert page.status_code == 200
    assert 'id="cv"' in page.text
    assert page.text.count("cross-validation") >= 1
