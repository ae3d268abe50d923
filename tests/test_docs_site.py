"""The documentation site builds with ``mkdocs build --strict`` and reads well in a real browser.

The build (timed: well under a minute) goes to a temporary folder; then Debian's Chromium, driven by
playwright, loads every page from ``file://`` and checks what a reader would hit: every link to a page
of the site resolves (the file, and its ``#anchor`` when it has one), every image decodes, and the API
reference lists the public functions of both packages with their docstrings. Planted breakage shows
each check can fail: a broken markdown link fails the strict build, and a raw-HTML link and image that
MkDocs does not validate are caught by the browser check. The build needs no browser; where no browser
can be had, the browser tests skip with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from filtviz_core.site import browser as B

ROOT = Path(__file__).resolve().parents[1]
BUILD_LIMIT_S = 60
REASON = B.unavailable()
needs_browser = pytest.mark.skipif(REASON is not None, reason=f"no headless browser: {REASON}")

pytest.importorskip("mkdocs", reason="mkdocs is installed by `make test` (the docs extra)")
pytest.importorskip(
    "mkdocstrings_handlers.python", reason="mkdocstrings-python is installed by `make test` (docs extra)"
)
import yaml  # noqa: E402  (PyYAML comes with mkdocs)


def build(site: Path, config: Path = ROOT / "mkdocs.yml") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs") / "site"
    start = time.monotonic()
    got = build(out)
    seconds = time.monotonic() - start
    assert got.returncode == 0, got.stderr[-3000:]
    print(f"mkdocs build --strict: {seconds:.1f} s")
    assert seconds < BUILD_LIMIT_S, f"the docs build took {seconds:.0f} s"
    return out


def planted_config(tmp: Path, plant: dict[str, str]) -> Path:
    """A copy of docs/ with text appended to some pages, and a config that builds it with the real hooks,
    sources and specification (absolute paths, so it runs from the repository root)."""
    docs = tmp / "docs"
    shutil.copytree(ROOT / "docs", docs, ignore=shutil.ignore_patterns("__pycache__"))
    for page, text in plant.items():
        with open(docs / page, "a") as f:
            f.write("\n\n" + text + "\n")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config["docs_dir"] = str(docs)
    config["hooks"] = [str(ROOT / "docs" / "hooks.py")]
    for ext in config["markdown_extensions"]:
        if isinstance(ext, dict) and "pymdownx.snippets" in ext:
            ext["pymdownx.snippets"]["base_path"] = [str(ROOT)]
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            plugin["mkdocstrings"]["handlers"]["python"]["paths"] = [str(ROOT)]
    path = tmp / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if p.name != "404.html" and "assets" not in p.parts)


# The links, images and anchors of a page, as the browser has them after loading.
_COLLECT = """() => ({
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  broken_images: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))
                      .map(i => i.getAttribute('src')),
  images: document.images.length,
  ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id),
})"""


def check_site(browser, site: Path, only: list[Path] | None = None) -> tuple[list[str], dict[str, dict]]:
    """Every problem found (one line each), and what each page holds."""
    problems, seen, ids = [], {}, {}
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    for path in only or pages(site):
        errors.clear()
        page.goto(path.as_uri(), wait_until="load")
        got = page.evaluate(_COLLECT)
        seen[path.relative_to(site).as_posix()] = got
        ids[path.resolve()] = set(got["ids"])
        name = path.relative_to(site).as_posix()
        problems += [f"{name}: image does not load: {src}" for src in got["broken_images"]]
        problems += [f"{name}: script error: {e}" for e in errors]
        for href in got["links"]:
            url = urlsplit(href)
            if url.scheme != "file":
                continue  # the theme's and the README's links out of the site are not ours to check
            target = Path(unquote(url.path))
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                problems.append(f"{name}: broken link: {href}")
            elif url.fragment and target.suffix == ".html":
                if target.resolve() not in ids:
                    page2 = browser.new_page()
                    page2.goto(target.as_uri(), wait_until="load")
                    ids[target.resolve()] = set(
                        page2.evaluate("() => Array.from(document.querySelectorAll('[id]')).map(e => e.id)")
                    )
                    page2.close()
                if unquote(url.fragment) not in ids[target.resolve()]:
                    problems.append(f"{name}: link to a missing anchor: {href}")
    page.close()
    return problems, seen


@pytest.fixture(scope="module")
def chromium():
    with B.chromium() as browser:
        yield browser


def test_build_is_strict_and_fast(site):
    names = {p.relative_to(site).as_posix() for p in pages(site)}
    assert {
        "index.html",
        "getting-started.html",
        "methods.html",
        "objectives.html",
        "networks.html",
        "atlas.html",
        "distributed.html",
        "parity.html",
        "benchmarks.html",
        "spec.html",
        "api.html",
    } <= names
    assert "use_directory_urls: false" in (ROOT / "mkdocs.yml").read_text()  # pages work from file://


def test_spec_page_is_the_spec(site):
    """The SPEC page is tf_reference/SPEC.md itself, included at build time: every section heading is there."""
    import re

    html = (site / "spec.html").read_text()
    headings = re.findall(r"^#+ (\d+(?:\.\d+)?)\.? ", (ROOT / "tf_reference" / "SPEC.md").read_text(), flags=re.M)
    assert len(headings) > 20
    for number in headings:
        assert re.search(rf"<h[1-6][^>]*>{re.escape(number)}\.? ", html), number


def test_measured_numbers_come_from_the_reports(site):
    """The benchmark page's verdicts are those `--report` recomputes from the committed run; the tables of the
    other pages carry the committed reports' values."""
    import json

    from filtviz_bench import speed

    bench = json.loads((ROOT / "benchmarks" / "cpu" / "bench.json").read_text())
    bench["targets"] = speed.check_targets(bench)
    html = (site / "benchmarks.html").read_text().replace("&gt;", ">")
    for t in bench["targets"]:
        assert speed.target_line(t)[2:] in html
    quality = json.loads((ROOT / "benchmarks" / "quality" / "quality.json").read_text())
    assert f"{quality['runs']['fourier']['summary']['median_z']:.0f} [" in (site / "methods.html").read_text()
    atlas = json.loads((ROOT / "benchmarks" / "cpu" / "atlas_measure.json").read_text())
    assert f"{atlas['render']['site_mib_extrapolated']} MiB" in (site / "atlas.html").read_text()
    for html_page in pages(site):
        assert "{{" not in html_page.read_text().replace("{{%", ""), html_page  # no marker left unread


@needs_browser
def test_every_page_in_chromium(site, chromium):
    problems, seen = check_site(chromium, site)
    assert not problems, "\n".join(problems)
    assert len(seen) >= 13
    assert seen["index.html"]["images"] >= 1 and seen["atlas.html"]["images"] >= 2
    api = set(seen["api.html"]["ids"])
    for name in (
        "torch_filtviz.visualize_filters",
        "torch_filtviz.render",
        "torch_filtviz.load_model",
        "torch_filtviz.feature_maps",
        "tf_reference.visualize_filters",
        "tf_reference.render",
        "tf_reference.load_vgg16",
    ):
        assert name in api, name


def test_api_reference_has_every_public_name_and_its_docstring(site):
    import tf_reference
    import torch_filtviz

    html = (site / "api.html").read_text()
    for package in (torch_filtviz, tf_reference):
        for name in package.__all__:
            assert f'id="{package.__name__}.{name}"' in html, f"{package.__name__}.{name}"
    assert "Gradient ascent on one input image per filter" in html  # torch_filtviz.visualize_filters' docstring
    assert "Several filters of one layer, one at a time as the notebook did" in html  # tf_reference's


def test_planted_broken_markdown_link_fails_the_strict_build(tmp_path):
    config = planted_config(tmp_path, {"getting-started.md": "See [the missing page](no-such-page.md)."})
    got = build(tmp_path / "site", config)
    assert got.returncode != 0 and "no-such-page.md" in got.stderr


@needs_browser
def test_planted_html_link_and_image_are_caught_in_the_browser(tmp_path, chromium):
    """Raw HTML passes MkDocs' own checks; the browser check is what catches it."""
    config = planted_config(
        tmp_path,
        {
            "getting-started.md": '<a href="gone.html">gone</a> <img src="gone.jpg" alt="">',
            "index.md": "[Methods](methods.md#no-such-section)",
        },
    )
    got = build(tmp_path / "site", config)
    assert got.returncode != 0 and "no-such-section" in got.stderr  # a broken anchor fails the build too
    config.write_text(config.read_text().replace("anchors: warn", "anchors: info"))
    got = build(tmp_path / "site", config)
    assert got.returncode == 0, got.stderr[-2000:]
    site = tmp_path / "site"
    problems, _ = check_site(chromium, site, [site / "getting-started.html", site / "index.html"])
    assert any("broken link" in p and "gone.html" in p for p in problems), problems
    assert any("image does not load: gone.jpg" in p for p in problems), problems
    assert any("missing anchor" in p and "no-such-section" in p for p in problems), problems
