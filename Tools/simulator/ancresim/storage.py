"""In-memory catalog and documents.

A collection keeps its documents in a dict keyed by `sortkey(_id)` (insertion
order = natural order) and a lazily rebuilt sorted key list for `_id` order.
Unique secondary indexes are enforced with a dict per index.
"""
import hashlib
import uuid as uuidlib

import bson
from bson import Binary

from .errors import CommandError, DuplicateKey
from .ordering import sortkey
from .query import get_path, _MISSING
from .wire import CODEC


def new_uuid():
    return Binary(uuidlib.uuid4().bytes, 4)


def id_index_spec():
    return {"v": 2, "key": {"_id": 1}, "name": "_id_"}


class Collection:
    def __init__(self, db, name, options=None, uuid=None, with_id_index=True):
        self.db = db
        self.name = name
        self.options = dict(options or {})   # create options, in the order given
        self.uuid = uuid or new_uuid()
        self.indexes = [id_index_spec()] if with_id_index else []
        self.docs = {}          # sortkey(_id) -> document
        self._sorted = None     # cached sorted keys
        self._unique = {}       # index name -> {key tuple: id key}
        self._bytes = 0

    @property
    def ns(self):
        return self.db.name + "." + self.name

    @property
    def capped(self):
        return bool(self.options.get("capped"))

    # ------------------------------------------------------------ indexes

    def index(self, name):
        for spec in self.indexes:
            if spec["name"] == name:
                return spec
        return None

    def _unique_key(self, spec, doc):
        vals = []
        for field in spec["key"]:
            v = get_path(doc, field, _MISSING)
            vals.append(None if v is _MISSING else v)
        if spec.get("sparse") and all(get_path(doc, f, _MISSING) is _MISSING for f in spec["key"]):
            return None
        return tuple(sortkey(v) for v in vals)

    def add_index(self, spec):
        """Add an index spec; builds and checks the unique map if unique."""
        if spec.get("unique") and spec["name"] != "_id_":
            m = {}
            for k, doc in self.docs.items():
                uk = self._unique_key(spec, doc)
                if uk is None:
                    continue
                if uk in m:
                    raise DuplicateKey(self.ns, spec["name"], dict(spec["key"]),
                                       {f: get_path(doc, f, None) for f in spec["key"]})
                m[uk] = k
            self._unique[spec["name"]] = m
        self.indexes.append(spec)

    def drop_index(self, name):
        self.indexes = [s for s in self.indexes if s["name"] != name]
        self._unique.pop(name, None)

    def _check_unique(self, doc, key, ignore_key=None):
        for name, m in self._unique.items():
            spec = self.index(name)
            uk = self._unique_key(spec, doc)
            if uk is not None and uk in m and m[uk] != ignore_key:
                raise DuplicateKey(self.ns, name, dict(spec["key"]),
                                   {f: get_path(doc, f, None) for f in spec["key"]})

    def _index_add(self, doc, key):
        for name, m in self._unique.items():
            uk = self._unique_key(self.index(name), doc)
            if uk is not None:
                m[uk] = key

    def _index_remove(self, doc):
        for name, m in self._unique.items():
            uk = self._unique_key(self.index(name), doc)
            if uk is not None:
                m.pop(uk, None)

    # ------------------------------------------------------------ documents

    def insert(self, doc, key=None):
        """Insert a document whose `_id` is already first (`key`: its sortkey, if known).
        Raises DuplicateKey."""
        if key is None:
            key = sortkey(doc["_id"])
        if key in self.docs:
            raise DuplicateKey(self.ns, "_id_", {"_id": 1}, {"_id": doc["_id"]})
        if self._unique:
            self._check_unique(doc, key)
            self._index_add(doc, key)
        self.docs[key] = doc
        self._sorted = None
        if self.capped:
            self._cap()
        return key

    def replace(self, key, new):
        old = self.docs[key]
        if self._unique:
            self._check_unique(new, key, ignore_key=key)
            self._index_remove(old)
            self._index_add(new, key)
        self.docs[key] = new

    def delete(self, key):
        doc = self.docs.pop(key)
        if self._unique:
            self._index_remove(doc)
        self._sorted = None
        return doc

    def _cap(self):
        # Capped collections: evict in natural order. Real mongod does not log these deletes.
        mx = self.options.get("max")
        size = self.options.get("size")
        while mx and len(self.docs) > mx:
            self.delete(next(iter(self.docs)))
        if size and len(self.docs) > 1:
            total = sum(len(bson.encode(d)) for d in self.docs.values())
            while total > size and len(self.docs) > 1:
                total -= len(bson.encode(self.delete(next(iter(self.docs)))))

    def keys_in_id_order(self):
        if self._sorted is None:
            self._sorted = sorted(self.docs)
        return self._sorted

    def docs_in_id_order(self):
        d = self.docs
        return [d[k] for k in self.keys_in_id_order()]

    def lookup_id(self, id_value):
        return self.docs.get(sortkey(id_value))

    def info(self):
        return {"readOnly": False, "uuid": self.uuid}

    def db_hash(self, docs=None):
        """md5 of the concatenated BSON of documents in _id order (natural order
        for capped collections without an _id index), as mongod's dbHash; `docs`
        overrides the documents (in that order)."""
        h = hashlib.md5()
        if docs is None:
            docs = self.docs_in_id_order() if self.index("_id_") else list(self.docs.values())
        for d in docs:
            h.update(bson.encode(d, codec_options=CODEC))
        return h.hexdigest()


class Database:
    def __init__(self, name):
        self.name = name
        self.colls = {}

    def views(self):
        """Views live as documents of system.views, like in mongod."""
        sv = self.colls.get("system.views")
        out = {}
        if sv:
            for d in sv.docs.values():
                out[d["_id"].split(".", 1)[1]] = d
        return out


class Catalog:
    def __init__(self):
        self.dbs = {}
        self.by_uuid = {}

    def db(self, name, create=False):
        d = self.dbs.get(name)
        if d is None and create:
            d = self.dbs[name] = Database(name)
        return d

    def coll(self, db, name):
        d = self.dbs.get(db)
        return d.colls.get(name) if d else None

    def add_coll(self, coll):
        # The database may have been pruned when its last collection went away.
        coll.db = self.dbs.setdefault(coll.db.name, coll.db)
        coll.db.colls[coll.name] = coll
        self.by_uuid[bytes(coll.uuid)] = coll

    def remove_coll(self, coll):
        coll.db.colls.pop(coll.name, None)
        self.by_uuid.pop(bytes(coll.uuid), None)
        if not coll.db.colls:
            self.dbs.pop(coll.db.name, None)

    def by_ui(self, ui):
        return self.by_uuid.get(bytes(ui))


def validate_ns(db, coll=None):
    if not db or any(c in db for c in '/\\. "$') or len(db) > 63:
        raise CommandError(73, "InvalidNamespace", "Invalid database name: '%s'" % db)
    if coll is not None:
        if not coll or "$" in coll or "\x00" in coll or coll.startswith("."):
            raise CommandError(73, "InvalidNamespace", "Invalid collection name: %s" % coll)
