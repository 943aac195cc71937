"""The egress policy: which URLs the server may connect to for a user. Every name goes through FakeDNS."""

from __future__ import annotations

import ipaddress

import pytest

from framecast.egress import EgressPolicy, HostUnresolvable, pinned, target
from framecast.errors import ConfigError, EgressRefused
from tests.fake_dns import FakeDNS


def refusal(url: str, answers: tuple[str, ...] = (), allow: str = "") -> str:
    policy = EgressPolicy.from_setting(allow, FakeDNS({"hooks.example.com": answers}))
    with pytest.raises(EgressRefused) as refused:
        policy.admit(url)
    return refused.value.reason


# One case per class of address, each reached the way an attacker would name it: through a name (the
# resolver's answer) and, where it has one, as a literal.
@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.45.6.7", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.10", "private"),
        ("100.64.0.1", "shared"),  # carrier-grade NAT
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("fd00::1", "unique-local"),
        ("fec0::1", "site-local"),
        ("192.0.2.1", "private"),  # documentation (TEST-NET-1)
        ("::ffff:127.0.0.1", "loopback (in IPv6)"),  # IPv4-mapped
        ("::ffff:10.0.0.1", "private (in IPv6)"),
        ("64:ff9b::a9fe:a9fe", "metadata (in IPv6)"),  # NAT64 of 169.254.169.254
        ("2002:c0a8:0101::1", "private (in IPv6)"),  # 6to4 of 192.168.1.1
        ("169.254.169.254", "metadata"),  # AWS, GCP, Azure, OpenStack
        ("fd00:ec2::254", "metadata"),  # AWS over IPv6
        ("168.63.129.16", "metadata"),  # Azure's wire server: a public address
        ("100.100.100.200", "metadata"),  # Alibaba
    ],
)
def test_an_address_of_each_non_public_class_is_refused_by_name_and_as_a_literal(
    address: str, reason: str
) -> None:
    assert refusal("https://hooks.example.com/hook", (address,)) == reason
    literal = f"[{address}]" if ":" in address else address
    assert refusal(f"http://{literal}:8080/hook") == reason


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1", "0177.0.0.1", "0x7f000001", "10", "1.2.3"])
def test_odd_spellings_of_addresses_are_refused_before_any_resolver_is_asked(host: str) -> None:
    dns = FakeDNS({host: ("93.184.215.14",)})  # even a resolver that would call it public

    with pytest.raises(EgressRefused) as refused:
        EgressPolicy(resolver=dns).admit(f"http://{host}/hook")

    assert refused.value.reason == "odd spelling"
    assert dns.asked == []


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "localhost.", "api.localhost"])
def test_localhost_is_refused_whatever_dns_says(host: str) -> None:
    dns = FakeDNS({host.lower().rstrip("."): ("93.184.215.14",)})

    with pytest.raises(EgressRefused) as refused:
        EgressPolicy(resolver=dns).admit(f"http://{host}:8000/hook")

    assert refused.value.reason == "loopback"


def test_a_name_with_one_private_address_among_public_ones_is_refused() -> None:
    assert refusal("https://hooks.example.com/", ("93.184.215.14", "10.0.0.7")) == "private"


def test_public_addresses_pass_and_are_returned_in_the_resolvers_order() -> None:
    dns = FakeDNS({"hooks.example.com": ("2606:2800:21f:cb07::1", "93.184.215.14", "::ffff:93.184.215.15")})
    policy = EgressPolicy(resolver=dns)

    checked = policy.admit("https://hooks.example.com/fal?token=1")

    assert policy.addresses(checked) == [
        ipaddress.ip_address(a) for a in ("2606:2800:21f:cb07::1", "93.184.215.14", "::ffff:93.184.215.15")
    ]


def test_the_allow_setting_admits_its_ranges_and_nothing_else() -> None:
    policy = EgressPolicy.from_setting(" 127.0.0.1/32, 10.8.0.0/16,::1 ", FakeDNS({}))

    for url in ("http://127.0.0.1:9000/", "http://10.8.4.2/", "http://[::1]/", "http://[::ffff:127.0.0.1]/"):
        policy.admit(url)
    for url in ("http://127.0.0.2/", "http://10.9.0.1/", "http://169.254.169.254/"):
        with pytest.raises(EgressRefused):
            policy.admit(url)


def test_a_bad_range_in_the_allow_setting_stops_the_server_with_one_sentence() -> None:
    with pytest.raises(ConfigError, match="'10.0.0.0/33' is not an IP network"):
        EgressPolicy.from_setting("127.0.0.1/32,10.0.0.0/33")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/a\r\nHost: evil", "characters"),
        ("http://hooks.example.com/a b", "characters"),
        ("http://hooks.example.com/\x00", "characters"),
        ("http://hooks.example.com/\u2028", "characters"),
        ("https://hooks.example.com/" + "a" * 2100, "too long"),
        ("ftp://hooks.example.com/", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("/relative/hook", "scheme"),
        ("http:///hook", "host"),
        ("http://user:pass@hooks.example.com/", "credentials"),
        ("http://[::1/hook", "syntax"),
        ("http://hooks.example.com:65536/", "syntax"),
        ("http://hooks.example.com:0/", "port"),
        ("http://[fe80::1%25eth0]/", "zone"),
        ("http://hooks_$.example.com/", "host"),
    ],
)
def test_a_url_that_breaks_a_syntax_rule_is_refused_with_the_rule(url: str, reason: str) -> None:
    with pytest.raises(EgressRefused) as refused:
        target(url)

    assert refused.value.reason == reason


def test_a_name_that_does_not_resolve_is_refused_like_a_private_one() -> None:
    # The same message: whether a name exists on the server's (perhaps internal) DNS is not told.
    policy = EgressPolicy(resolver=FakeDNS({"internal.corp": ("10.0.0.5",)}))
    messages = set()
    for url in ("http://nowhere.example/", "http://internal.corp/"):
        with pytest.raises(EgressRefused) as refused:
            policy.admit(url)
        messages.add(str(refused.value))

    assert len(messages) == 1


def test_a_resolver_that_cannot_answer_now_does_not_refuse_a_submit() -> None:
    def flaky(host: str, port: int) -> list:
        raise HostUnresolvable(transient=True)

    policy = EgressPolicy(resolver=flaky)

    assert policy.admit("https://hooks.example.com/").host == "hooks.example.com"  # checked again on connect
    with pytest.raises(HostUnresolvable):
        policy.addresses(target("https://hooks.example.com/"))


def test_a_pinned_request_goes_to_the_address_and_names_the_host() -> None:
    checked = target("https://Hooks.Example.com:8443/fal?x=1")

    url, headers, extensions = pinned(checked, ipaddress.ip_address("2606:2800:21f:cb07::1"))

    assert str(url) == "https://[2606:2800:21f:cb07::1]:8443/fal?x=1"
    assert headers == {"Host": "hooks.example.com:8443"}
    assert extensions == {"sni_hostname": "hooks.example.com"}
    assert pinned(target("http://hooks.example.com/"), ipaddress.ip_address("93.184.215.14"))[1:] == (
        {"Host": "hooks.example.com"},
        {},
    )
