"""Helpers for the browser tests (the `browser` fixture itself is in conftest.py): log in, take screenshots."""

import re

from tests.conftest import ROOT

ARTIFACTS = ROOT / "test-artifacts"


def login(browser, live_server, username: str, *, enforce_csp: bool = False):
    """A new browser context logged in through the real login form; return its page.

    Playwright's wait_for_function evaluates test code in the page, which the app's
    Content-Security-Policy forbids: tests bypass the policy unless they test it.
    """
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=live_server.url, bypass_csp=not enforce_csp
    )
    page = context.new_page()
    page.set_default_timeout(15000)
    page.goto("/")
    assert "/accounts/login/" in page.url  # every page needs a login
    page.fill("#id_username", username)
    page.fill("#id_password", f"pw-{username}")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/$"))
    return page


DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"


def shot(page, name: str, *, docs: bool = False) -> None:
    """Save a full-page screenshot under test-artifacts/ and, for the README's pictures, docs/screenshots/."""
    for folder in [ARTIFACTS] + ([DOCS_SCREENSHOTS] if docs else []):
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def fits(page, width: int) -> None:
    """Set a phone-sized viewport and check the page does not scroll sideways."""
    page.set_viewport_size({"width": width, "height": 844})
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url} is {scroll}px wide on a {width}px screen"
