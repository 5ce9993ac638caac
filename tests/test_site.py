"""The documentation site, checked as a reader would see it.

The site is built with ``mkdocs build --strict`` (any warning fails), every internal link,
image, stylesheet and script of every built page is resolved from the files themselves
(anchors included), then the site is served on 127.0.0.1 and three pages (home, API
reference, a guide) are opened in headless Chromium (Debian's ``chromium`` package),
driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``: standard
library only, no browser download). A page fails on an empty main content, on a console
error, an uncaught exception or a failed request (DevTools ``Runtime``, ``Log`` and
``Network`` events), or, on the API page, on too few documented objects. Screenshots go to
``$KR_ARTIFACTS`` (default: a temporary folder), whose path is printed.
"""

from __future__ import annotations

import base64
import functools
import html.parser
import http.server
import importlib.util
import json
import os
import pathlib
import posixpath
import select
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import pytest

import keras_resnet as kr

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--remote-debugging-pipe"]
#: The pages opened in the browser: (path in the site, words its main content must hold).
PAGES = [("index.html", "plain twin"),
         ("api/index.html", "build_resnet"),
         ("training/index.html", "run folder")]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site") / "site"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", NO_MKDOCS_2_WARNING="1")
    start = time.time()
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    print(f"\nmkdocs build --strict: {time.time() - start:.1f} s")
    return out


def artifacts() -> pathlib.Path:
    folder = os.environ.get("KR_ARTIFACTS") or tempfile.mkdtemp(prefix="kr-site-")
    path = pathlib.Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------- links
class Links(html.parser.HTMLParser):
    """The ids of a page and the URLs it refers to (a, img, link, script)."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set = set()
        self.refs: list = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        key = {"a": "href", "img": "src", "link": "href", "script": "src"}.get(tag)
        if key and attrs.get(key):
            self.refs.append((tag, attrs[key]))


@functools.cache
def parse(path: pathlib.Path) -> Links:
    links = Links()
    links.feed(path.read_text(encoding="utf-8"))
    return links


def target_file(site: pathlib.Path, page: pathlib.Path, url: str) -> pathlib.Path | None:
    """The file of the site an internal URL of ``page`` names (None: not in the site)."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    if not path:
        return page
    base = page.parent.relative_to(site).as_posix()
    # "/x" (the 404 page's links) is the site's root, where the site is served
    rel = posixpath.normpath(path.lstrip("/") if path.startswith("/") else
                             posixpath.join(base, path))
    if rel.startswith(".."):
        return None
    found = site / rel
    if found.is_dir() or path.endswith("/"):
        found = found / "index.html"
    return found


def test_every_internal_link_of_the_built_site_resolves(site):
    broken, checked, external = [], 0, 0
    pages = sorted(site.rglob("*.html"))
    for page in pages:
        for tag, url in parse(page).refs:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme or url.startswith("//"):
                external += 1
                continue
            target = target_file(site, page, url)
            where = f"{page.relative_to(site)}: <{tag}> {url}"
            if target is None or not target.exists():
                broken.append(f"{where} (no file)")
                continue
            checked += 1
            if parts.fragment and target.suffix == ".html":
                if urllib.parse.unquote(parts.fragment) not in parse(target).ids:
                    broken.append(f"{where} (no anchor)")
    print(f"\n{len(pages)} pages, {checked} internal links resolved, {external} external "
          "links not followed (offline)")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:40])
    assert len(pages) >= 20 and checked > 500


def test_every_public_name_of_an_api_page_is_documented(site):
    """Each module page of the API reference documents every name of the module's
    __all__, or the package's page does: a lazily loaded name once went missing without
    a warning."""
    import importlib
    import inspect
    import re

    top = (site / "api" / "index.html").read_text(encoding="utf-8")
    missing, checked = [], 0
    for page in sorted((site / "api").glob("*/index.html")):
        module = importlib.import_module(f"keras_resnet.{page.parent.name}")
        text = page.read_text(encoding="utf-8")
        names = getattr(module, "__all__", None) or [  # as docs/hooks.py chooses them
            n for n, v in vars(module).items() if not n.startswith("_") and (
                inspect.isclass(v) or inspect.isfunction(v)) and v.__module__ == module.__name__]
        for name in names:
            if name.startswith("__") or inspect.ismodule(getattr(module, name)):
                continue
            pattern = rf'id="keras_resnet\.[\w.]*\b{re.escape(name)}"'
            checked += 1
            if not (re.search(pattern, text) or re.search(pattern, top)):
                missing.append(f"{module.__name__}.{name}")
    assert checked > 30 and missing == []


def test_the_generated_tables_are_on_their_pages(site):
    presets = (site / "presets" / "index.html").read_text(encoding="utf-8")
    missing = [name for name in kr.presets.names() if f"<code>{name}</code>" not in presets]
    assert not missing, f"presets missing from the preset table: {missing}"
    assert "25,583,592" in presets and "keras_hub:resnet_18_imagenet" in presets
    cli = (site / "cli" / "index.html").read_text(encoding="utf-8")
    for command in ("summary", "presets", "train", "compare", "tune", "export", "predict"):
        assert f"usage: keras-resnet {command}" in cli, command
    changelog = (site / "changelog" / "index.html").read_text(encoding="utf-8")
    assert "Keep a Changelog" in changelog


# ----------------------------------------------------------------------- browser
def _above_4(fd: int) -> int:
    """The same pipe end at a number the browser's fds 3 and 4 cannot clash with."""
    if fd > 4:
        return fd
    high = os.dup(fd)
    os.close(fd)
    return _above_4(high)


class DevTools:
    """A minimal Chrome DevTools protocol client over ``--remote-debugging-pipe``:
    JSON messages separated by NUL bytes, written to the browser's fd 3, read from its
    fd 4."""

    def __init__(self, profile: str, log: str) -> None:
        self.log = log  # the browser's stderr: the reason when it dies
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        r, w = _above_4(to_browser_r), _above_4(from_browser_w)
        # The shell puts the pipe ends at the fds the browser expects (3: it reads,
        # 4: it writes), then becomes the browser. bash, not sh: dash refuses fd
        # numbers above 9 ("Bad fd number"), which a busy test process hands out.
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$@" 3<&{r} 4>&{w} {r}<&- {w}>&-', "bash", CHROMIUM,
             *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(r, w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(log, "wb"))
        os.close(r)
        os.close(w)
        self._buffer = b""
        self._next_id = 0
        self.events: list = []

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except Exception:  # noqa: BLE001 - the browser may be gone already
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)

    def _read(self, timeout: float) -> dict | None:
        deadline = time.time() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.time()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                return None
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                with open(self.log, errors="replace") as f:
                    tail = f.read()[-1500:]
                raise RuntimeError(f"chromium closed the DevTools pipe (exit code "
                                   f"{self.proc.wait(timeout=10)}); its stderr ends: {tail}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while time.time() < deadline:
            reply = self._read(deadline - time.time())
            if reply is None:
                break
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)
        raise TimeoutError(f"no answer to {method} in {timeout} s")

    def wait_for(self, method: str, session: str, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(e.get("method") == method and e.get("sessionId") == session
                   for e in self.events):
                return
            event = self._read(deadline - time.time())
            if event is not None:
                self.events.append(event)
        raise TimeoutError(f"no {method} in {timeout} s")

    def drain(self, seconds: float) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            event = self._read(deadline - time.time())
            if event is not None:
                self.events.append(event)


def problems(events: list, session: str, origin: str) -> list:
    """Console errors, uncaught exceptions and failed requests of one page."""
    found = []
    for e in events:
        if e.get("sessionId") != session:
            continue
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            found.append(f"exception: {p['exceptionDetails'].get('text')} "
                         f"{p['exceptionDetails'].get('exception', {}).get('description', '')}")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            found.append("console." + p["type"] + ": " + " ".join(
                str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
            found.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif method == "Network.responseReceived" and p["response"]["status"] >= 400 \
                and p["response"]["url"].startswith(origin):
            found.append(f"HTTP {p['response']['status']}: {p['response']['url']}")
        elif method == "Network.loadingFailed" and not p.get("canceled"):
            found.append(f"request failed: {p.get('errorText')} ({p.get('type')})")
    return found


#: What the page shows a reader, read in the page after it loaded.
INSPECT = """(() => {
  const main = document.querySelector("article.md-content__inner") ||
               document.querySelector(".md-content");
  return JSON.stringify({
    title: document.title,
    text: main ? main.innerText : "",
    objects: document.querySelectorAll(".doc.doc-object").length,
    headings: document.querySelectorAll("article h1, article h2, article h3").length,
    images: Array.from(document.querySelectorAll("article img")).map(
      i => [i.getAttribute("src"), i.complete && i.naturalWidth > 0]),
  });
})()"""


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def open_browser(tmp_path) -> DevTools:
    """A browser that answers, started again once if it dies before its first answer
    (a browser that cannot start is not a fault of the site; twice is)."""
    for attempt in (1, 2):
        browser = DevTools(str(tmp_path / f"profile{attempt}"),
                           str(tmp_path / f"chromium{attempt}.log"))
        try:
            browser.send("Target.setDiscoverTargets", {"discover": True})
            return browser
        except RuntimeError:
            browser.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_pages_render_in_headless_chromium_without_errors(server, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium package "
                    "(apt-get install -y chromium) to open the site in a browser")
    shots = artifacts()
    browser = open_browser(tmp_path)
    failures, seen = [], []
    try:
        for path, words in PAGES:
            url = server + path
            target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.send("Target.attachToTarget",
                                   {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                browser.send(f"{domain}.enable", session=session)
            browser.send("Emulation.setDeviceMetricsOverride",
                         {"width": 1280, "height": 900, "deviceScaleFactor": 1,
                          "mobile": False}, session=session)
            browser.send("Page.navigate", {"url": url}, session=session)
            browser.wait_for("Page.loadEventFired", session)
            browser.drain(1.5)  # late scripts: search index, console messages
            shown = json.loads(browser.send(
                "Runtime.evaluate", {"expression": INSPECT, "returnByValue": True},
                session=session)["result"]["value"])
            png = browser.send("Page.captureScreenshot", {"format": "png"}, session=session)
            shot = shots / (path.replace("/", "_").replace(".html", "") + ".png")
            shot.write_bytes(base64.b64decode(png["data"]))
            seen.append(f"{path}: {len(shown['text'])} characters, {shown['headings']} "
                        f"headings, {shown['objects']} API objects -> {shot}")
            errors = problems(browser.events, session, server)
            if errors:
                failures.append(f"{path}: " + "; ".join(errors))
            if len(shown["text"]) < 500 or words not in shown["text"]:
                failures.append(f"{path}: the main content is empty or lacks {words!r} "
                                f"({len(shown['text'])} characters)")
            if path.startswith("api/") and shown["objects"] < 40:
                failures.append(f"{path}: only {shown['objects']} documented objects")
            if "keras_resnet." not in shown["title"] + shown["text"] and path.startswith("api"):
                failures.append(f"{path}: no object paths shown")
            broken = [src for src, ok in shown["images"] if not ok]
            if broken:
                failures.append(f"{path}: images that did not load: {broken}")
            browser.send("Target.closeTarget", {"targetId": target})
    finally:
        browser.close()
    print("\n" + "\n".join(seen) + f"\nscreenshots: {shots}")
    assert not failures, "\n".join(failures)
    assert len(list(shots.glob("*.png"))) >= len(PAGES)
