"""Check an atlas site in a real headless browser: what a person would see go wrong, and how fast.

Drives the system's Chromium (Debian's ``chromium`` package) through the Python ``playwright``
package with an explicit ``executable_path`` (playwright's own browser download is never used, so
nothing is fetched). A page is *clean* when it loads with no console error, no uncaught script
error, no failed request (nor an HTTP error status), and every image in view has decoded.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
VIEWPORT = {"width": 1200, "height": 900}


def find_chromium() -> str | None:
    """The system Chromium: ``$FILTVIZ_CHROMIUM``, else the first of :data:`CHROMIUM_CANDIDATES` on PATH."""
    explicit = os.environ.get("FILTVIZ_CHROMIUM")
    if explicit:
        return explicit if os.path.isfile(explicit) else None
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def unavailable() -> str | None:
    """Why no browser check can run here (one line), or None when one can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright; it drives the system Chromium)"
    if find_chromium() is None:
        return "no Chromium found (apt-get install chromium, or set FILTVIZ_CHROMIUM to a Chromium executable)"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (playwright ``Browser``), closed on exit."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        raise RuntimeError(unavailable())
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class CheckedPage:
    """A page with listeners that collect every problem a person would notice."""

    page: Any
    problems: list[str] = field(default_factory=list)

    def goto(self, url: str) -> CheckedPage:
        self.page.goto(url, wait_until="load")
        self.settle()
        return self

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until every image in view has finished loading (or ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.page.evaluate(_PENDING_IMAGES) == 0:
                return
            self.page.wait_for_timeout(50)

    def undecoded_images(self) -> list[str]:
        """Images in view that did not decode (``naturalWidth == 0``), by their src."""
        return self.page.evaluate(_UNDECODED_IMAGES)

    def visible_images(self) -> int:
        return self.page.evaluate(_VISIBLE_IMAGES)

    def all_problems(self) -> list[str]:
        return self.problems + [f"image did not decode: {src}" for src in self.undecoded_images()]


def open_page(browser: Any, viewport: dict | None = None) -> CheckedPage:
    page = browser.new_page(viewport=viewport or VIEWPORT)
    checked = CheckedPage(page)
    page.on(
        "console",
        lambda msg: checked.problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None,
    )
    page.on("pageerror", lambda exc: checked.problems.append(f"script error: {exc}"))
    page.on("requestfailed", lambda req: checked.problems.append(f"request failed: {req.url} ({req.failure})"))
    page.on(
        "response", lambda res: checked.problems.append(f"HTTP {res.status}: {res.url}") if res.status >= 400 else None
    )
    return checked


def check_page(browser: Any, url: str, screenshot: str | os.PathLike[str] | None = None) -> list[str]:
    """Load ``url`` and return its problems (empty: clean); optionally save a screenshot."""
    checked = open_page(browser).goto(url)
    if screenshot:
        checked.page.screenshot(path=str(screenshot))
    problems = checked.all_problems()
    checked.page.close()
    return problems


def visible_filters(page: Any) -> list[int]:
    """The filter indices the layer page's grid shows now."""
    return page.evaluate(
        "Array.from(document.querySelectorAll('#grid .cell')).filter(c => !c.hidden).map(c => +c.dataset.filter)"
    )


def search(page: Any, query: str) -> list[int]:
    """Type ``query`` into the layer page's search box; the filters then shown."""
    page.fill("#search", query)
    return visible_filters(page)


def page_load_timing(browser: Any, url: str, runs: int = 5) -> dict[str, float]:
    """Median milliseconds, over ``runs`` fresh pages, to the load event and until the images in view
    are decoded (``ready``), with the number of images loaded then (lazy loading keeps it small); ``best_*``:
    the fastest run, the page's own cost on a machine whose other work slows some runs."""
    loads, readies, loaded = [], [], []
    for _ in range(runs):
        checked = open_page(browser)
        started = time.perf_counter()
        checked.page.goto(url, wait_until="load")
        loads.append((time.perf_counter() - started) * 1000)
        checked.settle(timeout=30)
        readies.append((time.perf_counter() - started) * 1000)
        loaded.append(
            checked.page.evaluate("Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length")
        )
        if checked.all_problems():
            raise RuntimeError(f"{url}: {checked.all_problems()[:3]}")
        checked.page.close()

    def median(values):
        return sorted(values)[len(values) // 2]

    return {
        "load_ms": median(loads),
        "ready_ms": median(readies),
        "images_loaded": median(loaded),
        "runs": runs,
        "best_load_ms": min(loads),
        "best_ready_ms": min(readies),
    }


_IN_VIEW = """
function inView(img) {
  if (!img.isConnected || img.closest('[hidden]')) return false;
  const r = img.getBoundingClientRect();
  return r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0 &&
         r.top < window.innerHeight && r.left < window.innerWidth;
}
"""
_PENDING_IMAGES = (
    "(() => {" + _IN_VIEW + "return Array.from(document.images).filter(i => inView(i) && !i.complete).length; })()"
)
_UNDECODED_IMAGES = (
    "(() => {" + _IN_VIEW + "return Array.from(document.images).filter(i => inView(i) && "
    "(!i.complete || i.naturalWidth === 0)).map(i => i.getAttribute('src')); })()"
)
_VISIBLE_IMAGES = "(() => {" + _IN_VIEW + "return Array.from(document.images).filter(inView).length; })()"
