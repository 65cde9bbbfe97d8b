# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Connection options shared by every module of restate.admin."""

    DOCUMENTATION = r"""
options:
  admin_url:
    description:
      - Base URL of the Restate Admin API (the admin port, 9070 by default), C(http://) or C(https://) followed by
        a host, for example V(http://localhost:9070). A URL without a scheme (V(127.0.0.1:9070)), with another
        scheme, an empty one, one with a user name or password, a query or a fragment, or one that ends in an
        Admin API route (V(http://host:9070/query)) is refused before any request, naming the option.
      - A Restate server serves its Admin API at the root. A path is taken only for a proxy that serves the Admin
        API under one (V(https://proxy.example.com/restate-admin)); every call is then sent under that path.
      - Whitespace around each URL is removed.
      - For a cluster, a list of the nodes' Admin API URLs (or one comma-separated string). Calls go to the first
        node; when it cannot be reached or answers 502/503/504 (or 500 to a read) they move on to the next, and
        the rest of the task stays there. Any node's Admin API acts on the invocations of every partition.
      - If not set, the environment variable E(RESTATE_ADMIN_URL) is used, as the official C(restate) CLI does; it
        may hold several comma-separated URLs.
    type: list
    elements: str
    default: [http://localhost:9070]
  token:
    description:
      - Bearer token sent in the C(Authorization) header, for an Admin API behind an authenticating proxy
        or Restate Cloud.
      - If not set, the environment variable E(RESTATE_AUTH_TOKEN) is used.
      - Whitespace around the token is removed, as around a pasted one (a YAML block scalar, C(|), ends it
        with a newline); a token that is empty after that sends no C(Authorization) header.
      - A token with a line break, a control or format character, a space or a non-ASCII character inside it, or
        longer than 16384 characters, is refused before any request with a message that names O(token) and does
        not show the token.
      - The token alone; one that starts with C(Bearer) and a space is refused, as the collection adds that.
      - A token shorter than 8 characters is refused, as Ansible hides a secret wherever it appears in the output, and
        so short a value would hide those characters in every message and result of the run.
      - Never logged, in any form; never sent anywhere but O(admin_url) (a redirect is not followed).
    type: str
  validate_certs:
    description:
      - Verify the server's TLS certificate when O(admin_url) is C(https://...).
      - Set to V(false) only for throw-away test servers.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of the certificate authority (or bundle) that signed the server's certificate.
      - Used instead of the system trust store when O(validate_certs=true).
      - May also be a directory of certificates named by their hashes (C(openssl rehash)).
      - Must exist and be readable where the task runs (the controller with a local connection); a file must hold
        a PEM certificate.
    type: path
  client_cert:
    description:
      - PEM client certificate for servers or proxies that require mutual TLS.
      - May hold the key too; otherwise give O(client_key).
      - Must be an existing, readable file.
    type: path
  client_key:
    description:
      - PEM private key of O(client_cert).
      - Must be an existing, readable file.
    type: path
  timeout:
    description:
      - Seconds to wait for each HTTP answer, from V(0) to V(86400). V(0) waits forever.
      - It bounds the whole answer, from sending the call to the last byte of the answer, not each read, so a server
        that trickles its answer is cut off at the timeout too.
      - Whatever the timeout, an answer larger than the call can use (16 MB; for a query, 8 KB per row its LIMIT asks
        for, or 64 MB) fails the call unread, and a server's error message is cut to 500 characters.
      - A redirect (HTTP 3xx) is never followed, since the token and headers would go with it; it fails the call,
        naming where it pointed, and no further call is sent.
    type: float
    default: 30
  retries:
    description:
      - How often to repeat a call that failed in a way that is safe to repeat, with a back-off that starts at
        half a second and doubles.
      - A refused connection is always safe to repeat; HTTP 502/503/504, time-outs and dropped connections
        only for calls that do not create anything (never for restart-as-new); HTTP 500 only for reads, which a
        node answers while it starts or while partitions change leaders.
      - Each repetition is reported as a warning.
      - From V(0) to V(10).
      - The default waits 7.5 seconds in all before it gives up, longer than a Restate cluster takes to give the
        partitions of a node that died new leaders (3 to 5 seconds on a 3-node cluster; meanwhile the other nodes
        refuse reads with HTTP 500 and actions with HTTP 503).
    type: int
    default: 4
  headers:
    description:
      - Extra HTTP headers sent with every call, for example to pass a proxy.
      - They override the collection's own, for example C(Accept-Encoding), which asks for uncompressed answers
        when every O(admin_url) is a loopback address and for gzip otherwise.
      - Names are HTTP header names (letters, digits and C(-)); C(Host), C(Content-Length), C(Transfer-Encoding)
        and C(Connection) are refused, and so is C(Authorization) together with O(token).
      - Values are strings (quote V(true) and the like). Like the token, they are secrets (never logged) with the
        whitespace around them removed, and a value with a line break or control character inside is refused
        with a message that names C(headers.<name>) and does not show the value.
      - Like the token, a value shorter than 8 characters is refused, as Ansible would hide those characters in
        every message of the run.
      - May also be given as a string of C(name=value) pairs or JSON; the values stay hidden either way.
    type: dict
    default: {}
"""
