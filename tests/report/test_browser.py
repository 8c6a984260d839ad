"""The report in a real browser (headless Chromium): no console errors, every figure drawn."""

import json
import re
import shutil
import subprocess

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
BROWSER = next((b for b in BROWSERS if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no Chromium here (Debian: apt-get install chromium)"
)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
TIMEOUT_S = 120

# records errors from the first moment and, once loaded, every figure's size into the DOM
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message)); }, true);
var original = console.error;
console.error = function () {
  window.__errors.push(Array.from(arguments).join(" ")); original.apply(console, arguments);
};
window.addEventListener("load", function () {
  var th = document.querySelector("table.sortable th");
  th.click(); th.click();
  var figures = Array.from(document.querySelectorAll("figure img")).map(function (img) {
    var box = img.getBoundingClientRect();
    return [img.alt, img.naturalWidth, img.naturalHeight, box.width, box.height];
  });
  var out = document.createElement("pre");
  out.id = "mnistlab-check";
  out.textContent = JSON.stringify({errors: window.__errors, figures: figures,
                                    sorted: th.getAttribute("aria-sort")});
  document.body.appendChild(out);
});
</script>"""


def _chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BROWSER, *FLAGS, *args], capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


def test_report_loads_without_errors_and_draws_every_figure(tiny_report, tmp_path):
    _, html = tiny_report
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("<head>", "<head>\n" + PROBE, 1))
    done = _chromium("--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="mnistlab-check">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the page did not finish loading: {done.stderr[-500:]}"
    check = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert check["errors"] == []
    assert "Uncaught" not in done.stderr
    assert len(check["figures"]) == html.count("<figure>")
    assert check["figures"], "no figure on the page"
    for alt, natural_w, natural_h, width, height in check["figures"]:
        assert min(natural_w, natural_h, width, height) > 0, alt
    assert check["sorted"] == "descending"  # two clicks on a header: sorted, then reversed


def test_screenshot_is_saved_under_the_results_folder(tiny_report):
    path, _ = tiny_report
    shot = path.parent / "report.png"
    _chromium("--window-size=1000,2400", f"--screenshot={shot}", path.as_uri())
    assert shot.is_file()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000
