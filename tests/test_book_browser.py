r"""The built book in a real browser: Debian's headless Chromium, driven by Playwright.

`make test` builds the book first. This module serves `_build/html` on localhost,
visits every page once (`crawl`) and then checks what it recorded:

* every page loads with no console error, no failed request, and no request
  leaving localhost (the book works offline: MathJax is served from the build);
* the math is typeset: no TeX delimiter left in the text, no MathJax error, so
  the book's macros (``\E``, ``\Var`` in `_config.yml`) are defined;
* every image loaded and has alt text that describes it;
* every internal link resolves, anchors included;
* axe-core (bundled in axe-playwright-python, no CDN) finds no serious or
  critical accessibility violation;
* the search finds "dropout", and the dark-mode toggle switches the theme.

A screenshot of every page lands in `_build/browser-screenshots/`, for a person
to look at. The browser is never downloaded: `chromium` comes from apt
(`.ci/run` installs it), and without it the tests fail saying so.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import sync_playwright

from regression import ROOT

HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "browser-screenshots"
#: Folders of the build that hold assets, not pages.
ASSET_DIRS = {"_static", "_sources", "_images", "_downloads", "_sphinx_design_static"}
#: Generous for two shared cores: the longest chapter typesets a few hundred formulas.
PAGE_TIMEOUT_MS = 60_000
#: axe-core's impact levels that fail the test (it also reports "minor" and "moderate").
BLOCKING_IMPACTS = {"serious", "critical"}
#: axe-core's rules about an image's text alternative; test_every_image_has_alt_text covers them.
ALT_TEXT_RULES = {"image-alt"}
#: Text that means TeX was not typeset: MathJax removes the delimiters of every formula it renders.
RAW_TEX_DELIMITERS = ("\\(", "\\)", "\\[", "\\]", "$$")

INSTALL_CHROMIUM = (
    "Debian's `chromium` is not installed, and this test needs a real browser: "
    "run `apt-get install chromium` as root (.ci/run does it). "
    "Do not run `playwright install`: the book is tested with the system's browser, never a downloaded one."
)


def chromium_executable() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(INSTALL_CHROMIUM, pytrace=False)
    return path


def is_redirect(page: Path) -> bool:
    """Jupyter Book's root index.html only redirects to the book's first page."""
    return page.read_text(errors="replace").lstrip().lower().startswith('<meta http-equiv="refresh"')


def book_pages() -> list[str]:
    """Every HTML page of the build (redirects left out), as a path relative to `_build/html`."""
    return sorted(
        p.relative_to(HTML).as_posix()
        for p in HTML.rglob("*.html")
        if not ASSET_DIRS.intersection(p.relative_to(HTML).parts) and not is_redirect(p)
    )


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def server():
    """`_build/html` on an ephemeral localhost port, for the whole module."""
    if not (HTML / "index.html").exists():
        pytest.fail("no built book in _build/html: run `make book` first (`make test` does)", pytrace=False)
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(HTML))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    executable = chromium_executable()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        yield browser
        browser.close()


@dataclass
class PageRecord:
    """What one visit of one page showed."""

    path: str
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    raw_tex: list[str] = field(default_factory=list)
    math_errors: list[str] = field(default_factory=list)
    formulas: int = 0
    macros: dict | None = None
    images: list[dict] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    anchors: set[str] = field(default_factory=set)
    violations: list[dict] = field(default_factory=list)


def new_context(browser, origin: str, blocked: list[str]):
    """A browser context in which any request that leaves `origin` is refused and recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    context.set_default_timeout(PAGE_TIMEOUT_MS)

    def only_local(route):
        if route.request.url.startswith(origin):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    return context


# Runs in the page once it has loaded and MathJax has finished.
INSPECT_PAGE = r"""
async (delimiters) => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  // Text outside code, scripts and typeset math: a TeX delimiter there is a formula MathJax missed.
  const skip = "pre, code, script, style, textarea, mjx-container, .MathJax";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const rawTex = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.nodeValue;
    if (!delimiters.some(d => text.includes(d))) continue;
    if (node.parentElement && node.parentElement.closest(skip)) continue;
    rawTex.push(text.trim().slice(0, 120));
  }
  // Every typeset formula, as MathML: an undefined macro comes out red (noundefined), a syntax error as merror.
  const mathErrors = [];
  let formulas = 0;
  if (window.MathJax && MathJax.startup && MathJax.startup.document) {
    for (const item of MathJax.startup.document.math) {
      formulas += 1;
      const mml = MathJax.startup.toMML(item.root);
      if (mml.includes("<merror") || mml.includes('mathcolor="red"')) mathErrors.push(item.math.slice(0, 120));
    }
  }
  mathErrors.push(...Array.from(document.querySelectorAll("mjx-merror"), e => "merror: " + e.textContent));
  const images = Array.from(document.images, img => ({
    src: img.getAttribute("src") || "",
    url: img.currentSrc || img.src,
    loaded: img.complete && img.naturalWidth > 0,
    alt: img.getAttribute("alt"),
  }));
  const links = Array.from(document.querySelectorAll("a[href]"), a => a.href);
  const anchors = [
    ...Array.from(document.querySelectorAll("[id]"), e => e.id),
    ...Array.from(document.querySelectorAll("a[name]"), e => e.name),
  ];
  // The book's macros as this page's MathJax expands them (null where the page loads no MathJax).
  const macros = window.MathJax && MathJax.tex2mml
    ? {E: MathJax.tex2mml("\\E"), Var: MathJax.tex2mml("\\Var"), undefined: MathJax.tex2mml("\\NoSuchMacro")}
    : null;
  return {rawTex, mathErrors, formulas, images, links, anchors, macros};
}
"""


def visit(context, origin: str, path: str, axe: Axe) -> PageRecord:
    record = PageRecord(path)
    page = context.new_page()
    console: list[str] = []
    failed: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and console.append(msg.text))
    page.on("pageerror", lambda error: console.append(f"uncaught: {error}"))
    page.on("requestfailed", lambda req: failed.append(f"{req.url} ({req.failure})"))
    page.on("response", lambda resp: resp.status >= 400 and failed.append(f"{resp.url} (HTTP {resp.status})"))
    page.goto(origin + path, wait_until="load")
    # Lazy images load when scrolled into view: load them all, as a reader scrolling through would.
    page.evaluate("() => document.querySelectorAll('img[loading=lazy]').forEach(img => { img.loading = 'eager'; })")
    page.wait_for_load_state("networkidle")
    found = page.evaluate(INSPECT_PAGE, list(RAW_TEX_DELIMITERS))
    record.raw_tex = found["rawTex"]
    record.math_errors = found["mathErrors"]
    record.formulas = found["formulas"]
    record.macros = found["macros"]
    record.images = found["images"]
    record.links = found["links"]
    record.anchors = set(found["anchors"])
    # What the reader's browser did ends here: axe-core's own requests (it re-fetches
    # stylesheets, resolving their @import against the page) are not the book's.
    record.console_errors = list(console)
    record.failed_requests = list(failed)
    record.violations = axe.run(page).response["violations"]
    page.screenshot(path=SCREENSHOTS / (path.removesuffix(".html").replace("/", "__") + ".png"), full_page=True)
    page.close()
    return record


@pytest.fixture(scope="module")
def crawl(server, browser) -> dict[str, PageRecord]:
    """Every page of the book, visited once; its record by path."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    blocked: list[str] = []
    context = new_context(browser, server, blocked)
    axe = Axe()
    records = {}
    for path in book_pages():
        before = len(blocked)
        records[path] = visit(context, server, path, axe)
        records[path].failed_requests += [f"{url} (left localhost)" for url in blocked[before:]]
    context.close()
    return records


def report(problems: dict[str, list]) -> str:
    return "\n".join(f"{path}:\n" + "\n".join(f"    {p}" for p in items) for path, items in problems.items() if items)


def test_the_book_has_pages():
    pages = book_pages()
    assert "book/index.html" in pages and "book/04_dropout.html" in pages, pages
    redirect = re.search(r'url=([^"]+)"', (HTML / "index.html").read_text())
    assert redirect and redirect[1] in pages, "the root index.html must redirect to the book's first page"


def test_every_page_loads_without_console_errors(crawl):
    problems = {path: r.console_errors for path, r in crawl.items()}
    assert not any(problems.values()), "console errors:\n" + report(problems)


def test_every_request_succeeds_and_stays_on_localhost(crawl):
    problems = {path: r.failed_requests for path, r in crawl.items()}
    assert not any(problems.values()), "failed requests:\n" + report(problems)


def test_math_is_typeset_without_errors(crawl):
    raw = {path: r.raw_tex for path, r in crawl.items()}
    assert not any(raw.values()), "TeX delimiters left in the rendered text:\n" + report(raw)
    errors = {path: r.math_errors for path, r in crawl.items()}
    assert not any(errors.values()), "formulas MathJax could not typeset:\n" + report(errors)
    # The chapters that use the book's macros were typeset (MathJax ran, from the build), and
    # the macros expand as _config.yml defines them; an undefined one would come out red.
    for chapter in ("book/02_bias_variance.html", "book/04_dropout.html"):
        record = crawl[chapter]
        assert record.formulas > 0 and record.macros, f"no formula typeset in {chapter}"
        macros = record.macros
        assert 'mathvariant="double-struck">E<' in macros["E"], f"\\E is not a blackboard E in {chapter}: {macros}"
        assert ">Var<" in macros["Var"], f"\\Var is not the operator Var in {chapter}: {macros}"
        assert 'mathcolor="red"' in macros["undefined"], "an undefined macro is no longer detected"


def test_every_image_loaded(crawl):
    problems = {path: [i["url"] for i in r.images if not i["loaded"]] for path, r in crawl.items()}
    assert not any(problems.values()), "images that did not load:\n" + report(problems)


def missing_alt_text(image: dict) -> bool:
    """No alt text, or only the file name (what Sphinx writes when a figure has none)."""
    alt = (image["alt"] or "").strip()
    return not alt or alt == image["src"] or alt == Path(urlsplit(image["src"]).path).name


def test_every_image_has_alt_text(crawl):
    problems = {
        path: [f"{i['src']} (alt={i['alt']!r})" for i in r.images if missing_alt_text(i)] for path, r in crawl.items()
    }
    axe_alt = {
        path: [f"axe {v['id']}: {n['target']}" for v in r.violations if v["id"] in ALT_TEXT_RULES for n in v["nodes"]]
        for path, r in crawl.items()
    }
    assert not any(problems.values()), "images without alt text:\n" + report(problems)
    assert not any(axe_alt.values()), "axe-core finds images without alt text:\n" + report(axe_alt)


def test_no_serious_accessibility_violations(crawl):
    problems = {
        path: [
            f"{v['id']} ({v['impact']}): {v['help']}; " + ", ".join(str(n["target"]) for n in v["nodes"][:5])
            for v in r.violations
            if v["impact"] in BLOCKING_IMPACTS and v["id"] not in ALT_TEXT_RULES
        ]
        for path, r in crawl.items()
    }
    assert not any(problems.values()), "axe-core: serious or critical violations:\n" + report(problems)


def test_every_internal_link_resolves(crawl, server):
    problems: dict[str, list[str]] = {}
    for path, record in crawl.items():
        for href in record.links:
            if not href.startswith(server):
                continue  # another site (the student repository, Binder, Colab): not fetched offline
            parts = urlsplit(href)
            target = unquote(parts.path).lstrip("/")
            if target == "" or target.endswith("/"):
                target += "index.html"
            if not (HTML / target).is_file():
                problems.setdefault(path, []).append(f"{href}: no file {target}")
            elif parts.fragment and target in crawl and unquote(parts.fragment) not in crawl[target].anchors:
                problems.setdefault(path, []).append(f"{href}: no anchor #{parts.fragment} in {target}")
    assert not problems, "broken internal links:\n" + report(problems)


def test_search_finds_dropout(browser, server):
    context = browser.new_context()
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    page.goto(server + "book/index.html")
    page.locator(".search-button__button:visible").first.click()  # opens the theme's search dialog
    field_ = page.locator("#pst-search-dialog input[name=q]")
    field_.fill("dropout")
    field_.press("Enter")
    page.wait_for_url("**/search.html?q=dropout*")
    results = page.locator("#search-results ul.search li")
    results.first.wait_for()
    titles = results.all_inner_texts()
    context.close()
    assert any("Dropout" in t for t in titles), f"the search for 'dropout' did not find the dropout chapter: {titles}"


def page_colors(page) -> dict:
    return page.evaluate(
        """() => ({theme: document.documentElement.dataset.theme,
                   background: getComputedStyle(document.body).backgroundColor})"""
    )


def luminance(css_rgb: str) -> float:
    r, g, b = (float(x) for x in css_rgb[css_rgb.index("(") + 1 : css_rgb.index(")")].split(",")[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_dark_mode_toggle_switches_and_persists(browser, server):
    context = browser.new_context(color_scheme="light")
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    page.goto(server + "book/04_dropout.html")
    light = page_colors(page)
    assert light["theme"] == "light", light
    toggle = page.locator(".theme-switch-button:visible").first
    for _ in range(3):  # the toggle cycles through auto, light and dark
        toggle.click()
        if page_colors(page)["theme"] == "dark":
            break
    dark = page_colors(page)
    assert dark["theme"] == "dark", f"the toggle never switched to dark: {dark}"
    assert luminance(dark["background"]) < luminance(light["background"]) / 2, (light, dark)
    page.reload()
    assert page_colors(page)["theme"] == "dark", "the dark mode is lost on the next page load"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "dark-mode__04_dropout.png")
    context.close()
