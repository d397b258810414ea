"""The live order board (`/board`) in headless Chromium (Debian's, driven by Playwright), as a
new user meets it: sign in, create an order, and watch it move PENDING -> PAID -> SHIPPED ->
CANCELED on the page, one step per interval of the lifecycle stack's status worker. Each step
is a screenshot in .run/screenshots/board/ (their paths are printed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from deploy.stack.config import ROOT
from deploy.stack.servers import ensure_installed
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.e2e.stacks import LifecycleStack
from tests.support.factories import user_body

LIFECYCLE = ["PENDING", "PAID", "SHIPPED", "CANCELED"]
SCREENSHOTS = ROOT / ".run" / "screenshots" / "board"
# As root, Chromium's sandbox cannot start; nothing here should reach the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Records each version and status a card shows, as the page shows it.
WATCH_CARDS = """
() => {
  window.boardSeen = [];
  const note = (card) => window.boardSeen.push(
    [card.dataset.orderId, Number(card.dataset.version), card.dataset.status]);
  new MutationObserver((changes) => {
    for (const change of changes) {
      const card = change.target.closest ? change.target.closest(".card") : null;
      if (card && change.attributeName === "data-version") note(card);
      for (const added of change.addedNodes || []) {
        if (added.classList?.contains("card")) note(added);
      }
    }
  }).observe(document.body, {subtree: true, childList: true, attributes: true,
                             attributeFilter: ["data-version"]});
}
"""


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    chromium = ensure_installed("chromium", "chromium")
    if chromium is None:
        pytest.fail("Chromium is not installed and could not be: apt-get install chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    opened = await context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(str(error)))
    opened.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    yield opened
    await context.close()
    assert not problems, problems  # no script error, no CSP or integrity refusal


async def _shot(page: Page, name: str, taken: list[Path]) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{len(taken):02d}-{name}.png"
    await page.screenshot(path=path, full_page=True)
    taken.append(path)
    print(f"screenshot: {path}")  # noqa: T201 (in the test's output)


async def test_a_new_user_signs_in_creates_an_order_and_watches_it_reach_canceled(
    lifecycle_stack: LifecycleStack, page: Page
) -> None:
    body = user_body()
    async with httpx.AsyncClient(base_url=lifecycle_stack.url, timeout=10) as http:
        assert (await http.post("/auth/create_user", json=body)).status_code == 201
    taken: list[Path] = []
    interval = lifecycle_stack.interval

    await page.goto(f"{lifecycle_stack.url}/board")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("Username or email").fill(body["username"])
    await page.get_by_label("Password").fill(body["password"])
    await _shot(page, "sign-in", taken)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.locator("#connection")).to_have_text("Live")
    await expect(page.locator("#who")).to_contain_text(body["username"])
    await page.evaluate(WATCH_CARDS)

    await page.get_by_label("Item").fill("green tea")
    await page.get_by_label("Price").fill("4.50")
    await page.get_by_label("Quantity").fill("2")
    await page.get_by_role("button", name="Create order").click()
    card = page.locator("li.card")
    await expect(card).to_have_count(1)
    for status in LIFECYCLE:
        column = page.locator(f'ul[data-status="{status}"]')
        await expect(column.locator("li.card")).to_have_count(1, timeout=(interval * 2 + 5) * 1000)
        await expect(card).to_have_attribute("data-status", status)
        await _shot(page, status.lower(), taken)
    await expect(card).to_contain_text("2 \u00d7 green tea")
    await expect(card).to_contain_text("9.00")
    await expect(card.get_by_role("button")).to_have_count(0)  # CANCELED is final

    seen: list[list[Any]] = await page.evaluate("window.boardSeen")
    versions = [version for _, version, _ in seen]
    assert versions == sorted(versions), seen  # never an older version after a newer one
    statuses = [status for _, _, status in seen]
    steps = [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s]
    assert steps == LIFECYCLE, seen
    assert await page.locator("#announcer").text_content() == (
        f"Order {(await card.get_attribute('data-order-id') or '')[:8]} is now CANCELED"
    )


async def test_an_order_is_moved_by_hand_from_the_board(
    lifecycle_stack: LifecycleStack, page: Page
) -> None:
    body = user_body()
    async with httpx.AsyncClient(base_url=lifecycle_stack.url, timeout=10) as http:
        assert (await http.post("/auth/create_user", json=body)).status_code == 201
    await page.goto(f"{lifecycle_stack.url}/board")
    await page.get_by_label("Username or email").fill(body["username"])
    await page.get_by_label("Password").fill(body["password"])
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.locator("#connection")).to_have_text("Live")
    await page.get_by_role("button", name="Create order").click()
    card = page.locator("li.card")
    await expect(card).to_have_count(1)
    await card.get_by_role("button", name="Cancel").click()
    await expect(card).to_have_attribute("data-status", "CANCELED")
    await expect(page.locator('ul[data-status="CANCELED"] li.card')).to_have_count(1)
