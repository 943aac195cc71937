"""The playground page driven in headless Chromium against a live server on the tiny model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.live_server import LiveServer
from tests.playground.conftest import KEY, Console

SUBMIT_PATH = "/queue/fal-ai/pixverse/v5.5/text-to-video"
RENDER_TIMEOUT_MS = 120_000  # a tiny-wan clip on two busy CPU cores


def open_playground(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/")
    expect(page.locator("#gen-form")).to_be_visible()


def history_item(page: Page, request_id: str):
    return page.locator(f'#history li[data-id="{request_id}"]')


def video_state(page: Page) -> dict:
    return page.evaluate(
        """() => { const v = document.getElementById('video');
                   return {readyState: v.readyState, width: v.videoWidth, height: v.videoHeight,
                           duration: v.duration, src: v.currentSrc}; }"""
    )


def test_a_prompt_renders_plays_and_a_queued_job_cancels(
    page: Page, server: LiveServer, tmp_path: Path
) -> None:
    # 1. Fill the form and submit.
    open_playground(page, server)
    page.fill("#prompt", "a red fox running through fresh snow")
    page.fill("#negative_prompt", "blurry")
    page.select_option("#aspect_ratio", "1:1")
    page.select_option("#resolution", "360p")
    page.select_option("#duration", "5")
    page.uncheck("#seed-random")
    page.fill("#seed", "1234")
    expect(page.locator("#output-hint")).to_contain_text("360×360, 5 s")
    page.click("#submit")

    # 2. The queue, then live progress from the status stream.
    expect(page.locator("#job-status")).to_have_text(re.compile("In queue|Rendering"))
    first_id = page.text_content("#job-id")
    expect(page.locator("#progress-label")).to_have_text(
        re.compile(r"^step \d+/\d+$"), timeout=RENDER_TIMEOUT_MS
    )
    assert page.evaluate("document.getElementById('progress').value") > 0
    expect(page.locator("#log")).to_contain_text("step")

    # 3. A second job, with every other setting, waits behind the first; cancel it.
    page.fill("#prompt", "a clay robot waving")
    page.select_option("#aspect_ratio", "9:16")
    page.select_option("#style", "clay")
    page.select_option("#thinking_type", "disabled")
    page.check("#generate_audio_switch")
    page.check("#generate_multi_clip_switch")
    page.fill("#seed", "42")
    page.click("#submit")
    expect(page.locator("#job-id")).not_to_have_text(first_id)
    second_id = page.text_content("#job-id")
    page.click("#cancel")
    expect(page.locator("#job-status")).to_have_text("Cancelled.")
    expect(page.locator("#job-error")).to_contain_text("Cancelled")
    expect(history_item(page, second_id).locator(".badge")).to_have_text("cancelled")

    # 4. The first job finished in the background; show it from the history and play it.
    first = history_item(page, first_id)
    expect(first.locator(".badge")).to_have_text("completed", timeout=RENDER_TIMEOUT_MS)
    first.get_by_role("button", name="Show").click()
    expect(page.locator("#job-status")).to_have_text(re.compile("^Done"))
    page.wait_for_function("document.getElementById('video').readyState >= 2")
    state = video_state(page)
    assert (state["width"], state["height"]) == (360, 360)
    assert abs(state["duration"] - 5.0) < 0.1
    expect(page.locator("#meta-size")).to_have_text("360×360")
    expect(page.locator("#meta-duration")).to_have_text("5.00 s")
    expect(page.locator("#meta-seed")).to_have_text("1234")
    expect(page.locator("#meta-prompt")).to_contain_text("fox")
    expect(page.locator("#meta-file-size")).to_contain_text("bytes")
    assert page.get_attribute("#download", "href") == state["src"]
    # The player seeks: the file route answers a byte range.
    ranged = page.evaluate(
        "u => fetch(u, {headers: {Range: 'bytes=0-99'}}).then(r => r.status)", state["src"]
    )
    assert ranged == 206
    expect(first.locator("img.thumb")).to_have_attribute("src", re.compile("^data:image/jpeg;base64,"))

    # 5. Reuse the cancelled job's settings: the form comes back exactly as it was sent.
    history_item(page, second_id).get_by_role("button", name="Reuse settings").click()
    expect(page.locator("#prompt")).to_have_value("a clay robot waving")
    expect(page.locator("#negative_prompt")).to_have_value("blurry")
    expect(page.locator("#aspect_ratio")).to_have_value("9:16")
    expect(page.locator("#resolution")).to_have_value("360p")
    expect(page.locator("#style")).to_have_value("clay")
    expect(page.locator("#thinking_type")).to_have_value("disabled")
    expect(page.locator("#generate_audio_switch")).to_be_checked()
    expect(page.locator("#generate_multi_clip_switch")).to_be_checked()
    expect(page.locator("#seed-random")).not_to_be_checked()
    expect(page.locator("#seed")).to_have_value("42")

    # 6. The history survives a reload (localStorage).
    page.reload()
    expect(history_item(page, first_id).locator(".badge")).to_have_text("completed")
    first_id_again = history_item(page, first_id)
    first_id_again.get_by_role("button", name="Show").click()
    page.wait_for_function("document.getElementById('video').readyState >= 1")
    page.screenshot(path=tmp_path / "playground.png", full_page=True)
    assert (tmp_path / "playground.png").stat().st_size > 0


def test_the_servers_422_is_shown_next_to_each_field(
    page: Page, server: LiveServer, console: Console
) -> None:
    open_playground(page, server)
    # 2050 UTF-8 bytes in 1025 characters: the counter counts bytes, and the server, not the page, refuses it.
    page.fill("#prompt", "é" * 1025)
    page.fill("#negative_prompt", "x" * 2049)
    expect(page.locator("#prompt-count")).to_contain_text("2050 / 2048 bytes")
    expect(page.locator("#prompt-count")).to_have_class("counter over")
    page.click("#submit")

    expect(page.locator("#prompt-error")).to_contain_text("2048")
    expect(page.locator("#negative_prompt-error")).to_contain_text("2048")
    expect(page.locator("#prompt")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#form-error")).to_contain_text("422")
    expect(page.locator("#job")).to_be_hidden()
    console.expect_http_error(422, SUBMIT_PATH)

    # Fixing the field clears its message on the next submit.
    page.fill("#negative_prompt", "")
    page.fill("#prompt", "short")
    page.click("#submit")
    expect(page.locator("#job")).to_be_visible()
    expect(page.locator("#prompt-error")).to_be_hidden()
    page.click("#cancel")
    expect(page.locator("#job-status")).to_have_text("Cancelled.")


def test_1080p_disables_ten_seconds_and_says_so(page: Page, server: LiveServer) -> None:
    open_playground(page, server)
    page.select_option("#duration", "10")
    page.select_option("#resolution", "1080p")
    expect(page.locator("#duration")).to_have_value("8")
    expect(page.locator('#duration option[value="10"]')).to_be_disabled()
    expect(page.locator("#duration-note")).to_contain_text("changed from 10 s to 8 s")
    page.select_option("#resolution", "720p")
    expect(page.locator('#duration option[value="10"]')).to_be_enabled()
    expect(page.locator("#duration-note")).to_be_hidden()


def test_a_key_is_asked_for_on_401_and_kept_in_the_browser(
    page: Page, auth_server: LiveServer, console: Console
) -> None:
    open_playground(page, auth_server)
    # /health says a key is needed, so the key field is there before any request fails.
    expect(page.locator("#auth-panel")).to_be_visible()
    page.fill("#prompt", "a lighthouse at night")
    page.click("#submit")
    expect(page.locator("#form-error")).to_contain_text("401")
    expect(page.locator("#auth-panel")).to_be_visible()
    expect(page.locator("#api-key")).to_be_focused()
    console.expect_http_error(401, SUBMIT_PATH)

    page.fill("#api-key", KEY)
    page.click("#auth-form button[type=submit]")
    assert page.evaluate("localStorage.getItem('framecast.apiKey')") == KEY
    # No worker on this server: requests wait in line. Three are followed by status streams read with the key,
    # the fourth by polling (a browser has six connections per server).
    for position in range(4):
        page.click("#submit")
        expect(page.locator("#job-status")).to_have_text(f"In queue: position {position} ({position} ahead).")
    page.wait_for_timeout(1000)
    expect(page.locator("#job-error")).to_be_hidden()
    page.click("#cancel")
    expect(page.locator("#job-status")).to_have_text("Cancelled.")
    expect(page.locator("#history .badge")).to_have_text(["cancelled", "queued", "queued", "queued"])


def test_show_code_gives_snippets_that_run_against_this_server(
    page: Page, server: LiveServer, tmp_path: Path
) -> None:
    open_playground(page, server)
    page.fill("#prompt", "it's a small paper boat")
    page.select_option("#aspect_ratio", "1:1")
    page.select_option("#resolution", "360p")
    page.click("#show-code")
    expect(page.locator("#code-dialog")).to_be_visible()

    curl = page.text_content("#code")
    assert f"{server.url}{SUBMIT_PATH}" in curl
    assert "it'\\''s a small paper boat" in curl  # the single quote survives shell quoting
    page.click("#tab-python")
    python = page.text_content("#code")
    assert f'fal_client.client.QUEUE_URL_FORMAT = "{server.url}/queue/"' in python
    page.locator("#tab-python").press("ArrowRight")
    expect(page.locator("#tab-js")).to_be_focused()
    js = page.text_content("#code")
    assert f'proxyUrl: {{ url: "{server.url}/api/fal/proxy", when: "always" }}' in js
    page.keyboard.press("Escape")
    expect(page.locator("#code-dialog")).to_be_hidden()

    # The Python snippet, exactly as shown, renders a clip through the official client.
    script = tmp_path / "snippet.py"
    script.write_text(python)
    env = {**os.environ, "FAL_KEY": "any:thing"}
    run = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "/files/" in run.stdout and "step" in run.stdout
    # The JS snippet is at least valid JavaScript (the JS client itself is tested in tests/clients).
    module = tmp_path / "snippet.mjs"
    module.write_text(js)
    assert subprocess.run(["node", "--check", str(module)], capture_output=True).returncode == 0


def test_fits_a_phone_screen_and_works_from_the_keyboard(
    page: Page, server: LiveServer, tmp_path: Path
) -> None:
    page.set_viewport_size({"width": 375, "height": 812})
    open_playground(page, server)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.screenshot(path=tmp_path / "playground-375.png", full_page=True)

    order: list[str] = []
    while "show-code" not in order and len(order) < 20:
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id"))
    expected = [
        "prompt",
        "negative_prompt",
        "aspect_ratio",
        "resolution",
        "duration",
        "style",
        "thinking_type",
        "generate_audio_switch",
        "generate_multi_clip_switch",
        "seed-random",
        "submit",
        "show-code",
    ]
    assert [i for i in order if i in expected] == expected
    page.focus("#seed-random")
    page.keyboard.press("Tab")
    expect(page.locator("#submit")).to_be_focused()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    # Unticking "Random" from the keyboard opens the seed field, in focus order.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Space")
    expect(page.locator("#seed")).to_be_enabled()
    page.keyboard.press("Shift+Tab")
    expect(page.locator("#seed")).to_be_focused()
