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


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
