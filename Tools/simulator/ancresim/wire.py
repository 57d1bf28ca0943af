"""MongoDB wire protocol: message framing, OP_QUERY/OP_REPLY (legacy handshake)
and OP_MSG (everything else)."""
import struct

import bson
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.binary import UuidRepresentation

# Decode so that re-encoding gives the same bytes: Binary stays Binary (no UUID
# conversion), dates outside datetime's range stay DatetimeMS.
CODEC = CodecOptions(document_class=dict, tz_aware=False,
                     uuid_representation=UuidRepresentation.UNSPECIFIED,
                     datetime_conversion=DatetimeConversion.DATETIME_AUTO)

OP_REPLY, OP_QUERY, OP_MSG, OP_COMPRESSED = 1, 2004, 2013, 2012
MSG_CHECKSUM, MSG_MORE_TO_COME, MSG_EXHAUST_ALLOWED = 1, 2, 1 << 16

_HDR = struct.Struct("<iiii")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")


class ProtocolError(Exception):
    pass


class Request:
    __slots__ = ("request_id", "opcode", "body", "flags", "legacy", "more_to_come")

    def __init__(self, request_id, opcode, body, flags=0, legacy=False):
        self.request_id = request_id
        self.opcode = opcode
        self.body = body
        self.flags = flags
        self.legacy = legacy
        self.more_to_come = bool(flags & MSG_MORE_TO_COME) and not legacy


def read_message(sock_file):
    """Read one message; returns (request_id, opcode, payload) or None at EOF."""
    hdr = sock_file.read(16)
    if not hdr or len(hdr) < 16:
        return None
    length, request_id, _resp_to, opcode = _HDR.unpack(hdr)
    if length < 16 or length > 48 * 1024 * 1024 + 16:
        raise ProtocolError("bad message length %d" % length)
    payload = sock_file.read(length - 16)
    if len(payload) < length - 16:
        return None
    return request_id, opcode, payload


def _cstring(buf, pos):
    end = buf.index(b"\x00", pos)
    return buf[pos:end].decode("utf-8"), end + 1


def parse(request_id, opcode, payload):
    if opcode == OP_MSG:
        return _parse_msg(request_id, payload)
    if opcode == OP_QUERY:
        return _parse_query(request_id, payload)
    raise ProtocolError("unsupported opcode %d" % opcode)


def _parse_msg(request_id, payload):
    (flags,) = _U32.unpack_from(payload, 0)
    end = len(payload) - (4 if flags & MSG_CHECKSUM else 0)
    pos = 4
    body = None
    seqs = []
    while pos < end:
        kind = payload[pos]
        pos += 1
        if kind == 0:
            (size,) = _I32.unpack_from(payload, pos)
            body = bson.decode(payload[pos:pos + size], codec_options=CODEC)
            pos += size
        elif kind == 1:
            (size,) = _I32.unpack_from(payload, pos)
            ident, dpos = _cstring(payload, pos + 4)
            docs = bson.decode_all(payload[dpos:pos + size], codec_options=CODEC)
            seqs.append((ident, docs))
            pos += size
        else:
            raise ProtocolError("unknown OP_MSG section kind %d" % kind)
    if body is None:
        raise ProtocolError("OP_MSG without a body section")
    for ident, docs in seqs:
        body.setdefault(ident, []).extend(docs)
    return Request(request_id, OP_MSG, body, flags)


def _parse_query(request_id, payload):
    (flags,) = _I32.unpack_from(payload, 0)
    coll, pos = _cstring(payload, 4)
    pos += 8  # numberToSkip, numberToReturn
    (size,) = _I32.unpack_from(payload, pos)
    query = bson.decode(payload[pos:pos + size], codec_options=CODEC)
    if "$query" in query or "query" in query and len(query) <= 3 and "$readPreference" in query:
        query = query.get("$query", query.get("query"))
    db = coll.split(".", 1)[0]
    if not coll.endswith(".$cmd"):
        raise ProtocolError("legacy OP_QUERY on %s is not supported" % coll)
    query.setdefault("$db", db)
    return Request(request_id, OP_QUERY, query, flags, legacy=True)


_next_id = [1]


def _request_id():
    _next_id[0] += 1
    return _next_id[0]


def encode_reply(req, body_bytes):
    """Frame an encoded reply document for the request's opcode."""
    if req.legacy:
        # OP_REPLY: responseFlags, cursorID, startingFrom, numberReturned, docs
        payload = struct.pack("<iqii", 8, 0, 0, 1) + body_bytes
        return _HDR.pack(16 + len(payload), _request_id(), req.request_id, OP_REPLY) + payload
    payload = b"\x00\x00\x00\x00\x00" + body_bytes
    return _HDR.pack(16 + len(payload), _request_id(), req.request_id, OP_MSG) + payload


def malformed_reply(req):
    """A garbled reply: a header promising 1000 bytes, then 32 bytes of 0xff; the
    client notices at its socket timeout. (A correctly framed reply with an invalid
    body, such as an unknown section kind, a lying BSON length or a wrong
    responseTo, crashes libmongoc 1.23 instead of failing the operation.)"""
    return _HDR.pack(1000, _request_id(), req.request_id, OP_MSG) + b"\xff" * 32
