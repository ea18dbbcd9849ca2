"""Privacy of the outputs, in one place: every writer (transactions.csv, endpoints.csv, consumers.csv,
health.csv, the terminal summary) passes the text it writes through a ``Privacy``.

What the core already guarantees (so there is nothing to mask here): bodies are never stored, only their
sizes; the only header values recorded are Host, User-Agent and Content-Type (minus those named by
``--redact-header``); an identity header (``--consumer-header``) is kept only as a salted hash.

What this module does to the text that is written:

- request-targets (``uri``, and routes): query-string values are replaced by ``*``, keys kept
  (``/search?q=*&page=*``); an item without ``=`` is taken as a value (``?*``); path parameters
  (``/a;jsessionid=*``, RFC 3986 section 3.3) and a fragment (``#*``) likewise; unless
  ``keep_query_values``. The userinfo of an absolute-form target (``http://*@host/``, RFC 3986 section
  3.2.1) is always masked.
- every text cell (addresses, host, method, uri, route, reason, content types, user agent, consumer,
  problem lines, input paths): the user's patterns (``--mask REGEX``, replaced by ``*``) and presets
  (``email``, ``card``: 13 to 19 digits, spaces or dashes between them allowed, passing the Luhn check;
  ``ipv4``), replaced by ``{email}``, ``{card}``, ``{ipv4}``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_SPECIAL = re.compile(r"[?#;@]").search  # a target without these has nothing to mask (the common case)
# A percent-encoded separator ("%20") counts as a separator in card numbers and "%40" as "@" in e-mails:
# request-targets carry them encoded.
PRESETS: dict[str, str] = {
    "email": r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
    "card": r"(?<![0-9])[0-9](?:(?:[ \-]|%20)?[0-9]){12,18}(?![0-9])",
    "ipv4": r"(?<![0-9.])(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}"
            r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?!\.?[0-9])",
}


_DIGITS_DELETED = str.maketrans("", "", "0123456789")
_FOUR_DIGITS = re.compile(r"[0-9]{4}").search
# Cheap necessary conditions for a preset to match (a regex scan costs several microseconds per row).
_HINTS = {
    "{email}": lambda t: "@" in t or "%40" in t,
    # 13+ digits, with a group of 4 or more (every card layout: 4-4-4-4, 4-6-5, 13-19 digits at once)
    "{card}": lambda t: len(t) - len(t.translate(_DIGITS_DELETED)) >= 13 and _FOUR_DIGITS(t) is not None,
    "{ipv4}": lambda t: t.count(".") >= 3,
}


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check of ISO/IEC 7812 card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@dataclass(frozen=True, slots=True)
class Mask:
    """One pattern and what replaces its matches. ``luhn``: only digit runs passing the Luhn check."""

    pattern: re.Pattern[str]
    label: str
    luhn: bool = False
    preset: bool = False  # a preset never matches across a line end (``Privacy.cells`` relies on it)

    def apply(self, text: str) -> str:
        hint = _HINTS.get(self.label) if self.preset else None
        if hint is not None and not hint(text):
            return text  # cannot match: skip the scan (most text holds no e-mail, card or address)
        if self.luhn:
            label = self.label

            def card(m: re.Match[str]) -> str:
                digits = re.sub(r"[^0-9]", "", m.group(0).replace("%20", ""))
                return label if luhn_ok(digits) else m.group(0)

            return self.pattern.sub(card, text)
        return self.pattern.sub(self.label, text)


def make_mask(spec: str) -> Mask:
    """A preset by name (``email``, ``card``, ``ipv4``) or a user regex (raises re.error if invalid)."""
    preset = PRESETS.get(spec)
    if preset is not None:
        return Mask(re.compile(preset), "{" + spec + "}", spec == "card", True)
    return Mask(re.compile(spec), "*")


def _mask_items(s: str, sep: str) -> str:
    """``k=v`` items separated by ``sep``: values become ``*``; an item without ``=`` is a value."""
    out = []
    for item in s.split(sep):
        k, eq, v = item.partition("=")
        if eq:
            out.append(f"{k}=*" if v else f"{k}=")
        else:
            out.append("*" if item else "")
    return sep.join(out)


def mask_target(uri: str, keep_query_values: bool = False) -> str:
    """A request-target with query values, path parameters, fragment and userinfo masked (see the module
    docstring); origin, absolute, authority and asterisk forms (RFC 9112 section 3.2)."""
    if not _SPECIAL(uri):
        return uri
    # Absolute form: mask the userinfo of the authority.
    start = 0
    scheme_end = uri.find("://")
    if scheme_end > 0 and "/" not in uri[:scheme_end] and "?" not in uri[:scheme_end]:
        a = scheme_end + 3
        end = len(uri)
        for sep in "/?#":
            j = uri.find(sep, a)
            if 0 <= j < end:
                end = j
        at = uri.rfind("@", a, end)
        if at >= 0:
            uri = f"{uri[:a]}*{uri[at:]}"
            end -= at - a - 1
        start = end
    if keep_query_values:
        return uri
    frag = ""
    h = uri.find("#", start)
    if h >= 0:
        frag = "#*" if h + 1 < len(uri) else "#"
        uri = uri[:h]
    query = ""
    q = uri.find("?", start)
    if q >= 0:
        query = "?" + _mask_items(uri[q + 1:], "&")
        uri = uri[:q]
    if ";" in uri[start:]:
        head, tail = uri[:start], uri[start:]
        segments = []
        for seg in tail.split("/"):
            name, semi, params = seg.partition(";")
            segments.append(f"{name};{_mask_items(params, ';')}" if semi else seg)
        uri = head + "/".join(segments)
    return uri + query + frag


@dataclass(frozen=True, slots=True)
class Privacy:
    """What the writers do to text (see the module docstring). Picklable: workers format rows with it."""

    keep_query_values: bool = False
    masks: tuple[Mask, ...] = ()

    def text(self, s: str) -> str:
        """A text cell: the patterns and presets."""
        for m in self.masks:
            s = m.apply(s)
        return s

    def uri(self, s: str) -> str:
        """A request-target or a route: query values etc. masked, then the patterns."""
        s = mask_target(s, self.keep_query_values)
        for m in self.masks:
            s = m.apply(s)
        return s

    def cells(self, values: list[str], indexes: tuple[int, ...]) -> None:
        """``text`` on ``values[i]`` for each index, in place. The presets run once over the cells joined
        by line ends (they never match across one; when a cell holds a line end, cell by cell), the
        user's patterns cell by cell."""
        masks = self.masks
        presets = [m for m in masks if m.preset]
        others = masks
        if presets:
            text = "\n".join([values[i] for i in indexes])
            if text.count("\n") == len(indexes) - 1:
                for m in presets:
                    text = m.apply(text)
                for i, v in zip(indexes, text.split("\n")):
                    values[i] = v
                others = tuple(m for m in masks if not m.preset)
        if others:
            for i in indexes:
                v = values[i]
                if v:
                    for m in others:
                        v = m.apply(v)
                    values[i] = v

    def cell(self, key: str, value: str) -> str:
        """A named text cell of a table (``uri`` and ``route`` are request-targets)."""
        return self.uri(value) if key in ("uri", "route") else self.text(value)


DEFAULT_PRIVACY = Privacy()


def make_privacy(keep_query_values: bool = False, masks: tuple[str, ...] | list[str] = ()) -> Privacy:
    return Privacy(keep_query_values, tuple(make_mask(m) for m in masks))
