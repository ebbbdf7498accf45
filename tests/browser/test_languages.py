"""Every page in both languages: nothing untranslated, every label changes with the language,
and screenshots of each main page at 1366x768 in Japanese (build/screenshots/, git-ignored).

What a page shows is every text node and every `aria-label`, `title`, `placeholder` and `alt`,
hidden steps included (the sign-in page's MFA steps are on it before they are shown), except
inside `translate="no"` elements: names, addresses, queue names, codes, which are data, not
interface. The Japanese page may show no Latin word but the proper nouns of `PROPER_NOUNS`; the
English page, no Japanese character; and the two must differ in every text that has a word.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from browser.conftest import NewPage
from browser.site import Site
from browser.test_pages import enrol_mfa, sign_in_with_password

PROPER_NOUNS = frozenset({"callwarden", "ACD", "QR", "IP", "CSV"})
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]")
WAIT_MS = 10_000

VISIBLE_TEXTS = """
() => {
  const texts = [];
  const skip = (node) => node.closest('[translate="no"], script, style');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (skip(node.parentElement)) continue;
    const text = node.textContent.trim();
    if (text) texts.push(text);
  }
  for (const element of document.querySelectorAll('[aria-label], [title], [placeholder], [alt]')) {
    if (skip(element)) continue;
    for (const name of ['aria-label', 'title', 'placeholder', 'alt']) {
      const value = element.getAttribute(name);
      if (value) texts.push(value.trim());
    }
  }
  texts.push(document.title);
  return texts;
}
"""


UNLABELLED = """
() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter((control) => {
    if (control.tagName === 'BUTTON') {
      return !control.textContent.trim() && !control.getAttribute('aria-label');
    }
    return control.labels.length === 0 && !control.getAttribute('aria-label')
      && !control.getAttribute('aria-labelledby');
  })
  .map((control) => control.outerHTML)
"""


def texts_of(page: Page) -> list[str]:
    texts: list[str] = page.evaluate(VISIBLE_TEXTS)
    return texts


def untranslated_in_japanese(texts: list[str]) -> list[str]:
    return [
        text for text in texts if any(word not in PROPER_NOUNS for word in LATIN_WORD.findall(text))
    ]


def japanese_in_english(texts: list[str]) -> list[str]:
    return [text for text in texts if JAPANESE.search(text)]


def switch_language(page: Page, language: str) -> None:
    name = "English" if language == "en" else "日本語"
    page.get_by_role("button", name=name).click()
    expect(page.locator("html")).to_have_attribute("lang", language, timeout=WAIT_MS)
    page.wait_for_load_state("load")  # the reloaded page's modules have run
    settle(page)


def settle(page: Page) -> None:
    """Until a live page's WebSocket is connected (its status line says so), and a page that
    loads its data from the API (`data-loads`) has loaded it."""
    status = page.locator("#live-status")
    if status.count():
        expect(status).to_have_attribute("data-connected", "true", timeout=WAIT_MS)
    body = page.locator("body[data-loads]")
    if body.count():
        expect(body).to_have_attribute("data-loaded", "true", timeout=WAIT_MS)


def check_both_languages(page: Page, where: str, screenshots: Path) -> None:
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    page.screenshot(path=str(screenshots / f"{where}.png"))
    assert page.evaluate(UNLABELLED) == [], where  # every control has a name
    japanese = texts_of(page)
    assert untranslated_in_japanese(japanese) == [], where
    switch_language(page, "en")
    english = texts_of(page)
    assert japanese_in_english(english) == [], where
    assert len(english) == len(japanese), (where, japanese, english)
    unchanged = [
        (ja, en)
        for ja, en in zip(japanese, english, strict=True)
        if ja == en
        and (LATIN_WORD.search(ja) or JAPANESE.search(ja))
        and not set(LATIN_WORD.findall(ja)) <= PROPER_NOUNS
    ]
    assert unchanged == [], (where, unchanged)
    switch_language(page, "ja")
    assert texts_of(page) == japanese, where


def test_every_page_in_both_languages(site: Site, new_page: NewPage, screenshots: Path) -> None:
    page = new_page()
    page.goto(site.url("/sign-in"))
    check_both_languages(page, "sign-in", screenshots)

    sign_in_with_password(page, site, "supervisor")
    expect(page.get_by_role("heading", name="二要素認証の設定")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#qr svg")).to_be_visible()
    page.screenshot(path=str(screenshots / "mfa-set-up.png"))
    enrol_mfa(page, site)
    expect(page).to_have_url(site.url("/wallboard"), timeout=WAIT_MS)
    expect(page.locator("#live-status")).to_have_attribute("data-connected", "true")
    check_both_languages(page, "wallboard", screenshots)

    page.goto(site.url("/account/sessions"))
    check_both_languages(page, "sessions", screenshots)

    page.goto(site.url("/reports"))
    settle(page)
    check_both_languages(page, "reports", screenshots)

    operator = new_page()
    sign_in_with_password(operator, site, "operator", "/desk")
    expect(operator).to_have_url(site.url("/desk"), timeout=WAIT_MS)
    # The desk's script has run (its live feed is connected) before the button is clicked: a
    # click before it was lost on a loaded machine (the button stayed "offline").
    expect(operator.locator("body")).to_have_attribute("data-live", "connected", timeout=WAIT_MS)
    operator.get_by_role("button", name="受付可能にする").click()
    expect(operator.locator("#state")).to_have_text("受付可能", timeout=WAIT_MS)
    check_both_languages(operator, "desk", screenshots)
    # The language is remembered: a new page of the same browser is in the chosen language.
    switch_language(operator, "en")
    operator.goto(site.url("/account/sessions"))
    expect(operator.get_by_role("heading", level=1)).to_have_text("Your sessions and sign-ins")
    switch_language(operator, "ja")
