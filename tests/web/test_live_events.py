"""Bus events on the live WebSocket: who receives what (the policy, the self-service rule for
account events), numbers masked, new sign-in locations, slow consumers, closing, and two nodes
on one Redis.

Sockets are real application sessions (`WebSocketSession` drives the ASGI interface) over real
web sessions. To tell "not received" from "not yet received", each check publishes a marker
(an account event about the socket's own user, which reaches that socket whatever its grants)
and reads up to it: the bus keeps each subscriber's events in publication order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from bus.redis_support import connected_client, random_prefix, redis_url
from callwarden.acd.agent import AgentState
from callwarden.acd.events import AgentStateChanged
from callwarden.app import NODE_EVENT_TYPES, _start_event_bus
from callwarden.bus import Event, EventBus, EventCodec, InProcessBus
from callwarden.bus.redis_bus import RedisBus
from callwarden.config import ConfigError, Settings, load_settings
from callwarden.domain.ids import CallId, QueueId, TeamId, UserId
from callwarden.domain.permissions import Grant, Permission, Scope
from callwarden.domain.policy import Principal, ResourceKind
from callwarden.provisioning import Provisioner
from callwarden.security.account_events import AccountEvent, NewSignInLocation
from callwarden.security.password_policy import PasswordPolicy
from callwarden.store.database import Database
from callwarden.web.app import create_app
from callwarden.web.live.messages import LiveMessages
from callwarden.web.services import WebServices, WebSettings
from web.support import (
    ORIGIN,
    PASSWORD,
    REALM,
    T0,
    Env,
    FakeClock,
    WebSocketSession,
    build_env,
    cheap_hasher,
    sign_in,
    websocket_headers,
)

LIVE = "/api/v1/live"

MORE_PEOPLE: dict[str, Any] = {
    "roles": [{"name": "desk", "grants": ["calls.take:own", "live.view:own"]}],
    "users": [
        {"username": "southboss", "role": "supervisor", "team": "south", "supervises": ["south"]},
        {"username": "desker", "role": "desk", "team": "north"},
        {"username": "neighbour", "role": "operator", "team": "north-east"},
    ],
}


@dataclass(frozen=True, kw_only=True)
class Marker(AccountEvent):
    """Reaches the socket of `user_id` (the self-service rule); ends a read."""

    kind: ClassVar[str] = "test.marker"

    token: str


@dataclass(frozen=True, kw_only=True)
class ScreenPop(Event):
    """A test event with customers' numbers: one declared, one caught by the name rule."""

    kind: ClassVar[str] = "test.screen_pop"
    permission: ClassVar[Permission] = Permission.CALLS_TAKE
    resource_kind: ClassVar[ResourceKind] = ResourceKind.CALL
    customer_number_fields: ClassVar[frozenset[str]] = frozenset({"caller"})

    call_id: CallId
    caller: str
    callback_number: str | None = None
    note: str = ""


def add_people(database: Database) -> None:
    document = {
        **MORE_PEOPLE,
        "users": [{**user, "password": PASSWORD} for user in MORE_PEOPLE["users"]],
    }
    Provisioner(database.sessions, REALM, password_hasher=cheap_hasher()).apply_document(
        document, "more-people"
    )


@pytest.fixture
async def live_env(
    database: Database, clock: FakeClock, password_policy: PasswordPolicy
) -> AsyncIterator[Env]:
    """The web tests' organisation plus `southboss` (supervising `south`), `desker` (a role
    with `live.view:own`) and `neighbour` (an operator of `north-east`, nested in `north`);
    live queues of 8 events and principal rechecks every 50 ms."""
    add_people(database)
    settings = WebSettings(
        allowed_origins=frozenset({ORIGIN}), live_queue=8, live_recheck_seconds=0.05
    )
    running = build_env(database, clock, policy=password_policy, settings=settings)
    try:
        yield running
    finally:
        await running.close()


def team(env: Env, name: str) -> TeamId:
    return next(t.id for t in env.snapshot.teams if t.name == name)


def uid(env: Env, username: str) -> UserId:
    return env.user(username).id


def agent_state(
    env: Env, username: str, state: AgentState = AgentState.AVAILABLE
) -> AgentStateChanged:
    user = env.user(username)
    return AgentStateChanged(
        at=T0, team_id=user.team_id, user_id=user.id, state=state, previous=AgentState.OFFLINE
    )


class Socket:
    """One signed-in live connection: reads its messages up to a marker."""

    def __init__(self, env: Env, username: str, session: WebSocketSession) -> None:
        self.env = env
        self.username = username
        self.session = session

    async def read_to_marker(self, bus: EventBus | None = None) -> list[dict[str, Any]]:
        """The messages that arrive before a marker published now (other sockets' markers
        are left out)."""
        token = secrets.token_hex(4)
        (bus or self.env.services.bus).publish(
            Marker(at=T0, user_id=uid(self.env, self.username), token=token)
        )
        received: list[dict[str, Any]] = []
        while True:
            message = await self.session.receive_json()
            assert message is not None, f"closed: {self.session.close_code}"
            if message.get("kind") == Marker.kind:
                if message["fields"]["token"] == token:
                    return received
                continue
            received.append(message)

    async def events(self, bus: EventBus | None = None) -> list[tuple[str, UserId | None]]:
        """(kind, user_id) of the events received up to a marker."""
        messages = await self.read_to_marker(bus)
        assert all(m["type"] == "event" for m in messages), messages
        return [(m["kind"], m["fields"]["user_id"]) for m in messages]


async def open_socket(
    env: Env, username: str, socket_type: type[WebSocketSession] = WebSocketSession
) -> Socket:
    session = env.sign_in_directly(username)
    live = socket_type(env.app, LIVE, websocket_headers(session))
    assert await live.connect()
    assert await live.receive_json() == {"type": "welcome", "user_id": uid(env, username)}
    return Socket(env, username, live)


def everyones_states(env: Env) -> list[AgentStateChanged]:
    """One agent-state event for each of operator, colleague (north), neighbour (north-east),
    stranger (south), desker (north)."""
    names = ("operator", "colleague", "neighbour", "stranger", "desker")
    return [agent_state(env, name) for name in names]


# -- who receives what --------------------------------------------------------------------------


async def test_a_supervisor_receives_their_teams_agent_states_and_not_other_teams(
    live_env: Env,
) -> None:
    env = live_env
    assert isinstance(env.services.bus, InProcessBus)  # the default a WebServices gets
    supervisor = await open_socket(env, "supervisor")
    southboss = await open_socket(env, "southboss")
    for event in everyones_states(env):
        env.services.bus.publish(event)
    kind = AgentStateChanged.kind
    # north and the team nested below it; nothing of south
    assert await supervisor.events() == [
        (kind, uid(env, "operator")),
        (kind, uid(env, "colleague")),
        (kind, uid(env, "neighbour")),
        (kind, uid(env, "desker")),
    ]
    assert await southboss.events() == [(kind, uid(env, "stranger"))]
    message = (await _one_event(env, supervisor, agent_state(env, "operator", AgentState.BREAK)))[0]
    assert message == {
        "type": "event",
        "kind": "acd.agent_state_changed",
        "at": "2026-12-01T09:00:00+00:00",
        "fields": {
            "team_id": team(env, "north"),
            "user_id": uid(env, "operator"),
            "state": "break",
            "previous": "offline",
            "reason": None,
            "queue_ids": [],
            "call_id": None,
            "seconds_in_previous": 0.0,
            "idle_seconds": 0.0,
            "calls_taken": 0,
            "missed_offers": 0,
            "changed_by": None,
            "node_id": "",
        },
    }


async def _one_event(env: Env, socket: Socket, event: Event) -> list[dict[str, Any]]:
    env.services.bus.publish(event)
    return await socket.read_to_marker()


async def test_an_operator_receives_nothing_of_other_operators(live_env: Env) -> None:
    env = live_env
    operator = await open_socket(env, "operator")  # no live.view at all
    desker = await open_socket(env, "desker")  # live.view at OWN scope
    for event in everyones_states(env):
        env.services.bus.publish(event)
    assert await operator.events() == []
    assert await desker.events() == [(AgentStateChanged.kind, uid(env, "desker"))]


async def test_an_admin_with_live_view_all_receives_every_team(live_env: Env) -> None:
    env = live_env
    admin = await open_socket(env, "admin")
    states = everyones_states(env)
    for event in states:
        env.services.bus.publish(event)
    unassigned = AgentStateChanged(
        at=T0, user_id=UserId(999), state=AgentState.AVAILABLE, previous=AgentState.OFFLINE
    )
    env.services.bus.publish(unassigned)
    expected = [(AgentStateChanged.kind, event.user_id) for event in (*states, unassigned)]
    assert await admin.events() == expected


async def test_customer_numbers_are_masked_for_an_operator_and_whole_with_numbers_view(
    live_env: Env,
) -> None:
    env = live_env
    operator = await open_socket(env, "operator")
    supervisor = await open_socket(env, "supervisor")

    def pop(username: str) -> ScreenPop:
        user = env.user(username)
        return ScreenPop(
            at=T0,
            team_id=user.team_id,
            user_id=user.id,
            call_id=CallId(f"call-{username}"),
            caller="+49 30 1234567",
            callback_number="0171-9876543",
            note="+49 30 1234567 in a note is the sender's business",
        )

    for username in ("operator", "colleague", "supervisor"):
        env.services.bus.publish(pop(username))
    to_operator = await operator.read_to_marker()
    assert [m["fields"]["call_id"] for m in to_operator] == ["call-operator"]  # calls.take:own
    assert to_operator[0]["fields"]["caller"] == "+** ** ***4567"
    assert to_operator[0]["fields"]["callback_number"] == "****-***6543"
    assert to_operator[0]["fields"]["note"] == "+49 30 1234567 in a note is the sender's business"
    to_supervisor = await supervisor.read_to_marker()
    assert [m["fields"]["call_id"] for m in to_supervisor] == ["call-supervisor"]
    assert to_supervisor[0]["fields"]["caller"] == "+49 30 1234567"  # numbers.view:team
    assert to_supervisor[0]["fields"]["callback_number"] == "0171-9876543"


# -- new sign-in locations ----------------------------------------------------------------------


async def test_a_sign_in_from_a_new_device_reaches_the_user_and_their_supervisors_only(
    live_env: Env,
) -> None:
    env = live_env
    operator = await open_socket(env, "operator")
    watchers = {
        name: await open_socket(env, name)
        for name in ("supervisor", "deputy", "southboss", "colleague", "admin")
    }
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
    async with env.client(address="198.51.100.7") as browser:
        browser.headers["user-agent"] = firefox
        assert (await sign_in(browser, "operator")).json()["new_device"] is True
    fields = {
        "team_id": team(env, "north"),
        "user_id": uid(env, "operator"),
        "username": "operator",
        "address": "198.51.100.7",
        "user_agent": firefox,
        "new_address": True,
        "new_device": True,
    }
    expected = {
        "type": "event",
        "kind": "security.new_sign_in_location",
        "at": T0.isoformat(),
        "fields": fields,
    }
    assert await operator.read_to_marker() == [expected]
    assert await watchers["supervisor"].read_to_marker() == [expected]
    assert await watchers["deputy"].read_to_marker() == [expected]
    for name in ("southboss", "colleague", "admin"):  # another team; no agents.manage
        assert await watchers[name].read_to_marker() == [], name
    assert env.audit_details("auth.login.new_device") == [
        {"new_device": True, "new_address": True, "user_agent": firefox}
    ]
    # The same browser again: nothing new. Another browser from the same address: a new device.
    async with env.client(address="198.51.100.7") as browser:
        browser.headers["user-agent"] = firefox
        assert (await sign_in(browser, "operator")).json()["new_device"] is False
    assert await operator.read_to_marker() == []
    async with env.client(address="198.51.100.7") as browser:
        browser.headers["user-agent"] = "curl/8.14"
        await sign_in(browser, "operator")
    [again] = await watchers["supervisor"].read_to_marker()
    assert again["fields"] == {**fields, "user_agent": "curl/8.14", "new_address": False}


async def test_a_new_location_is_published_only_once_mfa_is_done(live_env: Env) -> None:
    env = live_env
    supervisor = await open_socket(env, "supervisor")
    deputy = await open_socket(env, "deputy")
    async with env.client(address="203.0.113.9") as browser:
        state = (await sign_in(browser, "supervisor")).json()
        assert state["mfa_complete"] is False  # a password alone shows nothing
    assert await supervisor.read_to_marker() == []
    assert await deputy.read_to_marker() == []


# -- slow consumers, closing --------------------------------------------------------------------


class StalledSocket(WebSocketSession):
    """A client that stops reading: sending an event to it waits (as uvicorn's send waits for
    a full socket buffer to drain) until `release` is set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.release = asyncio.Event()
        self.stuck = asyncio.Event()

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "websocket.send" and '"type":"event"' in message.get("text", ""):
            self.stuck.set()
            await self.release.wait()
        await super()._send(message)


async def test_a_slow_consumer_loses_its_oldest_events_and_blocks_nobody(live_env: Env) -> None:
    env = live_env
    bus = env.services.bus
    fast = await open_socket(env, "supervisor")
    slow = await open_socket(env, "deputy", StalledSocket)
    stalled = slow.session
    assert isinstance(stalled, StalledSocket)
    events = [
        dataclasses.replace(agent_state(env, "operator"), calls_taken=number)
        for number in range(101)
    ]
    bus.publish(events[0])
    await asyncio.wait_for(stalled.stuck.wait(), 5)  # the slow client stops reading here
    for event in events[1:]:
        bus.publish(event)
        await asyncio.sleep(0)  # the publisher goes on at once; readers run between events
    # The fast socket gets all 101, in order, while the slow one is stuck on the first.
    received = await fast.read_to_marker()
    assert [m["fields"]["calls_taken"] for m in received] == list(range(101))
    assert not stalled.release.is_set()
    # The slow one kept the newest 8 (live_queue) and is told how many it lost.
    stalled.release.set()
    first = await stalled.receive_json()
    notice = await stalled.receive_json()
    rest = [await stalled.receive_json() for _ in range(8)]
    assert first["fields"]["calls_taken"] == 0
    assert notice == {"type": "dropped", "count": 92, "total": 92}
    assert [m["fields"]["calls_taken"] for m in rest] == list(range(93, 101))
    assert await slow.events() == []  # and it carries on


async def test_the_socket_closes_when_the_session_ends_and_when_the_principal_changes(
    live_env: Env,
) -> None:
    env = live_env
    supervisor = await open_socket(env, "supervisor")
    deputy = await open_socket(env, "deputy")
    assert await supervisor.events() == []
    # The deputy moves to south and supervises nothing: their socket closes (4409); a new one
    # streams by the new principal.
    admin = env.sign_in_directly("admin")
    async with env.client(admin) as client:
        changed = await client.patch(
            f"/api/v1/users/{uid(env, 'deputy')}",
            json={"team_id": team(env, "south"), "supervises": []},
        )
        assert changed.status_code == 200, changed.text
    await deputy.session.wait_closed()
    assert (deputy.session.close_code, deputy.session.close_reason) == (4409, "principal_changed")
    again = await open_socket(env, "deputy")
    env.services.bus.publish(agent_state(env, "operator"))
    env.services.bus.publish(agent_state(env, "stranger"))
    assert await again.events() == [(AgentStateChanged.kind, uid(env, "stranger"))]
    # The supervisor signs out: closed at once with the reason, nothing more delivered.
    session = env.sign_in_directly("supervisor")
    live = WebSocketSession(env.app, LIVE, websocket_headers(session))
    assert await live.connect()
    await live.receive_json()
    async with env.client(session) as client:
        assert (await client.post("/api/v1/sessions/logout")).status_code == 204
    env.services.bus.publish(agent_state(env, "operator"))
    assert await live.receive_json() is None
    assert (live.close_code, live.close_reason) == (4401, "logout")
    await live.disconnect()
    assert await supervisor.events() == [(AgentStateChanged.kind, uid(env, "operator"))] * 2


async def test_all_sockets_share_one_bus_subscription_and_close_with_the_bus(
    live_env: Env,
) -> None:
    env = live_env
    bus = env.services.bus
    assert isinstance(bus, InProcessBus)
    sockets = [await open_socket(env, name) for name in ("supervisor", "southboss", "operator")]
    assert bus.subscriber_count == 1  # publishing costs the same however many sockets are open
    bus.publish(agent_state(env, "stranger"))
    assert await sockets[1].events() == [(AgentStateChanged.kind, uid(env, "stranger"))]
    await bus.close()
    for socket in sockets:
        await socket.session.wait_closed()
        assert (socket.session.close_code, socket.session.close_reason) == (1001, "shutdown")


# -- two nodes ----------------------------------------------------------------------------------


def with_bus(env: Env, bus: EventBus) -> Env:
    services: WebServices = dataclasses.replace(env.services, bus=bus)
    return dataclasses.replace(env, services=services, app=create_app(services))


@pytest.mark.redis
async def test_an_event_published_on_one_node_reaches_a_socket_on_another(
    live_env: Env,
) -> None:
    prefix = random_prefix()
    channel = f"{prefix}events"
    codec = EventCodec((*NODE_EVENT_TYPES, Marker))
    async with connected_client(prefix) as client_a, connected_client(prefix) as client_b:
        node_a = RedisBus(client_a, codec, node_id="node-a", channel=channel)
        node_b = RedisBus(client_b, codec, node_id="node-b", channel=channel)
        await node_a.start()
        await node_b.start()
        try:
            env_b = with_bus(live_env, node_b)
            supervisor = await open_socket(env_b, "supervisor")
            for event in everyones_states(env_b):
                node_a.publish(event)
            # the marker goes through node A too, so it arrives after A's earlier events
            assert await supervisor.events(node_a) == [
                (AgentStateChanged.kind, uid(env_b, name))
                for name in ("operator", "colleague", "neighbour", "desker")
            ]
            node_a.publish(
                NewSignInLocation(
                    at=T0,
                    user_id=uid(env_b, "colleague"),
                    team_id=team(env_b, "north"),
                    username="colleague",
                    address="192.0.2.1",
                    new_address=True,
                    new_device=True,
                )
            )
            assert await supervisor.events(node_a) == [
                (NewSignInLocation.kind, uid(env_b, "colleague"))
            ]
            assert node_b.received >= 6 and node_b.malformed == 0
        finally:
            await node_a.close()
            await node_b.close()


def test_a_message_carries_every_field_as_json_and_is_encoded_once() -> None:
    """Enum, id, tuple and date-time values, as the live message carries them (no socket)."""
    event = AgentStateChanged(
        at=T0,
        team_id=TeamId(3),
        user_id=UserId(7),
        state=AgentState.BREAK,
        previous=AgentState.AVAILABLE,
        reason="lunch",
        queue_ids=(QueueId(2), QueueId(5)),
        call_id=CallId("c1"),
        seconds_in_previous=12.5,
    )
    principal = Principal(
        user_id=UserId(1),
        team_id=TeamId(3),
        supervised_team_ids=frozenset(),
        grants=frozenset({Grant(Permission.LIVE_VIEW, Scope.TEAM)}),
    )
    messages = LiveMessages(cache_size=2)
    text = messages.text(event, principal)
    assert messages.text(event, principal) is text  # encoded once
    assert json.loads(text)["fields"] == {
        "team_id": 3,
        "user_id": 7,
        "state": "break",
        "previous": "available",
        "reason": "lunch",
        "queue_ids": [2, 5],
        "call_id": "c1",
        "seconds_in_previous": 12.5,
        "idle_seconds": 0.0,
        "calls_taken": 0,
        "missed_offers": 0,
        "changed_by": None,
        "node_id": "",
    }


# -- composition --------------------------------------------------------------------------------


@pytest.mark.redis
async def test_the_node_builds_an_in_process_bus_unless_redis_url_is_set(tmp_path: Path) -> None:
    alone, no_client = await _start_event_bus(Settings())
    assert isinstance(alone, InProcessBus) and no_client is None
    settings = load_settings(
        environ={"CALLWARDEN_REDIS_URL": redis_url(), "CALLWARDEN_NODE_ID": "live-test-node"}
    )
    shared, client = await _start_event_bus(settings)
    assert client is not None
    try:
        assert isinstance(shared, RedisBus) and shared.node_id == "live-test-node"
        assert shared.subscriber_count == 0  # started: subscribed on the server
    finally:
        await shared.close()
        await client.aclose()
    unnamed, client = await _start_event_bus(Settings(redis_url=redis_url(), data_dir=tmp_path))
    assert client is not None
    try:  # the id kept in the data directory (tests/bus/test_stable_node_id.py)
        assert isinstance(unnamed, RedisBus) and unnamed.node_id.startswith("node-")
    finally:
        await unnamed.close()
        await client.aclose()


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("CALLWARDEN_REDIS_URL", "http://127.0.0.1:6379", "redis_url: Value error, must be a"),
        ("CALLWARDEN_NODE_ID", "node one", "node_id: Value error, must be 1 to 64"),
        ("CALLWARDEN_NODE_ID", "n" * 65, "node_id: Value error, must be 1 to 64"),
    ],
)
def test_bus_settings_are_checked(variable: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_settings(environ={variable: value})


def test_an_empty_redis_url_means_the_in_process_bus() -> None:
    settings = load_settings(environ={"CALLWARDEN_REDIS_URL": "", "CALLWARDEN_NODE_ID": ""})
    assert (settings.redis_url, settings.node_id) == (None, None)
