# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""The connection options checked at the door: before any request, with a message that names the option and the fix.

``check_connection(params)`` refuses what no request could carry or reach (an admin_url without http:// or
https://, a CA file that is not there, a token or header value with a line break in it) and puts the values the
client is to use back into ``params``: the token and header values without their surrounding whitespace.

A secret (the token, a header value) is never part of a message, not even escaped or in part: a message says what
kind of character is wrong, never which. No Ansible imports: the client side may use this too.
"""

from __future__ import annotations

import math
import os
import re
import ssl
import unicodedata
from urllib.parse import urlsplit

from ansible_collections.restate.admin.plugins.module_utils._errors import InputError

EXAMPLE_URL = "http://localhost:9070"
# The first path segment of the Admin API's own routes: an admin_url ending in one was copied from a call's URL.
ADMIN_API_ROUTES = frozenset(("version", "health", "query", "invocations", "deployments", "services",
                              "subscriptions", "openapi", "internal", "cluster-health"))
# RFC 9110 token characters: what a header name may hold.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Headers the transport sets itself from admin_url and the request: given twice they break the request.
TRANSPORT_HEADERS = frozenset(("host", "content-length", "transfer-encoding", "connection"))
# Longer than any proxy takes in one header (most refuse a request whose headers pass 8 to 16 KB).
MAX_HEADER_VALUE = 16384
MAX_URL = 2048
MAX_TIMEOUT = 86400.0
MAX_RETRIES = 10
# Ansible masks every no_log value wherever it appears in output: a secret of a character or two would mask those
# characters in every message and result of the run. Real tokens and keys are much longer.
MIN_SECRET = 8
LINE_BREAKS = frozenset("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def check_connection(params: dict) -> None:
    """Refuse bad connection options with an InputError; normalize the good ones in ``params``."""
    params["admin_url"] = [check_admin_url(url, "admin_url") for url in _urls(params.get("admin_url"))]
    token = params.get("token")
    if token is not None:
        params["token"] = check_secret(token, "token", allow_space=False) or None
    params["headers"] = check_headers(params.get("headers"), params.get("token"))
    for option in ("ca_path", "client_cert", "client_key"):
        if params.get(option) is not None:
            check_file(params[option], option, directory_ok=option == "ca_path")
    if params.get("ca_path") and os.path.isfile(params["ca_path"]):
        try:
            ssl.create_default_context(cafile=params["ca_path"])
        except (ssl.SSLError, ValueError, OSError):
            raise InputError(f"ca_path: {params['ca_path']} holds no PEM certificate; give the PEM file of the "
                             "certificate authority that signed the server's certificate") from None
    check_number(params.get("timeout"), "timeout", MAX_TIMEOUT, " (0 waits forever)")
    check_number(params.get("retries"), "retries", MAX_RETRIES, "")


def _urls(value) -> list:
    if value is None or value == []:
        raise InputError(f"admin_url: empty; give the Admin API's URL, e.g. {EXAMPLE_URL}, or leave admin_url "
                         "(and RESTATE_ADMIN_URL) unset for that default")
    return value if isinstance(value, list) else [value]


def check_admin_url(value, option: str = "admin_url") -> str:
    """The URL with surrounding whitespace removed and its scheme in lower case, or an InputError."""
    if not isinstance(value, str):
        raise InputError(f"{option}: expected a URL such as {EXAMPLE_URL}, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise InputError(f"{option}: empty; give the Admin API's URL, e.g. {EXAMPLE_URL}, or leave admin_url "
                         "(and RESTATE_ADMIN_URL) unset for that default")
    authority = text.split("://", 1)[-1].split("/", 1)[0]
    if "@" in authority:
        # Not shown: what comes before the @ is a password.
        raise InputError(f"{option}: user name or password in the URL are not supported (nor shown); give the "
                         "URL without them, and credentials in token or headers")
    if len(text) > MAX_URL:
        raise InputError(f"{option}: longer than {MAX_URL} characters; give the Admin API's base URL, e.g. "
                         f"{EXAMPLE_URL}")
    shown = repr(text[:100]) + ("..." if len(text) > 100 else "")
    bad = bad_character(text, allow_space=False)
    if bad:
        raise InputError(f"{option}: {shown} contains {bad}; give the Admin API's base URL, e.g. {EXAMPLE_URL} "
                         "(an internationalized host name in its xn-- form)")
    if "://" not in text:
        raise InputError(f"{option}: {shown} has no scheme; add http:// (or https:// for TLS), e.g. http://{text}")
    scheme = text.split("://", 1)[0]
    if scheme.lower() not in ("http", "https"):
        raise InputError(f"{option}: {shown} uses {scheme}://; the Admin API speaks http:// or https://, e.g. "
                         f"{EXAMPLE_URL}")
    text = scheme.lower() + text[len(scheme):]
    check_url_parts(text, shown, option)
    return text


def check_url_parts(text, shown, option):
    """Refuse an http(s) URL without a host or a valid port, or with more than the Admin API's base URL."""
    parts = urlsplit(text)
    if not parts.hostname:
        raise InputError(f"{option}: {shown} has no host; e.g. {EXAMPLE_URL}")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise InputError(f"{option}: {shown} has no valid port; give a number from 1 to 65535 (the Admin API's "
                         f"is 9070 by default), e.g. {EXAMPLE_URL}")
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise InputError(f"{option}: {shown} has a query (?...) or fragment (#...); give the base URL only, e.g. "
                         f"{parts.scheme}://{parts.netloc}")
    segments = [segment for segment in parts.path.split("/") if segment]
    if segments and segments[0] in ADMIN_API_ROUTES or segments[-1:] and segments[-1] in ADMIN_API_ROUTES:
        raise InputError(f"{option}: {shown} ends in an Admin API route (/{segments[-1]}); give the base URL, "
                         f"e.g. {parts.scheme}://{parts.netloc}")


def check_secret(value, option: str, allow_space: bool) -> str:
    """A secret without its surrounding whitespace, or an InputError that does not show it."""
    text = str(value).strip()
    if len(text) > MAX_HEADER_VALUE:
        raise InputError(f"{option}: {len(text)} characters, more than an HTTP header takes ({MAX_HEADER_VALUE} "
                         "at most); check what was pasted")
    if option == "token" and text[:7].lower() == "bearer ":
        raise InputError("token: starts with 'Bearer '; give the token alone, the collection sends 'Bearer <token>'. "
                         "The value is not shown.")
    bad = bad_character(text, allow_space)
    if bad:
        raise InputError(f"{option}: contains {bad} inside it, which an HTTP header cannot carry (only surrounding "
                         "whitespace is removed); check how the value was pasted or stored. The value is not shown.")
    if text and len(text) < MIN_SECRET:
        raise InputError(f"{option}: shorter than {MIN_SECRET} characters. It is a secret, which Ansible hides "
                         "wherever it appears in the output: so short a value would hide those characters in every "
                         "message. Give the real credential (or leave the option out).")
    return text


def check_headers(headers, token, option_name: str = "headers") -> dict:
    """The headers as {name: value} strings, values without surrounding whitespace, or an InputError naming
    ``option_name`` (headers, or restate_deployment's additional_headers: both secrets, read the same way)."""
    if headers is None:
        return {}
    if not isinstance(headers, dict):
        raise InputError(f"{option_name}: expected a dictionary such as {{X-Api-Key: ...}}")
    checked = {}
    for name, value in headers.items():
        name_text = str(name)
        if not HEADER_NAME.fullmatch(name_text):
            # Only what comes before the first character a name cannot hold: a name pasted with its value after a
            # ':' (or a space) shows nothing of the value.
            good = re.match(r"[!#$%&'*+.^_`|~0-9A-Za-z-]*", name_text).group()[:40]
            what = "is empty" if not name_text else (
                f"starting {good!r} contains {bad_character(name_text[len(good):], False) or 'a character'} "
                "(or ':')")
            raise InputError(f"{option_name}: a header name {what}; a name is letters, digits and '-' such as X-Api-Key, "
                             "with its value on the right of the ':' in YAML")
        option = f"{option_name}.{name_text}"
        if name_text.lower() in TRANSPORT_HEADERS:
            raise InputError(f"{option}: set by the collection for every request; remove it")
        if name_text.lower() == "authorization" and token:
            raise InputError(f"{option}: token sets this header too; give the token either as token or as "
                             "headers.Authorization, not both")
        if isinstance(value, bool):
            raise InputError(f"{option}: YAML read the value as a boolean; quote it")
        if value is None or isinstance(value, (dict, list, tuple, set)):
            raise InputError(f"{option}: expected a string value, got {'nothing' if value is None else 'a ' + type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{option}: expected a string value; quote it")
        checked[name_text] = check_secret(value, option, allow_space=True)
    return checked


def check_file(path, option: str, directory_ok: bool) -> None:
    what = "a PEM file or a directory of hashed certificates" if directory_ok else "a PEM file"
    if not isinstance(path, str) or not path.strip():
        raise InputError(f"{option}: empty; give {what}, or leave {option} unset")
    if "\x00" in path:
        raise InputError(f"{option}: the path contains a NUL character; give {what}")
    if not os.path.exists(path):
        raise InputError(f"{option}: {path[:300]} does not exist; give {what} readable by the user the task runs "
                         "as (the module runs where the task runs: the controller with connection local)")
    if os.path.isdir(path) and not directory_ok:
        raise InputError(f"{option}: {path[:300]} is a directory; give {what}")
    if not os.access(path, os.R_OK | (os.X_OK if os.path.isdir(path) else 0)):
        raise InputError(f"{option}: {path[:300]} cannot be read by this user; give {what} it can read")


def check_number(value, option: str, maximum, note: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not math.isfinite(value)):
        raise InputError(f"{option}: expected a number from 0 to {maximum:g}{note}, got {str(value)[:40]!r}")
    if not 0 <= value <= maximum:
        shown = f"{value:g}" if isinstance(value, float) or abs(value) < 10 ** 15 else f"{str(value)[:12]}..."
        raise InputError(f"{option}: must be from 0 to {maximum:g}{note}, got {shown}")


def bad_character(text: str, allow_space: bool):
    """What kind of character ``text`` holds that no HTTP header or URL can carry, or None: never which one."""
    for char in text:
        if char in LINE_BREAKS:
            return "a line break"
        if char in " \t":
            if not allow_space:
                return "a space or tab"
            continue
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"):
            return "a control, format or separator character"
        if ord(char) > 126:
            return "a non-ASCII character"
    return None
