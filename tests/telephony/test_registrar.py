"""The registrar (RFC 3261 10.3) on a fake clock: golden REGISTER requests in, responses and
bindings out."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from callwarden.sip.addressing import Destination, Source
from callwarden.sip.clock import FakeClock
from callwarden.sip.errors import SipParseError
from callwarden.sip.message import SipRequest, SipResponse
from callwarden.telephony.registrar import Registrar, RegistrarSettings

RequestFactory = Callable[..., SipRequest]
SETTINGS = RegistrarSettings(default_expires=1800, max_expires=7200, min_expires=60, max_bindings=3)
NAT_UDP = Source("UDP", "203.0.113.5", 40000, "192.0.2.1", 5060)
LAN_UDP = Source("UDP", "192.168.1.20", 5060, "192.168.1.2", 5060)


def lan_udp(host: str) -> Source:
    """A phone on the node's LAN, sending from its own address."""
    return Source("UDP", host, 40000, "192.168.1.2", 5060)


DESK = "<sip:alice@192.168.1.20:5060>"
SOFTPHONE = "<sip:alice@192.168.1.21:5062;transport=udp>"
MOBILE = "<sip:alice@192.168.1.22:5064>"
RPORT_VIA = "SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-1;rport"
PLAIN_VIA = "SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-1"


@pytest.fixture
def registrar(clock: FakeClock) -> Registrar:
    return Registrar(clock, SETTINGS)


class Phone:
    """Sends REGISTERs for one Call-ID with increasing CSeq, as a phone does (RFC 3261 10.2)."""

    def __init__(
        self,
        registrar: Registrar,
        build_request: RequestFactory,
        *,
        call_id: str = "reg-1@192.168.1.20",
        source: Source = NAT_UDP,
        via: str = RPORT_VIA,
        user: str = "alice",
        to_user: str | None = None,
    ) -> None:
        self.registrar = registrar
        self.build_request = build_request
        self.call_id = call_id
        self.source = source
        self.via = via
        self.user = user
        self.to_user = to_user
        self.cseq = 0

    def register(
        self,
        *contacts: str,
        expires: str | None = None,
        cseq: int | None = None,
        authenticated_as: str = "alice",
    ) -> SipResponse:
        self.cseq = self.cseq + 1 if cseq is None else cseq
        extra = [f"Contact: {contact}" for contact in contacts]
        if expires is not None:
            extra.append(f"Expires: {expires}")
        request = self.build_request(
            "REGISTER",
            user=self.user,
            to_user=self.to_user,
            call_id=self.call_id,
            cseq=self.cseq,
            via=self.via,
            extra=tuple(extra),
        )
        return self.registrar.register(request, self.source, authenticated_as)


@pytest.fixture
def phone(registrar: Registrar, build_request: RequestFactory) -> Phone:
    return Phone(registrar, build_request)


def contacts_of(registrar: Registrar, username: str = "alice") -> list[str]:
    return [str(binding.contact) for binding in registrar.bindings(username)]


def remaining(registrar: Registrar, clock: FakeClock, username: str = "alice") -> list[float]:
    return [binding.expires_at - clock.now() for binding in registrar.bindings(username)]


# --------------------------------------------------------------------------- expiry values


@pytest.mark.parametrize(
    ("contact", "expires_header", "granted"),
    [
        (f"{DESK};expires=120", None, 120),  # the Contact parameter
        (DESK, "300", 300),  # the Expires header
        (DESK, None, 1800),  # neither: the registrar's default
        (f"{DESK};expires=600", "300", 600),  # the parameter wins over the header
        (f"{DESK};expires=60", None, 60),  # exactly the minimum
        (f"{DESK};expires=7200", None, 7200),  # exactly the maximum
        (f"{DESK};expires=100000", None, 7200),  # clamped to max_expires
        (DESK, "100000", 7200),
        (f"{DESK};expires=4294967295", None, 7200),
        (f"{DESK};expires=0120", None, 120),
    ],
)
def test_register_grants_an_expiry(
    registrar: Registrar,
    phone: Phone,
    clock: FakeClock,
    contact: str,
    expires_header: str | None,
    granted: int,
) -> None:
    response = phone.register(contact, expires=expires_header)
    assert response.status == 200
    assert response.headers.get_all("Contact") == [f"{DESK};expires={granted}"]
    assert contacts_of(registrar) == ["sip:alice@192.168.1.20:5060"]
    assert remaining(registrar, clock) == [granted]


@pytest.mark.parametrize(
    ("contact", "expires_header"),
    [
        (f"{DESK};expires=59", None),
        (f"{DESK};expires=1", None),
        (DESK, "30"),
        (f"{DESK};expires=30", "3600"),
    ],
)
def test_too_brief_an_interval_gets_423_with_min_expires(
    registrar: Registrar, phone: Phone, contact: str, expires_header: str | None
) -> None:
    response = phone.register(contact, expires=expires_header)
    assert (response.status, response.reason) == (423, "Interval Too Brief")
    assert response.headers.get_all("Min-Expires") == ["60"]
    assert registrar.bindings("alice") == []


@pytest.mark.parametrize(
    "contact",
    [
        f"{DESK};expires=0x10",
        f"{DESK};expires=-1",
        f"{DESK};expires=1.5",
        f"{DESK};expires=99999999999",
    ],
)
def test_a_malformed_expires_parameter_is_400(
    registrar: Registrar, phone: Phone, contact: str
) -> None:
    response = phone.register(contact)
    assert response.status == 400
    assert registrar.bindings("alice") == []


@pytest.mark.parametrize("expires", ["abc", "-1", "4294967296", "1, 2"])
def test_a_malformed_expires_header_is_400(
    registrar: Registrar, phone: Phone, expires: str
) -> None:
    response = phone.register(DESK, expires=expires)
    assert response.status == 400
    assert registrar.bindings("alice") == []


def test_a_too_brief_interval_leaves_existing_bindings_alone(
    registrar: Registrar, phone: Phone, clock: FakeClock
) -> None:
    assert phone.register(DESK, expires="600").status == 200
    assert phone.register(DESK, MOBILE, expires="30").status == 423
    assert contacts_of(registrar) == ["sip:alice@192.168.1.20:5060"]
    assert remaining(registrar, clock) == [600]


# --------------------------------------------------------------------------- several phones


def test_several_phones_per_user(
    registrar: Registrar, build_request: RequestFactory, clock: FakeClock
) -> None:
    desk = Phone(registrar, build_request, call_id="desk@192.168.1.20")
    soft = Phone(registrar, build_request, call_id="soft@192.168.1.21")
    assert desk.register(DESK, expires="600").status == 200
    clock.advance(100)
    response = soft.register(SOFTPHONE, expires="300")
    assert response.status == 200
    # the 200 lists every current binding with what is left of it (RFC 3261 10.3 step 8)
    assert response.headers.get_all("Contact") == [
        f"{DESK};expires=500",
        f"{SOFTPHONE};expires=300",
    ]
    assert contacts_of(registrar) == [
        "sip:alice@192.168.1.20:5060",
        "sip:alice@192.168.1.21:5062;transport=udp",
    ]
    assert registrar.binding_count() == 2


def test_one_register_can_carry_several_contacts(registrar: Registrar, phone: Phone) -> None:
    response = phone.register(f"{DESK};expires=600", f"{MOBILE};expires=120", expires="300")
    assert response.status == 200
    assert response.headers.get_all("Contact") == [
        f"{DESK};expires=600",
        f"{MOBILE};expires=120",
    ]


def test_users_bindings_are_separate(registrar: Registrar, build_request: RequestFactory) -> None:
    alice = Phone(registrar, build_request, call_id="a@192.168.1.20")
    bob = Phone(registrar, build_request, call_id="b@192.168.1.30", user="bob")
    assert alice.register(DESK).status == 200
    bob_response = bob.register("<sip:bob@192.168.1.30>", authenticated_as="bob")
    assert bob_response.headers.get_all("Contact") == ["<sip:bob@192.168.1.30>;expires=1800"]
    assert contacts_of(registrar, "alice") == ["sip:alice@192.168.1.20:5060"]
    assert contacts_of(registrar, "bob") == ["sip:bob@192.168.1.30"]
    assert registrar.remove_user("bob") == 1
    assert registrar.bindings("bob") == []
    assert registrar.binding_count() == 1


def test_a_register_without_contact_queries_the_bindings(
    registrar: Registrar, phone: Phone, clock: FakeClock
) -> None:
    phone.register(DESK, expires="600")
    clock.advance(60)
    response = phone.register()
    assert response.status == 200
    assert response.headers.get_all("Contact") == [f"{DESK};expires=540"]
    assert remaining(registrar, clock) == [540]


def test_max_bindings_refuses_one_more_phone(
    registrar: Registrar, phone: Phone, clock: FakeClock
) -> None:
    phone.register(DESK, SOFTPHONE, MOBILE, expires="600")
    clock.advance(10)
    response = phone.register("<sip:alice@192.168.1.23>", expires="600")
    assert response.status == 403
    assert len(registrar.bindings("alice")) == 3
    assert remaining(registrar, clock) == [590, 590, 590]  # untouched, not refreshed
    # refreshing the existing three is fine
    assert phone.register(DESK, SOFTPHONE, MOBILE, expires="600").status == 200
    assert remaining(registrar, clock) == [600, 600, 600]


def test_max_bindings_in_a_single_register(registrar: Registrar, phone: Phone) -> None:
    response = phone.register(DESK, SOFTPHONE, MOBILE, "<sip:alice@192.168.1.23>")
    assert response.status == 403
    assert registrar.bindings("alice") == []


def test_removing_one_frees_a_place(registrar: Registrar, phone: Phone) -> None:
    phone.register(DESK, SOFTPHONE, MOBILE)
    other = "<sip:alice@192.168.1.23>"
    response = phone.register(f"{MOBILE};expires=0", other)
    assert response.status == 200
    assert sorted(contacts_of(registrar)) == [
        "sip:alice@192.168.1.20:5060",
        "sip:alice@192.168.1.21:5062;transport=udp",
        "sip:alice@192.168.1.23",
    ]


# --------------------------------------------------------------------------- refresh and expiry


def test_re_register_refreshes(registrar: Registrar, phone: Phone, clock: FakeClock) -> None:
    phone.register(DESK, expires="600")
    clock.advance(500)
    response = phone.register(DESK, expires="600")
    assert response.headers.get_all("Contact") == [f"{DESK};expires=600"]
    clock.advance(200)  # 700 s after the first REGISTER: alive thanks to the refresh
    assert contacts_of(registrar) == ["sip:alice@192.168.1.20:5060"]
    clock.advance(399)
    assert registrar.binding_count() == 1
    clock.advance(1)
    assert registrar.bindings("alice") == []


def test_bindings_expire_on_the_clock(
    registrar: Registrar, build_request: RequestFactory, clock: FakeClock
) -> None:
    desk = Phone(registrar, build_request, call_id="desk@192.168.1.20")
    soft = Phone(registrar, build_request, call_id="soft@192.168.1.21")
    desk.register(DESK, expires="120")
    soft.register(SOFTPHONE, expires="300")
    clock.advance(119.5)
    assert registrar.binding_count() == 2
    clock.advance(0.5)
    assert contacts_of(registrar) == ["sip:alice@192.168.1.21:5062;transport=udp"]
    response = desk.register()
    assert response.headers.get_all("Contact") == [f"{SOFTPHONE};expires=180"]
    clock.advance(180)
    assert registrar.bindings("alice") == []
    assert registrar.binding_count() == 0


# --------------------------------------------------------------------------- un-registering


def test_unregister_one_contact(registrar: Registrar, phone: Phone) -> None:
    phone.register(DESK, MOBILE, expires="600")
    response = phone.register(f"{MOBILE};expires=0")
    assert response.status == 200
    assert response.headers.get_all("Contact") == [f"{DESK};expires=600"]
    assert contacts_of(registrar) == ["sip:alice@192.168.1.20:5060"]


def test_unregister_with_the_expires_header(registrar: Registrar, phone: Phone) -> None:
    phone.register(DESK, MOBILE, expires="600")
    response = phone.register(MOBILE, DESK, expires="0")
    assert response.status == 200
    assert response.headers.get_all("Contact") == []
    assert registrar.bindings("alice") == []
    assert registrar.binding_count() == 0


def test_unregister_an_unknown_contact_is_harmless(registrar: Registrar, phone: Phone) -> None:
    phone.register(DESK, expires="600")
    response = phone.register(f"{MOBILE};expires=0")
    assert response.status == 200
    assert response.headers.get_all("Contact") == [f"{DESK};expires=600"]


def test_unregister_all_with_the_wildcard(
    registrar: Registrar, build_request: RequestFactory
) -> None:
    desk = Phone(registrar, build_request, call_id="desk@192.168.1.20")
    soft = Phone(registrar, build_request, call_id="soft@192.168.1.21")
    desk.register(DESK)
    soft.register(SOFTPHONE, MOBILE)
    response = desk.register("*", expires="0")
    assert response.status == 200
    assert response.headers.get_all("Contact") == []
    assert registrar.bindings("alice") == []


@pytest.mark.parametrize("expires", [None, "60", "3600"])
def test_the_wildcard_needs_expires_zero(
    registrar: Registrar, phone: Phone, expires: str | None
) -> None:
    phone.register(DESK)
    response = phone.register("*", expires=expires)
    assert response.status == 400
    assert contacts_of(registrar) == ["sip:alice@192.168.1.20:5060"]


def test_a_late_wildcard_of_the_same_call_id_does_not_remove_newer_bindings(
    registrar: Registrar, build_request: RequestFactory
) -> None:
    """RFC 3261 10.3 step 6: a binding with the request's Call-ID is removed only when the
    request's CSeq is higher; otherwise the request fails (an old un-REGISTER arriving late)."""
    desk = Phone(registrar, build_request, call_id="desk@192.168.1.20")
    soft = Phone(registrar, build_request, call_id="soft@192.168.1.21")
    desk.register(DESK, cseq=7)
    soft.register(SOFTPHONE, cseq=1)
    assert desk.register("*", expires="0", cseq=6).status == 500
    assert desk.register("*", expires="0", cseq=7).status == 500
    assert sorted(contacts_of(registrar)) == [
        "sip:alice@192.168.1.20:5060",
        "sip:alice@192.168.1.21:5062;transport=udp",
    ]
    # a higher CSeq removes them all, whatever Call-ID the other bindings have
    assert desk.register("*", expires="0", cseq=8).status == 200
    assert registrar.bindings("alice") == []


def test_the_wildcard_combined_with_another_contact_does_not_parse(
    build_request: RequestFactory,
) -> None:
    with pytest.raises(SipParseError, match="wildcard Contact combined with other values"):
        build_request("REGISTER", extra=("Contact: *", f"Contact: {DESK}", "Expires: 0"))


# --------------------------------------------------------------------------- refusals


def test_registering_someone_elses_address_is_403(
    registrar: Registrar, build_request: RequestFactory
) -> None:
    mallory = Phone(registrar, build_request, to_user="bob")
    response = mallory.register(DESK, authenticated_as="alice")
    assert (response.status, response.reason) == (403, "Forbidden")
    assert registrar.bindings("bob") == []
    assert registrar.bindings("alice") == []


@pytest.mark.parametrize("cseq", [5, 4, 1])
def test_cseq_out_of_order_for_the_same_call_id_is_500(
    registrar: Registrar, phone: Phone, clock: FakeClock, cseq: int
) -> None:
    assert phone.register(DESK, expires="600", cseq=5).status == 200
    clock.advance(100)
    response = phone.register(DESK, expires="600", cseq=cseq)
    assert response.status == 500
    assert remaining(registrar, clock) == [500]  # not refreshed


def test_cseq_out_of_order_cannot_unregister(registrar: Registrar, phone: Phone) -> None:
    phone.register(DESK, expires="600", cseq=5)
    assert phone.register(f"{DESK};expires=0", cseq=4).status == 500
    assert contacts_of(registrar) == ["sip:alice@192.168.1.20:5060"]


def test_a_new_call_id_may_start_again_at_any_cseq(
    registrar: Registrar, build_request: RequestFactory, clock: FakeClock
) -> None:
    before = Phone(registrar, build_request, call_id="before-reboot@192.168.1.20")
    after = Phone(registrar, build_request, call_id="after-reboot@192.168.1.20")
    before.register(DESK, expires="600", cseq=100)
    clock.advance(100)
    assert after.register(DESK, expires="600", cseq=1).status == 200
    assert remaining(registrar, clock) == [600]
    assert [binding.call_id for binding in registrar.bindings("alice")] == [
        "after-reboot@192.168.1.20"
    ]


@pytest.mark.parametrize(
    "contact",
    ["<tel:+15551234567>", "<mailto:alice@example.com>", "<urn:uuid:f81d4fae-7dec>"],
)
def test_a_contact_that_is_not_sip_is_400(registrar: Registrar, phone: Phone, contact: str) -> None:
    response = phone.register(DESK, contact)
    assert response.status == 400
    assert registrar.bindings("alice") == []  # the valid contact was not bound either


# --------------------------------------------------------------------------- destinations


@pytest.mark.parametrize(
    ("source", "via", "contact", "destination"),
    [
        # UDP with rport: the NAT's public address and port, whatever the Contact says
        (NAT_UDP, RPORT_VIA, DESK, Destination("UDP", "203.0.113.5", 40000)),
        (NAT_UDP, RPORT_VIA, SOFTPHONE, Destination("UDP", "203.0.113.5", 40000)),
        # UDP without rport: the Contact (RFC 3263 static: host, port, transport)...
        (LAN_UDP, PLAIN_VIA, DESK, Destination("UDP", "192.168.1.20", 5060)),
        (lan_udp("192.168.1.21"), PLAIN_VIA, SOFTPHONE, Destination("UDP", "192.168.1.21", 5062)),
        (
            lan_udp("192.168.1.24"),
            PLAIN_VIA,
            "<sip:alice@192.168.1.24>",
            Destination("UDP", "192.168.1.24", 5060),
        ),
        (
            lan_udp("192.168.1.25"),
            PLAIN_VIA,
            "<sip:alice@192.168.1.25;transport=tcp>",
            Destination("TCP", "192.168.1.25", 5060),
        ),
        (NAT_UDP, PLAIN_VIA, "<sip:alice@198.51.100.9>", Destination("UDP", "198.51.100.9", 5060)),
        # ...but a private Contact from elsewhere is a NAT that did not say so (T14): the source
        (NAT_UDP, PLAIN_VIA, DESK, Destination("UDP", "203.0.113.5", 40000)),
        (
            NAT_UDP,
            PLAIN_VIA,
            "<sip:alice@192.168.1.25;transport=tcp>",
            Destination("UDP", "203.0.113.5", 40000),
        ),
        # TCP and TLS: the connection the REGISTER came on
        (
            Source("TCP", "203.0.113.5", 51000, "192.0.2.1", 5060, connection_id=7),
            "SIP/2.0/TCP 192.168.1.20:5060;branch=z9hG4bK-1",
            DESK,
            Destination("TCP", "203.0.113.5", 51000, 7),
        ),
        (
            Source("TLS", "203.0.113.6", 52000, "192.0.2.1", 5061, connection_id=8),
            "SIP/2.0/TLS 192.168.1.20:5061;branch=z9hG4bK-1;rport",
            "<sips:alice@192.168.1.20:5061>",
            Destination("TLS", "203.0.113.6", 52000, 8),
        ),
    ],
)
def test_the_binding_remembers_where_to_reach_the_phone(
    registrar: Registrar,
    build_request: RequestFactory,
    source: Source,
    via: str,
    contact: str,
    destination: Destination,
) -> None:
    phone = Phone(registrar, build_request, source=source, via=via)
    assert phone.register(contact).status == 200
    [binding] = registrar.bindings("alice")
    assert binding.destination == destination


def test_a_refresh_from_a_new_nat_port_moves_the_destination(
    registrar: Registrar, build_request: RequestFactory
) -> None:
    phone = Phone(registrar, build_request)
    phone.register(DESK)
    phone.source = Source("UDP", "203.0.113.5", 40777, "192.0.2.1", 5060)
    phone.register(DESK)
    [binding] = registrar.bindings("alice")
    assert binding.destination == Destination("UDP", "203.0.113.5", 40777)


# --------------------------------------------------------------------------- response shape


def test_every_registrar_response_carries_a_to_tag(
    registrar: Registrar, build_request: RequestFactory
) -> None:
    """RFC 3261 8.2.6.2: a UAS adds a To tag to every response but 100 when the request's To
    has none; a registrar is a UAS (RFC 3261 10.3, e.g. F2 in 24.1)."""
    responses = [
        Phone(registrar, build_request).register(DESK),
        Phone(registrar, build_request, call_id="x").register(f"{DESK};expires=10"),
        Phone(registrar, build_request, call_id="y").register("<tel:+15551234567>"),
        Phone(registrar, build_request, to_user="bob").register(DESK),
        Phone(registrar, build_request).register(DESK, cseq=1),
    ]
    assert [response.status for response in responses] == [200, 423, 400, 403, 500]
    for response in responses:
        assert response.to.tag, response.status


def test_retain_users_drops_every_phone_of_users_no_longer_allowed(
    registrar: Registrar, build_request: RequestFactory
) -> None:
    alice = Phone(registrar, build_request)
    bob = Phone(registrar, build_request, call_id="reg-bob@192.168.1.21", user="bob")
    assert alice.register("<sip:alice@192.168.1.20:5062>").status == 200
    assert bob.register("<sip:bob@192.168.1.21:5062>", authenticated_as="bob").status == 200

    dropped = registrar.retain_users(lambda username: username != "bob")

    assert dropped == ["bob"]
    assert registrar.bindings("bob") == []
    assert len(registrar.bindings("alice")) == 1
