"""The egress policy: which URLs and addresses the server may connect to on a user's behalf.

A user names URLs that the server connects to later (``fal_webhook`` today, input images next). Unchecked, the
server is a proxy into its own network (SSRF): loopback ports, the cloud metadata service, the LAN. So a URL is
checked twice:

1. on submit, ``EgressPolicy.admit``: its syntax (``target``) and every address its host resolves to;
2. on connect, ``EgressPolicy.addresses`` resolves and checks again, and the caller connects to an address it
   just checked (``pinned``), with the URL's host kept in the ``Host`` header and as the TLS server name. A name
   that resolves to a public address at submit and to 127.0.0.1 a minute later (DNS rebinding) is refused.

Only public unicast addresses pass, unless the operator allows ranges (``FRAMECAST_WEBHOOK_ALLOW``).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from framecast.errors import ConfigError, EgressRefused

__all__ = [
    "EgressPolicy",
    "HostUnresolvable",
    "IPAddress",
    "Resolver",
    "Target",
    "address_class",
    "pinned",
    "resolve_system",
    "target",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[IPAddress]]

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
# One message for every address refusal, and for a name that does not resolve: a caller learns no more about the
# server's network (or its internal DNS) than public DNS already tells them.
NOT_PUBLIC = "URL host does not resolve to a public internet address"

# Cloud metadata services. Most sit in ranges refused anyway (link-local, CGNAT, unique-local); Azure's wire
# server is a public address, so each is named.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits

_PRINTABLE = re.compile(r"[\x21-\x7e]+")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")

# Most specific first: the first test an address passes names its class.
_CLASSES: tuple[tuple[str, Callable[[Any], bool]], ...] = (
    ("metadata", lambda a: a in METADATA_ADDRESSES),
    ("unspecified", lambda a: a.is_unspecified),
    ("loopback", lambda a: a.is_loopback),
    ("link-local", lambda a: a.is_link_local),
    ("multicast", lambda a: a.is_multicast),
    ("shared", lambda a: a in _SHARED),
    ("unique-local", lambda a: a in _UNIQUE_LOCAL),
    ("site-local", lambda a: getattr(a, "is_site_local", False)),
    ("reserved", lambda a: a.is_reserved),
    ("private", lambda a: a.is_private),
    ("non-global", lambda a: not a.is_global),
)


class HostUnresolvable(EgressRefused):
    """The host has no address; ``transient`` when the resolver could not answer now (try again later)."""

    def __init__(self, transient: bool) -> None:
        super().__init__(NOT_PUBLIC, "unresolvable (temporary)" if transient else "unresolvable")
        self.transient = transient


@dataclass(frozen=True)
class Target:
    """A URL that passed the syntax rules, with its host taken apart."""

    url: str
    scheme: str
    host: str  # lower case, no trailing dot; an IPv6 literal without brackets
    port: int
    address: IPAddress | None  # the host itself, when it is an address literal

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def _refuse(reason: str, message: str) -> EgressRefused:
    return EgressRefused(message, reason)


def target(url: str) -> Target:
    """Parse ``url`` by the rules every outbound URL obeys; ``EgressRefused`` says which one it breaks."""
    # 1. Printable ASCII only: no CR/LF, space or look-alike character can reach a request line or a log.
    if len(url) > MAX_URL_LENGTH:
        raise _refuse("too long", f"URL is longer than {MAX_URL_LENGTH} characters")
    if not _PRINTABLE.fullmatch(url):
        raise _refuse(
            "characters",
            "URL must be printable ASCII without spaces or control characters (percent-encode the rest)",
        )
    # 2. An absolute http(s) URL with a host and no credentials.
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refuse("syntax", "URL is not a valid absolute URL") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _refuse("scheme", "URL must be an http or https URL")
    if parts.username is not None or parts.password is not None:
        raise _refuse("credentials", "URL must not carry credentials")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _refuse("host", "URL has no host")
    if port == 0:
        raise _refuse("port", "URL port must be from 1 to 65535")
    # 3. The host: an address literal in its plain form, or a host name.
    address = _literal(host)
    # 4. And a URL that the HTTP client takes as it is.
    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        raise _refuse("syntax", "URL is not a valid absolute URL") from None
    return Target(url, scheme, host, port or DEFAULT_PORTS[scheme], address)


def _literal(host: str) -> IPAddress | None:
    if "%" in host:
        raise _refuse("zone", "URL host must not be a scoped (zone) address")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # `2130706433`, `0x7f.1`, `127.1` and `0177.0.0.1` all connect to 127.0.0.1 through the C resolver; a name
    # whose last label is a number is no DNS name, so only an odd spelling of an address can look like that.
    if _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        raise _refuse("odd spelling", "URL host is an IP address in an unusual form; write it as a.b.c.d")
    if not _HOST_NAME.fullmatch(host):
        raise _refuse("host", "URL host is not a valid host name")
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback, whatever DNS says
        raise _refuse("loopback", NOT_PUBLIC)
    return None


def address_class(address: IPAddress) -> str | None:
    """The class of non-public address ``address`` belongs to (``"loopback"``, ...), or ``None`` if public."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        inner = address_class(embedded)
        return None if inner is None else f"{inner} (in IPv6)"
    return next((name for name, test in _CLASSES if test(address)), None)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches: IPv4-mapped, 6to4 or NAT64."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def resolve_system(host: str, port: int) -> list[IPAddress]:
    """The operating system's resolver (getaddrinfo): every address of ``host``, in its preferred order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise HostUnresolvable(transient=exc.errno == socket.EAI_AGAIN) from None
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """``FRAMECAST_WEBHOOK_ALLOW``: comma-separated CIDRs (a bare address is a /32 or /128)."""
    networks: list[IPNetwork] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"FRAMECAST_WEBHOOK_ALLOW: {item!r} is not an IP network (CIDR)") from None
    return tuple(networks)


@dataclass(frozen=True)
class EgressPolicy:
    """Public unicast addresses, plus the operator's ``allow`` ranges; ``resolver`` turns names into addresses."""

    allow: tuple[IPNetwork, ...] = ()
    resolver: Resolver = field(default=resolve_system, compare=False)

    @classmethod
    def from_setting(cls, allow: str, resolver: Resolver = resolve_system) -> EgressPolicy:
        return cls(parse_networks(allow), resolver)

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be connected to (its class), or ``None`` if it may."""
        embedded = _embedded_ipv4(address)
        if any(a in network for network in self.allow for a in (address, embedded) if a is not None):
            return None
        return address_class(address)

    def addresses(self, checked: Target) -> list[IPAddress]:
        """Every address of the target's host, each one allowed: what to connect to, in order."""
        if checked.address is not None:
            found: Sequence[IPAddress] = [checked.address]
        else:
            found = self.resolver(checked.host, checked.port)
            if not found:
                raise HostUnresolvable(transient=False)
        for address in found:
            reason = self.refusal(address)
            if reason is not None:
                # Any refused address refuses the name: the connection could be made to any of them.
                raise EgressRefused(NOT_PUBLIC, reason)
        return list(found)

    def admit(self, url: str) -> Target:
        """The check on submit. A resolver that cannot answer *now* does not refuse: connecting checks again."""
        checked = target(url)
        try:
            self.addresses(checked)
        except HostUnresolvable as exc:
            if not exc.transient:
                raise
        return checked


def pinned(checked: Target, address: IPAddress) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """URL, headers and httpx extensions that connect to ``address`` while naming the target's host: in the
    ``Host`` header and, over TLS, as the server name sent (SNI) and verified in the certificate."""
    url = httpx.URL(checked.url).copy_with(host=str(address))
    extensions: dict[str, Any] = {}
    if checked.scheme == "https" and checked.address is None:
        extensions["sni_hostname"] = checked.host
    return url, {"Host": checked.host_header}, extensions
