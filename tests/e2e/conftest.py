"""End-to-end journeys in a real browser: Debian's Chromium driven by Playwright against a
live server. The `browser` and `screenshot` fixtures live in tests/browser.py (for every test
directory); this module keeps the sign-in step the journeys share."""


def sign_in(browser, live_server, username: str, password: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    return page
