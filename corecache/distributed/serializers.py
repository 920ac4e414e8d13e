"""Serializers: how values become the bytes a store keeps.

A serializer is any object with ``dumps(value) -> bytes`` and
``loads(data: bytes) -> value``.  ``dumps`` raises TypeError for a value it
cannot represent, so a bad value fails at the call site and never becomes a
corrupt entry; ``loads`` raises :class:`CorruptValue` for bytes it refuses
(the stores treat that as a miss and log it).

* ``"json"`` (the default): compact JSON, UTF-8.  Tuples come back as lists
  and dict keys as strings, as JSON has it.
* ``"pickle"``: only with a secret key.  Every value is signed with
  HMAC-SHA256 over the namespace, the key and the expiry it was stored
  with, and the signature is checked, in constant time, before a single
  byte is unpickled: an unsigned or tampered value, a value copied under
  another key or namespace, or one read after its signed expiry is a miss.
* ``"raw"``: bytes in, bytes out.

A serializer whose ``binds`` attribute is true (the pickle one) is called
as ``dumps(value, where, expires)`` and ``loads(data, where, check_expiry)``
by the stores, where ``where`` is ``(namespace, key)`` and ``expires`` the
Unix time in milliseconds the value expires at (0: never).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import pickle
import struct
import time
from typing import Any, Sequence, Tuple, Union

from ..exceptions import CoreCacheError

__all__ = ["CorruptValue", "JsonSerializer", "PickleSerializer", "RawSerializer",
           "resolve_serializer"]

log = logging.getLogger("corecache.distributed")


class CorruptValue(CoreCacheError, ValueError):
    """Stored bytes that the serializer refuses (unsigned, tampered, or not
    decodable).  The stores turn it into a miss and log it."""


class JsonSerializer:
    """Compact JSON (no spaces), UTF-8 encoded."""

    name = "json"

    def __init__(self, *, default: Any = None) -> None:
        self._encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                                         default=default)
        self._decoder = json.JSONDecoder()
        self._one_shot = self._make_one_shot()

    def _make_one_shot(self) -> Any:
        """The C encoder that JSONEncoder.encode builds on every call, built
        once (rebuilt after a failure, which may leave its markers dirty)."""
        make = getattr(json.encoder, "c_make_encoder", None)
        if make is None:   # no C accelerator: the plain encoder
            return None
        e = self._encoder
        return make({}, e.default, json.encoder.encode_basestring, None, e.key_separator,
                    e.item_separator, e.sort_keys, e.skipkeys, e.allow_nan)

    def dumps(self, value: Any) -> bytes:
        try:
            if self._one_shot is not None:
                return "".join(self._one_shot(value, 0)).encode("utf-8")
            return self._encoder.encode(value).encode("utf-8")
        except (TypeError, ValueError, RecursionError) as exc:
            self._one_shot = self._make_one_shot()
            raise TypeError(f"cannot serialize {_short(value)} as JSON: {exc}") from None

    def loads(self, data: bytes) -> Any:
        try:
            return self._decoder.decode(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise CorruptValue(f"not JSON: {exc}") from None

    def __repr__(self) -> str:
        return "JsonSerializer()"


class RawSerializer:
    """bytes (or bytearray, memoryview) in, bytes out."""

    name = "raw"

    def dumps(self, value: Any) -> bytes:
        if isinstance(value, bytes):
            return value
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        raise TypeError(f"the raw serializer stores bytes, got {_short(value)}")

    def loads(self, data: bytes) -> bytes:
        return bytes(data)

    def __repr__(self) -> str:
        return "RawSerializer()"


_MAGIC = b"ccp2"           # format marker of a signed pickle bound to its key
_SIG = hashlib.sha256().digest_size
_HEAD = len(_MAGIC) + _SIG + 8   # magic, signature, expiry (ms, big-endian)
_EXPIRES = struct.Struct(">Q")
# a value read this long after its signed expiry is refused: the writer's
# and the reader's clocks may differ by this much
EXPIRY_GRACE_MS = 1000
_NOWHERE = ("", "")


def _as_key(key: Any, name: str) -> bytes:
    if isinstance(key, str):
        key = key.encode("utf-8")
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError(f"{name} must be bytes or str, got {type(key).__name__}")
    if len(key) < 16:
        raise ValueError(f"{name} must be at least 16 bytes long, got {len(key)}")
    return bytes(key)


def _context(where: Tuple[str, str], expires: bytes) -> bytes:
    """What a signature covers besides the payload: the namespace and the
    key (length-prefixed, so that no two pairs give the same bytes) and the
    expiry."""
    ns, key = (w.encode("utf-8", "surrogatepass") for w in where)
    return (_MAGIC + len(ns).to_bytes(4, "big") + ns + len(key).to_bytes(4, "big") + key
            + expires)


class PickleSerializer:
    """Pickle, signed with HMAC-SHA256 and bound to where it is stored.

    Stored form: ``b"ccp2" + signature + expiry + payload``, where expiry
    is the Unix time in milliseconds (8 bytes, 0: never) and the signature
    is HMAC-SHA256(key, namespace, key, expiry, payload).  It is verified
    with :func:`hmac.compare_digest` before unpickling, so only bytes a
    holder of the secret produced *for this namespace and key* are ever
    unpickled, and not after they expired (plus ``EXPIRY_GRACE_MS`` for
    clock skew).

    :param secret_key: the signing key (bytes or str, 16 bytes or more), or a
        sequence of keys: the first signs, every one verifies (key rotation).
    :param protocol: the pickle protocol (default 5, readable by Python 3.8+).
    """

    name = "pickle"
    binds = True

    def __init__(self, secret_key: Union[bytes, str, Sequence[Union[bytes, str]]],
                 *, protocol: int = 5) -> None:
        if isinstance(secret_key, (bytes, bytearray, str)):
            keys = [_as_key(secret_key, "secret_key")]
        else:
            try:
                keys = [_as_key(k, "secret_key") for k in secret_key]
            except TypeError:
                raise TypeError(f"secret_key must be bytes, str or a sequence of them, "
                                f"got {type(secret_key).__name__}") from None
            if not keys:
                raise ValueError("secret_key must hold at least one key, got an empty sequence")
        if isinstance(protocol, bool) or not isinstance(protocol, int):
            raise TypeError(f"protocol must be an int, got {protocol!r}")
        if not 2 <= protocol <= pickle.HIGHEST_PROTOCOL:
            raise ValueError(f"protocol must be 2..{pickle.HIGHEST_PROTOCOL}, got {protocol!r}")
        self._keys = keys
        self._protocol = protocol

    def _sign(self, key: bytes, context: bytes, payload: bytes) -> bytes:
        mac = hmac.new(key, context, hashlib.sha256)
        mac.update(payload)
        return mac.digest()

    def dumps(self, value: Any, where: Tuple[str, str] = _NOWHERE, expires: int = 0) -> bytes:
        """The signed pickle of value, for key ``where = (namespace, key)``,
        expiring at Unix time ``expires`` ms (0: never)."""
        try:
            payload = pickle.dumps(value, self._protocol)
        except Exception as exc:  # PicklingError, TypeError, AttributeError, ...
            raise TypeError(f"cannot pickle {_short(value)}: {exc}") from None
        exp = _EXPIRES.pack(expires)
        return _MAGIC + self._sign(self._keys[0], _context(where, exp), payload) + exp + payload

    def loads(self, data: bytes, where: Tuple[str, str] = _NOWHERE,
              check_expiry: bool = True) -> Any:
        """The value of a signed pickle made for ``where``; CorruptValue if
        it is unsigned, tampered, made for another key, or expired."""
        data = bytes(data)
        if len(data) < _HEAD or not data.startswith(_MAGIC):
            raise CorruptValue("not a signed pickle of this format (refused without unpickling)")
        sig = data[len(_MAGIC):len(_MAGIC) + _SIG]
        exp = data[_HEAD - 8:_HEAD]
        payload = data[_HEAD:]
        context = _context(where, exp)
        if not any(hmac.compare_digest(sig, self._sign(k, context, payload)) for k in self._keys):
            raise CorruptValue("bad signature (tampered, signed with another key, or stored "
                               "under another key or namespace); refused without unpickling")
        if check_expiry:
            expires = _EXPIRES.unpack(exp)[0]
            if expires and time.time() * 1000 > expires + EXPIRY_GRACE_MS:
                raise CorruptValue("expired: signed to expire "
                                   f"{time.time() - expires / 1000:.1f}s ago; refused without "
                                   "unpickling")
        try:
            return pickle.loads(payload)
        except Exception as exc:  # signed by us, but e.g. its class is gone
            raise CorruptValue(f"signed pickle that cannot be loaded here: {exc!r}") from None

    def __repr__(self) -> str:
        return f"PickleSerializer(<{len(self._keys)} key(s)>, protocol={self._protocol})"


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= 80 else text[:77] + "..."


def resolve_serializer(serializer: Any, secret_key: Any = None) -> Any:
    """The serializer object for a store's ``serializer=`` and ``secret_key=``."""
    if serializer is None or serializer == "json":
        if secret_key is not None:
            raise ValueError("secret_key signs pickled values: use it with "
                             "serializer='pickle', got serializer='json'")
        return JsonSerializer()
    if serializer == "raw":
        if secret_key is not None:
            raise ValueError("secret_key signs pickled values: use it with "
                             "serializer='pickle', got serializer='raw'")
        return RawSerializer()
    if serializer == "pickle":
        if secret_key is None:
            raise ValueError("serializer='pickle' needs secret_key=: values are signed "
                             "with HMAC-SHA256 and verified before unpickling")
        return PickleSerializer(secret_key)
    if isinstance(serializer, str):
        raise ValueError(f"serializer must be 'json', 'pickle', 'raw' or an object with "
                         f"dumps/loads, got {serializer!r}")
    if not (callable(getattr(serializer, "dumps", None))
            and callable(getattr(serializer, "loads", None))):
        raise TypeError(f"serializer must be 'json', 'pickle', 'raw' or an object with "
                        f"dumps/loads, got {serializer!r}")
    if secret_key is not None:
        raise ValueError("secret_key is used only with serializer='pickle'; "
                         "pass PickleSerializer(secret_key) or sign in your own serializer")
    return serializer
