import pytest

from netrum.aggregate.routes import RouteTemplater, path_of, template_segment


@pytest.mark.parametrize(
    "segment, expected",
    [
        ("123", "{id}"),
        ("-7", "{id}"),
        ("0f8fad5b-d9cb-469f-a165-70867728950e", "{uuid}"),
        ("0f8fad5bd9cb469fa16570867728950e", "{uuid}"),
        ("2026-11-23", "{date}"),
        ("2026-11-23T10:00:00Z", "{date}"),
        ("deadbeefcafebabe1234", "{hash}"),
        ("eyJhbGciOiJIUzI1NiJ9abcdefghij123", "{token}"),
        ("users", "users"),
        ("me", "me"),
        ("v1", "v1"),
        ("deadbeef", "deadbeef"),  # short hex words stay literal
        ("abcdefabcdefabcdefab", "abcdefabcdefabcdefab"),  # long but no digit: a word, not a hash
        ("", ""),
    ],
)
def test_template_segment(segment: str, expected: str) -> None:
    assert template_segment(segment) == expected


@pytest.mark.parametrize(
    "target, path",
    [
        ("/a/b?x=1", "/a/b"),
        ("/a#frag", "/a"),
        ("http://example.com/x/y?q", "/x/y"),
        ("http://example.com", "/"),
        ("*", "*"),
        ("example.com:443", "example.com:443"),
    ],
)
def test_path_of(target: str, path: str) -> None:
    assert path_of(target) == path


def test_route_collapses_ids_and_keeps_literals() -> None:
    t = RouteTemplater()
    assert t.route("GET", "/users/42/orders/7?expand=1") == "/users/{id}/orders/{id}"
    assert t.route("GET", "/users/me") == "/users/me"
    assert t.route("GET", "/") == "/"
    assert t.route("CONNECT", "mail.example.com:25") == "mail.example.com:25"
    assert t.route("OPTIONS", "*") == "*"
    assert t.route(None, None) == ""
    # cached answers are the same answers
    assert t.route("GET", "/users/42/orders/7?expand=1") == "/users/{id}/orders/{id}"
