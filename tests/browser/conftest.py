"""Fixtures of the browser tests: Debian's Chromium driven by Playwright (never a browser that
Playwright downloads), a served application (`site.py`), and pages that record every console
error and Content-Security-Policy violation so that a test fails on any.

Without /usr/bin/chromium the tests skip, except under CI=true, where they fail: `make test`
installs the Debian package first.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from browser.site import Site, certificate, serve
from callwarden.security.certificates import TlsIdentity
from tls_pin import chromium_pin_arguments

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}

# Reported by the page itself, before Chromium's own console line, so the test names the
# directive; Playwright injects it through the DevTools protocol, outside the page's CSP.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


@dataclass
class Problems:
    """Console errors, uncaught exceptions and CSP violations seen by a test's pages."""

    found: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.found.append(f"console error: {message.text}")

    def on_page_error(self, error: Exception) -> None:
        self.found.append(f"uncaught: {error}")


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium, or `make test`)")
    return CHROMIUM


@pytest.fixture(scope="session")
def tls_identity(tmp_path_factory: pytest.TempPathFactory) -> TlsIdentity:
    """The sites' certificate (one for the session: the browser pins it at launch)."""
    return certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def browser(chromium_path: Path, tls_identity: TlsIdentity) -> Iterator[Browser]:
    """One Chromium per test module: Playwright's synchronous API runs an event loop of its
    own, which must be gone before the asyncio tests of other modules run. It trusts the
    sites' self-signed certificate by its pinned public key, nothing else."""
    arguments = CHROMIUM_ARGS + chromium_pin_arguments(tls_identity.certificate_path)
    # `page.request` runs in Playwright's Node.js driver, which trusts the certificate as a CA
    # of its own (read once, when the driver starts).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NODE_EXTRA_CA_CERTS", str(tls_identity.certificate_path))
        playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(
            executable_path=str(chromium_path), headless=True, args=arguments
        )
        yield launched
        launched.close()
    finally:
        playwright.stop()


@pytest.fixture
def site(tmp_path: Path, tls_identity: TlsIdentity) -> Iterator[Site]:
    with serve(tmp_path, tls_identity) as served:
        yield served


@pytest.fixture
def problems() -> Iterator[Problems]:
    seen = Problems()
    yield seen
    assert seen.found == [], "\n".join(seen.found)


NewPage = Callable[[], Page]


@pytest.fixture
def new_page(browser: Browser, problems: Problems) -> Iterator[NewPage]:
    """Pages each in a browser context of their own (their own cookies: their own user)."""
    contexts: list[BrowserContext] = []

    def make() -> Page:
        context = browser.new_context(viewport=VIEWPORT, locale="ja-JP")
        context.add_init_script(CSP_LISTENER)
        contexts.append(context)
        page = context.new_page()
        page.on("console", problems.on_console)
        page.on("pageerror", problems.on_page_error)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
