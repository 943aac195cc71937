"""A DNS that tests control: the egress policy's network boundary (egress.Resolver), so no test asks a real one."""

from __future__ import annotations

import ipaddress

from framecast.egress import HostUnresolvable, IPAddress

# Public addresses for the names tests use; none is ever connected to.
PUBLIC = {"example.com": ("93.184.215.14",), "hooks.example.com": ("93.184.215.15", "2606:2800:21f:cb07::1")}


class FakeDNS:
    """Answers from a table the test sets (and may change, as a rebinding attacker's DNS does); a name not in
    the table does not exist. ``asked`` records each question."""

    def __init__(self, answers: dict[str, tuple[str, ...]] | None = None) -> None:
        self.answers: dict[str, list[IPAddress]] = {}
        self.asked: list[str] = []
        for host, addresses in (PUBLIC if answers is None else answers).items():
            self.set(host, *addresses)

    def set(self, host: str, *addresses: str) -> None:
        self.answers[host] = [ipaddress.ip_address(a) for a in addresses]

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        if host not in self.answers:
            raise HostUnresolvable(transient=False)
        return list(self.answers[host])
