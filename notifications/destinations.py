"""Where a Telegram or Discord channel may post: never inside our own network (SSRF).

A URL passes when it is https, its host is Discord's, Telegram's API host (NOTIFY_TELEGRAM_API) or
listed in NOTIFY_ALLOWED_HOSTS, and every address the host resolves to is a public one. It is checked
when a channel is saved and again before each send, because DNS can change in between. The send then
connects to the addresses checked here, never resolving the name again: a second lookup could answer
an inside address (DNS rebinding).

Refusals name the host, never the URL: a Discord webhook URL's path is its secret.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

# Reference: https://discord.com/developers/docs/resources/webhook#execute-webhook
DISCORD_HOSTS = frozenset({
    "discord.com", "ptb.discord.com", "canary.discord.com",
    "discordapp.com", "ptb.discordapp.com", "canary.discordapp.com",
})
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DestinationRefused(Exception):
    """The URL may not be posted to; str() says why in plain words and holds no secret."""


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    target: str  # path and query, as the request line carries them
    addresses: tuple[str, ...]  # checked: connect to these, not to the host name


def destination_check(url: str) -> Destination:
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme != "https" and not (parts.scheme == "http" and settings.NOTIFY_ALLOW_PRIVATE_ADDRESSES):
        raise DestinationRefused("only https:// addresses are allowed")
    if host not in allowed_hosts():
        raise DestinationRefused(f"{host or 'the address'} is not Discord's or Telegram's host, nor in NOTIFY_ALLOWED_HOSTS")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise DestinationRefused(f"{host}: the port is not a number from 0 to 65535") from None
    addresses = resolved(host, port)
    for address in addresses:
        kind = inside_kind(address)
        if kind and not settings.NOTIFY_ALLOW_PRIVATE_ADDRESSES:
            raise DestinationRefused(f"{host} resolves to {address}, {kind}: refused")
        if parts.scheme == "http" and not kind:  # plain http only to the tests' local receiver
            raise DestinationRefused("only https:// addresses are allowed")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(parts.scheme, host, port, target, addresses)


def allowed_hosts() -> set[str]:
    telegram = (urlsplit(settings.NOTIFY_TELEGRAM_API).hostname or "").rstrip(".")
    return {*DISCORD_HOSTS, telegram, *settings.NOTIFY_ALLOWED_HOSTS} - {""}


def resolved(host: str, port: int) -> tuple[str, ...]:
    """Every address the name has now, each of which the caller checks."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise DestinationRefused(f"{host} could not be resolved ({error})") from None
    # dict: the resolver's order (its preference) without repeats.
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in found))
    if not addresses:
        raise DestinationRefused(f"{host} could not be resolved (no address)")
    return addresses


def inside_kind(address: str) -> str:
    """What makes the address one we must not post to ("a loopback address"…), or "" for a public one."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone ("%eth0") says nothing here
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:  # ::ffff:127.0.0.1 is 127.0.0.1
        ip = ip.ipv4_mapped
    kinds = [
        ("a loopback address", ip.is_loopback), ("a link-local address", ip.is_link_local),
        ("an unspecified address", ip.is_unspecified), ("a multicast address", ip.is_multicast),
        ("a reserved address", ip.is_reserved), ("a private address", ip.is_private),
        # The rest of what is not routed on the internet (shared 100.64/10, documentation ranges…).
        ("not a public address", not ip.is_global),
    ]
    return next((kind for kind, matches in kinds if matches), "")
