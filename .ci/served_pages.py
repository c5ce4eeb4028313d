"""Every asset the human-facing pages (/, /docs, /redoc) name must answer 200 from the server.

An installed package that lacks a data file still answers /health and /predict; only the pages'
assets show it (a blank /docs, a 500 at /). This reads each page's HTML for the URLs it names
(src, href, the schema URL attributes), resolves them as a browser would, and fetches each one.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from local_server import http

PAGES = ("/", "/docs", "/redoc")
URL_ATTRIBUTES = frozenset({"src", "href", "data-openapi-url", "spec-url"})


class _Urls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in URL_ATTRIBUTES and value]


def named_urls(page_url: str, html: str) -> list[str]:
    """Absolute URLs of what the page names, in order, without duplicates."""
    parser = _Urls()
    parser.feed(html)
    return list(dict.fromkeys(urljoin(page_url, url) for url in parser.urls))


def check_pages(base: str) -> list[str]:
    """Problems found (empty when every page and every asset it names answers 200 here)."""
    origin = urlsplit(base).netloc
    problems: list[str] = []
    checked: dict[str, int] = {}
    for path in PAGES:
        status, body = http("GET", base + path)
        if status != 200:
            problems.append(f"{path} answered {status}: {body[:200]!r}")
            continue
        for url in named_urls(base + path, body.decode("utf-8", "replace")):
            if urlsplit(url).netloc != origin:
                problems.append(f"{path} names an outside URL {url}")
                continue
            if url not in checked:
                checked[url] = http("GET", url)[0]
            if checked[url] != 200:
                problems.append(f"{path} names {url}, which answered {checked[url]}")
    if not checked:
        problems.append("the pages named no asset at all: nothing was checked")
    return problems
