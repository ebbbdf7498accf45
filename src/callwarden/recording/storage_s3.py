"""Sealed recordings in an S3-compatible object store (AWS S3, MinIO, Ceph RGW...), for several
nodes sharing one catalogue.

What is stored, under the configured ``s3://bucket/prefix``, for a storage key ``K``:

- ``prefix/K``: the sealed file (ciphertext), once the recording is closed;
- ``prefix/K.manifest.json`` and ``.manifest.sig``: its signed manifest (digests, no key);
- ``prefix/K.parts/<offset>`` while recording: the whole records appended since the last part,
  starting at byte ``offset`` of the file (16 digits).

No key is ever stored in the bucket: data keys live wrapped in the catalogue (database), the
key-encryption keys in the node's key ring or a KMS.

Writing: the sealed writer (in the media worker) appends to a local *spool* file
(``<data_dir>/recording-spool/K``: ciphertext only, like every file the writer makes); a
shipping thread of this node puts the whole records appended since the last part as a new part
object every ``ship_interval`` (0.25 s by default; the writer syncs a batch every 1.2 s, so
about one PUT per 1.2 s per recording). An S3 multipart upload is not used for this: its parts
are invisible until the upload completes and must be 5 MiB but the last, so a node that dies
would leave nothing readable. On ``commit`` the whole file goes up as one object (multipart
by boto3 above 8 MiB) with its manifest, then the parts and the spool copy are deleted.

After a crash ``reclaim`` rebuilds the file: the node's own spool copy if it survived (it holds
everything the writer synced), else the contiguous parts from byte 0 (everything shipped before
the crash), which crash recovery cuts, seals and commits like a local file.

Reading (``local_copy``): after a HEAD (a deleted object is never served), the object and its
manifest come from the node's cache of ciphertext copies (``<spool>/.cache``, private files,
the least recently used evicted beyond ``cache_bytes``, 1 GiB by default), fetched on a miss
(ranged GETs in parallel by boto3's transfer manager for large objects). boto3 is
synchronous: every method here blocks; callers run them off the event loop (as they do for a
local file).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from callwarden.recording.container import LENGTH_BYTES, FileHeader, FormatError, record_length
from callwarden.recording.manifest import manifest_paths
from callwarden.recording.models import require_storage_key
from callwarden.recording.storage import (
    DIRECTORY_MODE,
    MANIFEST_SUFFIXES,
    LocalStorage,
    path_under,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

logger = logging.getLogger(__name__)

PARTS_SUFFIX = ".parts/"
_OFFSET_DIGITS = 16
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")
_MULTIPART = TransferConfig(multipart_threshold=8 * 1024 * 1024, max_concurrency=4)


SPOOL_DIRECTORY = "recording-spool"
CACHE_DIRECTORY = ".cache"  # in the spool: read copies of stored objects (ciphertext)
_ETAG = re.compile(r"[^A-Za-z0-9-]")


class StorageConfigError(ValueError):
    """The recording storage setting is wrong, or the store cannot be used with it."""


def open_recording_storage(
    data_dir: Path,
    url: str | None,
    *,
    endpoint: str | None = None,
    region: str | None = None,
) -> LocalStorage | S3Storage:
    """The configured backend: `<data_dir>/recordings` when `url` is unset, else the object
    store at `url` (checked now: :class:`StorageConfigError` says what is wrong), spooling in
    `<data_dir>/recording-spool`. Blocking."""
    if url is None:
        return LocalStorage.for_data_dir(data_dir)
    return S3Storage.connect(url, data_dir / SPOOL_DIRECTORY, endpoint=endpoint, region=region)


@dataclass(frozen=True, slots=True)
class S3Location:
    """``s3://bucket/prefix``: a bucket and a key prefix (empty, or ending with ``/``)."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parts = urlsplit(url)
        if parts.scheme != "s3":
            raise StorageConfigError(
                f"recording storage {url!r}: expected s3://bucket/prefix (or unset for the data"
                " directory)"
            )
        if parts.query or parts.fragment or parts.username or parts.password or parts.port:
            raise StorageConfigError(
                f"recording storage {url!r}: only s3://bucket/prefix, no credentials, port,"
                " query or fragment (credentials come from the environment or the AWS"
                " credentials file; the endpoint from recording_s3_endpoint)"
            )
        bucket = parts.netloc
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise StorageConfigError(
                f"recording storage {url!r}: {bucket!r} is not a valid bucket name (3-63"
                " lower-case letters, digits, dots and hyphens)"
            )
        segments = [segment for segment in parts.path.split("/") if segment]
        for segment in segments:
            if segment in {".", ".."} or not _PREFIX_SEGMENT.fullmatch(segment):
                raise StorageConfigError(
                    f"recording storage {url!r}: prefix segment {segment!r} must be letters,"
                    " digits, dots, hyphens and underscores (not . or ..)"
                )
        prefix = "".join(f"{segment}/" for segment in segments)
        if len(prefix) > 512:
            raise StorageConfigError(f"recording storage {url!r}: the prefix is too long")
        return cls(bucket, prefix)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def check_endpoint(endpoint: str) -> str:
    """An endpoint URL: http(s)://host[:port], nothing else."""
    parts = urlsplit(endpoint)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise StorageConfigError(
            f"recording_s3_endpoint {endpoint!r}: expected http(s)://host[:port]"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise StorageConfigError(
            f"recording_s3_endpoint {endpoint!r}: no credentials, query or fragment in it"
        )
    return endpoint


def s3_client(endpoint: str | None, region: str | None) -> S3Client:
    """A boto3 S3 client: credentials from the standard chain (``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SHARED_CREDENTIALS_FILE`` / ``~/.aws/credentials``, an
    instance role); path-style addressing for a custom endpoint (MinIO and most others)."""
    config = Config(
        connect_timeout=5,
        read_timeout=30,
        retries={"max_attempts": 4, "mode": "standard"},
        s3={"addressing_style": "path" if endpoint else "auto"},
    )
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=None if endpoint is None else check_endpoint(endpoint),
        region_name=region,
        config=config,
    )


@dataclass(slots=True)
class _Shipment:
    """One recording being written: its spool file and how much of it is in the store."""

    storage_key: str
    path: Path
    registered: float
    shipped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False
    failing_since: float | None = None


class S3Storage:
    """Sealed files in an S3-compatible bucket; see the module docstring."""

    def __init__(
        self,
        client: S3Client,
        location: S3Location,
        spool: Path,
        *,
        ship_interval: float = 0.25,
        ship_workers: int = 8,
        cache_bytes: int = 1 << 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ship_interval <= 0:
            raise ValueError("ship_interval must be positive")
        self._client = client
        self.location = location
        self.spool = spool
        self._ship_interval = ship_interval
        self._clock = clock
        self._shipments: dict[str, _Shipment] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(ship_workers, thread_name_prefix="recording-ship")
        self._cache = spool / CACHE_DIRECTORY
        self._cache_bytes = cache_bytes
        self._cache_lock = threading.Lock()
        self._pinned: Counter[Path] = Counter()

    @classmethod
    def connect(
        cls,
        url: str,
        spool: Path,
        *,
        endpoint: str | None = None,
        region: str | None = None,
        ship_interval: float = 0.25,
    ) -> S3Storage:
        """Parse the setting, build the client and check the bucket answers (clear errors)."""
        location = S3Location.parse(url)
        storage = cls(s3_client(endpoint, region), location, spool, ship_interval=ship_interval)
        storage.check()
        return storage

    def check(self) -> None:
        """Raise :class:`StorageConfigError` unless the bucket exists and these credentials
        may use it."""
        bucket = self.location.bucket
        try:
            self._client.head_bucket(Bucket=bucket)
        except NoCredentialsError:
            raise StorageConfigError(
                f"{self.location}: no S3 credentials (set AWS_ACCESS_KEY_ID and"
                " AWS_SECRET_ACCESS_KEY, or AWS_SHARED_CREDENTIALS_FILE)"
            ) from None
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in {"404", "NoSuchBucket", "NotFound"}:
                message = f"bucket {bucket!r} does not exist"
            elif code in {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
                message = f"access to bucket {bucket!r} denied: check the credentials ({code})"
            else:
                message = f"the store refused HEAD of bucket {bucket!r} ({code or error})"
            raise StorageConfigError(f"{self.location}: {message}") from None
        except BotoCoreError as error:
            raise StorageConfigError(f"{self.location}: store unreachable: {error}") from None

    # --- names --------------------------------------------------------------------------------

    def object_key(self, storage_key: str) -> str:
        return self.location.prefix + require_storage_key(storage_key)

    def _parts_prefix(self, storage_key: str) -> str:
        return self.object_key(storage_key) + PARTS_SUFFIX

    def _spool_path(self, storage_key: str) -> Path:
        return path_under(self.spool, storage_key)

    # --- writing ------------------------------------------------------------------------------

    def path_for_writing(self, storage_key: str) -> Path:
        """The local spool path; what the writer appends there is shipped from now on."""
        path = self._spool_path(storage_key)
        self.spool.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
        path.parent.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
        with self._lock:
            if storage_key not in self._shipments:
                self._shipments[storage_key] = _Shipment(storage_key, path, self._clock())
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._ship_loop, name="recording-shipper", daemon=True
                )
                self._thread.start()
        return path

    def commit(self, storage_key: str) -> None:
        """Store the closed file and its manifest as objects, then drop the parts and the
        spool copy. Raises ``OSError`` if the store refuses: the spool copy and the parts
        stay (crash recovery of the row, or a later ``commit``, finishes)."""
        try:
            self._commit(storage_key)
        except (ClientError, BotoCoreError) as error:
            raise OSError(errno.EIO, f"object store {self.location}: {error}") from error

    def _commit(self, storage_key: str) -> None:
        self._stop_shipping(storage_key)
        path = self._spool_path(storage_key)
        key = self.object_key(storage_key)
        for suffix, local in zip(MANIFEST_SUFFIXES, manifest_paths(path), strict=True):
            if local.is_file():
                self._client.put_object(
                    Bucket=self.location.bucket, Key=key + suffix, Body=local.read_bytes()
                )
        self._client.upload_file(str(path), self.location.bucket, key, Config=_MULTIPART)
        self._delete_parts(storage_key)
        for local in (path, *manifest_paths(path)):
            local.unlink(missing_ok=True)
        logger.info("recording %s stored in %s", storage_key, self.location)

    def finish_pending(self) -> list[str]:
        """Commit what a refused `commit` left in the spool: a closed file with its manifest
        beside it, not being written. The storage keys stored (crash recovery calls this at
        start-up; what the store still refuses stays for the next start)."""
        stored: list[str] = []
        if not self.spool.is_dir():
            return stored
        for signature in sorted(self.spool.rglob(f"*{MANIFEST_SUFFIXES[1]}")):
            path = signature.with_name(signature.name.removesuffix(MANIFEST_SUFFIXES[1]))
            key = path.relative_to(self.spool).as_posix()
            if any(part.startswith(".") for part in Path(key).parts) or not path.is_file():
                continue  # the read cache, or a manifest without its file
            with self._lock:
                if key in self._shipments:
                    continue  # being written or sealed right now
            try:
                self.commit(key)
            except OSError as error:
                logger.error("recording %s: still not stored: %s", key, error)
                continue
            stored.append(key)
        if stored:
            logger.warning(
                "stored %d recordings left in the spool by a refused commit", len(stored)
            )
        return stored

    def reclaim(self, storage_key: str) -> Path | None:
        """The spool copy if this node still has it, else the stored object, else the
        contiguous parts from byte 0, in the spool; None if the store has nothing."""
        self._stop_shipping(storage_key)
        path = self._spool_path(storage_key)
        if path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
        bucket, key = self.location.bucket, self.object_key(storage_key)
        if self._object_exists(key):
            self._client.download_file(bucket, key, str(path), Config=_MULTIPART)
            return path
        parts = self._parts(storage_key)
        if not parts:
            return None
        expected = 0
        with _private_file(path) as file:
            for offset, part_key in parts:
                if offset != expected:  # a part missing: what follows cannot be placed
                    logger.warning(
                        "recording %s: parts stop at byte %d (next at %d)",
                        storage_key,
                        expected,
                        offset,
                    )
                    break
                body = self._client.get_object(Bucket=bucket, Key=part_key)["Body"].read()
                file.write(body)
                expected += len(body)
        logger.info("recording %s: %d bytes rebuilt from its parts", storage_key, expected)
        return path

    def _stop_shipping(self, storage_key: str) -> None:
        """No more parts for this key (waits for a part in flight; the spool file, the whole
        of what was written, is what `commit` stores)."""
        with self._lock:
            shipment = self._shipments.pop(storage_key, None)
        if shipment is None:
            return
        with shipment.lock:
            shipment.closed = True

    # --- shipping -----------------------------------------------------------------------------

    def _ship_loop(self) -> None:
        while not self._stop.wait(self._ship_interval):
            self.ship_now()

    def ship_now(self) -> None:
        """Ship every open recording's new whole records once (the thread calls it)."""
        with self._lock:
            shipments = list(self._shipments.values())
        if shipments:
            list(self._pool.map(self._ship, shipments))

    def _ship(self, shipment: _Shipment) -> None:
        if not shipment.lock.acquire(blocking=False):
            return  # the previous part of this recording is still going up
        try:
            if shipment.closed:
                return
            try:
                data = _read_from(shipment.path, shipment.shipped)
            except FileNotFoundError:
                if self._clock() - shipment.registered > 60:  # the recording never started
                    with self._lock:
                        self._shipments.pop(shipment.storage_key, None)
                return
            end = whole_records_end(data, at_start=shipment.shipped == 0)
            if end == 0:
                return
            part_key = f"{self._parts_prefix(shipment.storage_key)}{shipment.shipped:016d}"
            try:
                self._client.put_object(Bucket=self.location.bucket, Key=part_key, Body=data[:end])
            except (ClientError, BotoCoreError) as error:
                if shipment.failing_since is None:
                    shipment.failing_since = self._clock()
                    logger.error(
                        "recording %s: shipping to %s failed (will retry): %s",
                        shipment.storage_key,
                        self.location,
                        error,
                    )
                return
            if shipment.failing_since is not None:
                logger.warning("recording %s: shipping again", shipment.storage_key)
                shipment.failing_since = None
            shipment.shipped += end
        finally:
            shipment.lock.release()

    def shipped_bytes(self, storage_key: str) -> int | None:
        """How much of a recording being written is in the store (None if not shipping)."""
        with self._lock:
            shipment = self._shipments.get(storage_key)
        return None if shipment is None else shipment.shipped

    # --- reading ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def local_copy(self, storage_key: str) -> Iterator[Path]:
        """The stored object (and its manifest), from the node's ciphertext cache.

        Every call asks the store first (HEAD): a deleted object is never served from the cache,
        and a cached copy is used only while its ETag is the object's. A miss fetches the object
        and its manifest into the cache (private files); the least recently used copies go when
        the cache outgrows `cache_bytes`. Playback asks once per HTTP range request, so a
        recording being listened to is fetched once, not once per request."""
        bucket, key = self.location.bucket, self.object_key(storage_key)
        try:
            etag = str(self._client.head_object(Bucket=bucket, Key=key)["ETag"]).strip('"')
        except ClientError as error:
            if _missing(error):
                raise FileNotFoundError(
                    f"no sealed object for storage key {storage_key!r}"
                ) from None
            raise
        name = Path(storage_key).name
        entry = self._cache / f"{_key_hash(key)}-{_ETAG.sub('_', etag)[:80]}"
        with self._cache_lock:  # in use: not evicted (the reader reopens the file per read)
            self._pinned[entry] += 1
        try:
            if not (entry / name).is_file():
                self._fill(entry, name, key)
            os.utime(entry)  # the least recently used go first
            yield entry / name
        finally:
            with self._cache_lock:
                self._pinned[entry] -= 1
                if not self._pinned[entry]:
                    del self._pinned[entry]

    def _fill(self, entry: Path, name: str, key: str) -> None:
        """Fetch the object and its manifest into a new cache entry (atomic: a directory
        renamed into place; a concurrent fill of the same entry is harmless)."""
        bucket = self.location.bucket
        self._cache.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
        filling = Path(tempfile.mkdtemp(prefix=".fill-", dir=self._cache))
        try:
            path = filling / name
            try:
                self._client.download_file(bucket, key, str(path), Config=_MULTIPART)
            except ClientError as error:
                if _missing(error):
                    raise FileNotFoundError(f"no sealed object {key!r}") from None
                raise
            os.chmod(path, 0o600)
            for suffix, local in zip(MANIFEST_SUFFIXES, manifest_paths(path), strict=True):
                try:
                    body = self._client.get_object(Bucket=bucket, Key=key + suffix)["Body"].read()
                except ClientError as error:
                    if _missing(error):
                        continue  # no manifest: the reader authenticates the whole file
                    raise
                with _private_file(local) as file:
                    file.write(body)
            with contextlib.suppress(OSError):  # another thread filled it first: keep that one
                os.rename(filling, entry)
        finally:
            shutil.rmtree(filling, ignore_errors=True)
        self._evict()

    def _evict(self) -> None:
        """Remove the least recently used entries beyond `cache_bytes`."""
        with self._cache_lock:
            entries = []
            for entry in self._cache.iterdir():
                if entry.name.startswith("."):
                    continue
                try:
                    size = sum(item.stat().st_size for item in entry.iterdir())
                    entries.append((entry.stat().st_mtime, size, entry))
                except FileNotFoundError:
                    continue
            total = sum(size for _, size, _ in entries)
            for _, size, entry in sorted(entries):
                if total <= self._cache_bytes:
                    break
                if entry in self._pinned:  # being read
                    continue
                shutil.rmtree(entry, ignore_errors=True)
                total -= size

    def _forget_cached(self, key: str) -> None:
        """Drop this node's cached copies of an object (it is being deleted)."""
        if self._cache.is_dir():
            for entry in self._cache.glob(f"{_key_hash(key)}-*"):
                shutil.rmtree(entry, ignore_errors=True)

    def exists(self, storage_key: str) -> bool:
        return (
            self._spool_path(storage_key).is_file()
            or self._object_exists(self.object_key(storage_key))
            or bool(self._parts(storage_key, limit=1))
        )

    def delete(self, storage_key: str) -> bool:
        """Delete the object, its manifest, its parts and any spool copy (idempotent)."""
        self._stop_shipping(storage_key)
        key = self.object_key(storage_key)
        existed = self._object_exists(key)
        for name in (key, *(key + suffix for suffix in MANIFEST_SUFFIXES)):
            self._client.delete_object(Bucket=self.location.bucket, Key=name)
        existed = self._delete_parts(storage_key) or existed
        self._forget_cached(key)
        path = self._spool_path(storage_key)
        for local in (path, *manifest_paths(path)):
            with contextlib.suppress(FileNotFoundError):
                local.unlink()
                existed = True
        if existed:
            logger.info("deleted sealed recording object %s", key)
        return existed

    def close(self) -> None:
        """Stop the shipping thread (after one last round) and its pool."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.ship_now()
        self._pool.shutdown(wait=True)

    # --- helpers ------------------------------------------------------------------------------

    def _object_exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.location.bucket, Key=key)
        except ClientError as error:
            if _missing(error):
                return False
            raise
        return True

    def _parts(self, storage_key: str, limit: int | None = None) -> list[tuple[int, str]]:
        """(offset, object key) of the stored parts, by offset."""
        prefix = self._parts_prefix(storage_key)
        found: list[tuple[int, str]] = []
        paginator = self._client.get_paginator("list_objects_v2")
        pages = (
            paginator.paginate(Bucket=self.location.bucket, Prefix=prefix)
            if limit is None
            else paginator.paginate(
                Bucket=self.location.bucket, Prefix=prefix, PaginationConfig={"MaxItems": limit}
            )
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = item.get("Key", "")
                offset = name[len(prefix) :]
                if len(offset) == _OFFSET_DIGITS and offset.isdigit():
                    found.append((int(offset), name))
        return sorted(found)

    def _delete_parts(self, storage_key: str) -> bool:
        names = [name for _, name in self._parts(storage_key)]
        for start in range(0, len(names), 1000):  # DeleteObjects takes 1000 keys at most
            batch = names[start : start + 1000]
            self._client.delete_objects(
                Bucket=self.location.bucket,
                Delete={"Objects": [{"Key": name} for name in batch], "Quiet": True},
            )
        return bool(names)


def whole_records_end(data: bytes, *, at_start: bool) -> int:
    """How many leading bytes of `data` are whole container pieces (the header when
    `at_start`, then records): what may be shipped without cutting a record."""
    position = 0
    if at_start:
        prefix_size = FileHeader.prefix_size()
        if len(data) < prefix_size:
            return 0
        try:
            position = prefix_size + FileHeader.body_size(data[:prefix_size])
        except FormatError:
            return 0  # not (yet) a sealed file: nothing to ship
        if position > len(data):
            return 0
    while position + LENGTH_BYTES <= len(data):
        end = position + LENGTH_BYTES + record_length(data[position : position + LENGTH_BYTES])
        if end > len(data):
            break
        position = end
    return position


def _read_from(path: Path, offset: int) -> bytes:
    with path.open("rb") as file:
        file.seek(offset)
        return file.read()


@contextlib.contextmanager
def _private_file(path: Path) -> Iterator[BinaryIO]:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        yield file
        file.flush()
        os.fsync(file.fileno())


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _missing(error: ClientError) -> bool:
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound"}
