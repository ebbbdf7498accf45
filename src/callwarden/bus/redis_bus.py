"""The bus of several nodes: Redis pub/sub on one channel, with local delivery first.

**Echo rule.** `publish` delivers to this node's subscribers at once (so local readers never
depend on Redis, and see events in publication order even while Redis is away) and queues the
encoded event for Redis. Every message carries the publishing node's id; the listener drops
messages bearing its own id, so a node sees each of its own events exactly once and each
other node's event at most once (Redis pub/sub does not redeliver after a disconnection).

**Never blocking.** Publishing appends to a bounded outbound queue drained by a sender task
(pipelined, in batches). If Redis is slow or away and the queue fills, the oldest queued
events are dropped and counted (`dropped_outbound`); a batch Redis refuses is counted in
`send_failures` and the sender retries the next batch after `retry_delay`.

Node ids must be unique among the nodes sharing the channel. A node uses its one stable id
(the `node_id` setting, else the id kept in its data directory, which its recordings carry
too), so a node restarted on the same data directory is the same node on the bus: an event of
its earlier run that arrives late is its own echo. `new_node_id` makes an id for tools and
tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from callwarden.bus.codec import EventCodec, MalformedEvent
from callwarden.bus.event import Event, EventFilter
from callwarden.bus.subscription import DEFAULT_MAX_PENDING, Fanout, Subscription

__all__ = ["DEFAULT_CHANNEL", "RedisBus", "new_node_id"]

logger = logging.getLogger(__name__)

DEFAULT_CHANNEL = "callwarden:events"
_BATCH = 256


def new_node_id(name: str = "node") -> str:
    """`name` with a random suffix, unique among the nodes of an installation."""
    return f"{name}-{secrets.token_hex(4)}"


class BusNotStartedError(RuntimeError):
    """`publish` before `start()` or after `close()`."""


class RedisBus:
    """An `EventBus` shared by every node subscribed to `channel` on one Redis.

    `await start()` returns once the subscription is active on the server; `await close()`
    flushes what is queued (up to `flush_timeout` seconds) and stops. The Redis client is the
    caller's to close.
    """

    def __init__(
        self,
        client: Redis,
        codec: EventCodec,
        *,
        node_id: str,
        channel: str = DEFAULT_CHANNEL,
        max_outbound: int = 10_000,
        retry_delay: float = 1.0,
        start_timeout: float = 5.0,
        flush_timeout: float = 1.0,
    ) -> None:
        if not node_id:
            raise ValueError("node_id must not be empty")
        self._client = client
        self._codec = codec
        self.node_id = node_id
        self.channel = channel
        self._fanout = Fanout()
        self._outbound: deque[bytes] = deque()
        self._max_outbound = max_outbound
        self._retry_delay = retry_delay
        self._start_timeout = start_timeout
        self._flush_timeout = flush_timeout
        self._pubsub: PubSub | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._sender_wake: asyncio.Event = asyncio.Event()
        self._idle: asyncio.Event = asyncio.Event()
        self._idle.set()
        self._running = False
        self.published = 0
        self.sent = 0
        self.dropped_outbound = 0
        self.send_failures = 0
        self.received = 0
        self.echoes_ignored = 0
        self.malformed = 0

    @property
    def subscriber_count(self) -> int:
        return len(self._fanout)

    async def start(self) -> None:
        """Subscribe to the channel (waiting up to `start_timeout` for the server to confirm)
        and start the listener and the sender."""
        if self._running:
            return
        pubsub = self._client.pubsub()
        try:
            async with asyncio.timeout(self._start_timeout):
                await pubsub.subscribe(self.channel)
                while True:
                    message = await pubsub.get_message(timeout=self._start_timeout)
                    if message is not None and message["type"] == "subscribe":
                        break
        except BaseException:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        self._pubsub = pubsub
        self._running = True
        self._tasks = [
            asyncio.create_task(self._listen(pubsub), name=f"redis-bus-listen-{self.node_id}"),
            asyncio.create_task(self._send(), name=f"redis-bus-send-{self.node_id}"),
        ]
        logger.info("bus node %s subscribed to %s", self.node_id, self.channel)

    def publish(self, event: Event) -> None:
        if not self._running:
            raise BusNotStartedError("RedisBus.publish before start() or after close()")
        payload = self._codec.encode(event, node_id=self.node_id)
        self.published += 1
        self._fanout.deliver(event)
        if len(self._outbound) >= self._max_outbound:
            self._outbound.popleft()
            self.dropped_outbound += 1
        self._outbound.append(payload)
        self._idle.clear()
        self._sender_wake.set()

    def subscribe(
        self, event_filter: EventFilter | None = None, *, max_pending: int = DEFAULT_MAX_PENDING
    ) -> Subscription:
        return self._fanout.subscribe(event_filter, max_pending=max_pending)

    async def flush(self) -> None:
        """Wait until every queued event was handed to Redis (bound it with asyncio.timeout)."""
        await self._idle.wait()

    async def close(self) -> None:
        """Flush (for up to `flush_timeout` seconds), stop the tasks, close the subscriptions."""
        if self._running:
            try:
                async with asyncio.timeout(self._flush_timeout):
                    await self.flush()
            except TimeoutError:
                logger.warning(
                    "bus node %s closed with %s events unsent", self.node_id, len(self._outbound)
                )
        self._running = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None
        self._fanout.close_all()

    # -- background tasks ---------------------------------------------------------------------

    async def _send(self) -> None:
        while True:
            if not self._outbound:
                self._idle.set()
                self._sender_wake.clear()
                await self._sender_wake.wait()
                continue
            batch = [self._outbound.popleft() for _ in range(min(_BATCH, len(self._outbound)))]
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for payload in batch:
                        pipe.publish(self.channel, payload)
                    await pipe.execute()
                self.sent += len(batch)
            except (RedisError, OSError) as error:
                self.send_failures += len(batch)
                logger.warning(
                    "bus node %s could not publish %s events: %s", self.node_id, len(batch), error
                )
                await asyncio.sleep(self._retry_delay)

    async def _listen(self, pubsub: PubSub) -> None:
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            except (RedisError, OSError) as error:
                logger.warning("bus node %s lost its subscription: %s", self.node_id, error)
                await asyncio.sleep(self._retry_delay)
                continue
            if message is not None and message.get("type") == "message":
                self._receive(message)

    def _receive(self, message: dict[str, Any]) -> None:
        data = message.get("data")
        if not isinstance(data, bytes | str):
            self.malformed += 1
            return
        try:
            envelope = self._codec.decode(data)
        except MalformedEvent as error:
            self.malformed += 1
            logger.warning("bus node %s dropped a message: %s", self.node_id, error.message)
            return
        if envelope.node_id == self.node_id:
            self.echoes_ignored += 1
            return
        self.received += 1
        self._fanout.deliver(envelope.event)
