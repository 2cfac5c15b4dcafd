"""Read HTML the way the tests need it: the text of an element by id, the elements of a class."""

from __future__ import annotations

from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Collector(HTMLParser):
    """Text and attributes of every element, with its open/close nesting resolved."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[dict] = []
        self.stack: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for open_element in self.stack:
            open_element["text"].append(" ")  # elements read as separate words
        element = {"tag": tag, "attrs": dict(attrs), "text": []}
        self.elements.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append({"tag": tag, "attrs": dict(attrs), "text": []})

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()["tag"] == tag:
                break

    def handle_data(self, data: str) -> None:
        for element in self.stack:
            element["text"].append(data)


def parse(html: str) -> list[dict]:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.elements


def text_of(html: str, element_id: str) -> str | None:
    """The text inside the element with this id (None if there is none), whitespace collapsed."""
    for element in parse(html):
        if element["attrs"].get("id") == element_id:
            return " ".join("".join(element["text"]).split())
    return None


def with_class(html: str, css_class: str, tag: str | None = None) -> list[dict]:
    return [e for e in parse(html) if css_class in (e["attrs"].get("class") or "").split()
            and (tag is None or e["tag"] == tag)]


def tags(html: str, tag: str) -> list[dict]:
    return [e for e in parse(html) if e["tag"] == tag]
