"""Where a URL may send the bearer token: one policy, decided by the parse the HTTP layer uses.

requests and urllib3 decide where to connect with urllib3's ``parse_url``; a check made with
another parser can disagree with them (``urlsplit`` reads ``http://a:1\\@b:2/`` as host b,
urllib3 connects to a). So every question here is answered from ``parse_url``, and it is asked
where a request is about to be sent: a mint-only run never imports urllib3 (~100 ms).
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any, Mapping, Optional, Tuple
from urllib.parse import urljoin, urlsplit

from . import messages as text
from .errors import InputError, UploadFailedError
from .redact import may_be_secret_path, quote_foreign, shown

if TYPE_CHECKING:
    from .records import Naming

Origin = Tuple[str, str, int]
# An ID App Store Connect answers goes into request paths: only characters a path segment takes as they are.
_API_ID = re.compile(r"[A-Za-z0-9._~-]{1,200}")
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def api_id(value: object, what: str) -> str:
    """``value``, an ID App Store Connect answered, when it is safe in a request path; else
    :class:`UploadFailedError` naming what was answered (``../../v1/apps/1`` would aim a DELETE elsewhere)."""
    if isinstance(value, str) and _API_ID.fullmatch(value) and value not in (".", ".."):
        return value
    said = quote_foreign(value, 80) if isinstance(value, str) and value else "nothing"
    if value is not None and not isinstance(value, str):
        said = f"a {type(value).__name__}"
    raise UploadFailedError(text.UNUSABLE_ID.format(what=what, said=said), title="Unusable answer")


def _parse(url: str) -> Optional[Any]:
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url  # what requests' prepare_url and urllib3's pool use

    try:
        return parse_url(url)
    except (LocationParseError, ValueError):
        return None


def unsafe_characters(url: str) -> bool:
    # A backslash is a path character to urllib3 and an authority end to browsers and WHATWG.
    return "\\" in url or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url)


def origin(url: str) -> Optional[Origin]:
    """(scheme, host, port) as the sender connects, default port filled in; None when unusable."""
    parts = None if unsafe_characters(url) else _parse(url)
    if parts is None or parts.scheme not in ("https", "http") or not parts.host:
        return None
    return parts.scheme, parts.host.lower(), parts.port or (443 if parts.scheme == "https" else 80)


def base_url_problem(url: str) -> str:
    """Why ``url`` must not be a base URL that receives the bearer token, or '' when it may."""
    if unsafe_characters(url):
        return "contains spaces, backslashes or control characters"
    parts = _parse(url)
    if parts is None:
        return "is not a valid URL"
    if parts.scheme not in ("https", "http"):
        return "must start with https://"
    if not parts.host:
        return "has no host name"
    if not _valid_host(parts.host):
        return "does not have a valid host name"
    if parts.auth is not None:
        return "has a user name or password in it (they would be sent to the server and logged)"
    if parts.query is not None or parts.fragment is not None:
        return "must be a base URL without ?query or #fragment"
    if parts.scheme == "http" and not is_loopback(parts.host):
        return "uses plain http:// to a host that is not this machine"
    return ""


def target_problem(url: str, base: str) -> str:
    """Why the absolute ``url`` may not receive the token meant for ``base``'s origin, or ''."""
    if unsafe_characters(url):
        return "contains spaces, backslashes or control characters"
    parts = _parse(url)
    if parts is not None and parts.auth is not None:
        return "has a user name or password in it"
    if origin(url) is None or origin(url) != origin(base):
        return "is not on the API host"
    return ""


def join_path(target: str, base: str) -> str:
    """PATH on ``base``: a path is appended to it (its path prefix kept); a full URL stays as it is."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", target):
        return target
    return base.rstrip("/") + "/" + target.lstrip("/")


def _valid_host(host: str) -> bool:
    """An IP address, or labels of 1 to 63 letters, digits, hyphens or underscores (after IDNA)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")  # refuses empty and over-long labels
    except UnicodeError:
        return False
    return all(_LABEL.fullmatch(label) for label in ascii_host.rstrip(".").split("."))


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def proxy_for(url: str, env: Mapping[str, str]) -> Optional[str]:
    """The proxy for ``url``: HTTPS_PROXY for https (never for loopback, never past NO_PROXY).

    Plain http goes only to this machine (:func:`base_url_problem`), so it never takes a proxy.
    """
    parts = _parse(url)
    if parts is None or parts.scheme != "https" or not parts.host or is_loopback(parts.host):
        return None
    proxy = (env.get("HTTPS_PROXY") or env.get("https_proxy") or "").strip()
    if not proxy or _bypassed(parts.host.lower(), env.get("NO_PROXY") or env.get("no_proxy") or ""):
        return None
    if not proxy.lower().startswith(("http://", "https://")):
        raise InputError(
            "HTTPS_PROXY must be an http:// or https:// proxy URL (SOCKS is not supported): "
            "set it to your proxy's http:// address, or unset it."
        )
    return proxy


def _bypassed(host: str, no_proxy: str) -> bool:
    for entry in no_proxy.replace(" ", "").lower().split(","):
        name = entry.split(":", 1)[0] if entry.count(":") == 1 else entry  # host:port, not IPv6
        if entry == "*" or (name and (host == name.lstrip(".") or host.endswith("." + name.lstrip(".")))):
            return True
    return False


MAX_URL_LENGTH = 8000  # longer than any path and query Apple documents


def unusable_url(target: str) -> bool:
    """A PATH or links.next that is not sent at all: unsafe characters, or too long."""
    return unsafe_characters(target) or len(target) > MAX_URL_LENGTH


def resolve(target: str, api_url: str, argument: str, naming: Naming, page_url: Optional[str] = None) -> str:
    """PATH joined to ``api_url`` (or a links.next resolved against ``page_url``), when that URL may
    receive the token meant for ``api_url``; refused before anything is sent."""
    url = join_path(target, api_url) if page_url is None else urljoin(page_url, target)  # RFC 3986
    # A key pasted as PATH would reach the server's logs: its path (never the query, where Apple's
    # cursors are) holds resource names and IDs, none of them key-like.
    if page_url is None and may_be_secret_path(_path_of(target)):
        raise InputError(f"{argument} holds what looks like key material (not shown): give an API path like /v1/apps.")
    problem = target_problem(url, api_url)
    if problem:
        raise InputError(
            f"{argument} {shown(target)} {problem} ({quote_foreign(api_url, 200)}, {naming.label('api-url')}), so "
            "it is refused before anything is sent: the request carries the bearer token. Give a path like "
            "/v1/apps, or a URL on that host."
        )
    return url


def _path_of(target: str) -> str:
    try:
        return urlsplit(target).path
    except ValueError:  # a malformed host: refused as not on the API host just after
        return ""


def operation_url_problem(url: str) -> str:
    """Why an upload operation's ``url`` (a pre-signed object-storage link, on another host than the API) may
    not receive a file's bytes, or ''. Judged as api-url is: https, or plain http only to this machine. Its
    query is the link's signature and stays; a user name or password would be sent as credentials: refused."""
    if unsafe_characters(url):
        return "contains spaces, backslashes or control characters"
    if len(url) > MAX_URL_LENGTH:
        return f"is longer than {MAX_URL_LENGTH} characters"
    parts = _parse(url)
    if parts is None:
        return "is not a valid URL"
    if parts.scheme not in ("https", "http"):
        return "is not an https:// URL"
    if not parts.host or not _valid_host(parts.host):
        return "does not have a valid host name"
    if parts.auth is not None:
        return "has a user name or password in it (they would be sent as credentials)"
    if parts.scheme == "http" and not is_loopback(parts.host):
        return "uses plain http:// to a host that is not this machine"
    return ""
