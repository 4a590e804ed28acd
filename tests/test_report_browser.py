"""report.html in a real headless browser: every image decodes, nothing logs to the console,
the page renders offline."""

import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from test_report import make_report

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is absent (Debian: apt-get install -y chromium)",
)

# Injected at the top of <head>: counts script errors, failed resources and console.error
# calls, then (after load) images that did not decode, into data-* attributes of <body>.
PROBE = """<script>
(function () {
  var errors = 0;
  window.addEventListener("error", function () { errors += 1; }, true);
  var original = console.error;
  console.error = function () { errors += 1; original.apply(console, arguments); };
  window.addEventListener("load", function () {
    var images = Array.prototype.slice.call(document.images);
    var broken = images.filter(function (i) { return !i.complete || i.naturalWidth === 0; });
    document.body.dataset.images = String(images.length);
    document.body.dataset.brokenImages = String(broken.length);
    document.body.dataset.errors = String(errors);
    console.log("mmssr-probe done");
  });
})();
</script>"""

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: any network lookup fails
    "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
]


def _chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )


def _probed(html: str) -> str:
    return html.replace("<head>", "<head>\n" + PROBE, 1)


def _body_data(dom: str) -> dict[str, str]:
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))


def _console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_report_renders_with_every_image(tmp_path):
    html_path, _ = make_report(tmp_path)
    page = tmp_path / "probed.html"
    page.write_text(_probed(html_path.read_text()))
    run = _chromium(page, tmp_path / "profile", "--dump-dom")
    assert run.returncode == 0, run.stderr[-2000:]
    facts = _body_data(run.stdout)
    assert facts == {"images": "24", "broken-images": "0", "errors": "0"}
    consoles = _console_lines(run.stderr)
    assert consoles and all("mmssr-probe done" in line for line in consoles), consoles
    for section in ("summary", "capabilities", "style-bins", "examples", "fingerprint"):
        assert f'id="{section}"' in run.stdout


def test_probe_sees_a_broken_image(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(_probed('<!DOCTYPE html><html><head></head><body>'
                            '<img src="data:image/png;base64,AAAA"></body></html>'))
    run = _chromium(page, tmp_path / "profile", "--dump-dom")
    assert _body_data(run.stdout)["broken-images"] == "1"


def test_report_screenshot(tmp_path):
    html_path, _ = make_report(tmp_path)
    shot = tmp_path / "report.png"
    run = _chromium(html_path, tmp_path / "profile", "--hide-scrollbars",
                    "--window-size=1280,2400", f"--screenshot={shot}")
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1280, 2400)
        colors = image.convert("RGB").resize((64, 120)).getcolors(64 * 120)
    assert colors is not None and len(colors) > 50  # plots and text, not a blank page
