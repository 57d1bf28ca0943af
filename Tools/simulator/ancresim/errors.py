"""Command errors carrying mongod's real codes and code names."""


class CommandError(Exception):
    def __init__(self, code, code_name, errmsg, **extra):
        super().__init__(errmsg)
        self.code = code
        self.code_name = code_name
        self.errmsg = errmsg
        self.extra = extra

    def to_doc(self):
        doc = {"ok": 0.0, "errmsg": self.errmsg, "code": self.code, "codeName": self.code_name}
        doc.update(self.extra)
        return doc


def bad_value(msg):
    return CommandError(2, "BadValue", msg)


def ns_not_found(msg="ns not found"):
    return CommandError(26, "NamespaceNotFound", msg)


def ns_exists(msg):
    return CommandError(48, "NamespaceExists", msg)


def invalid_ns(msg):
    return CommandError(73, "InvalidNamespace", msg)


def not_primary():
    return CommandError(10107, "NotWritablePrimary", "not primary")


def type_mismatch(msg):
    return CommandError(14, "TypeMismatch", msg)


def failed_to_parse(msg):
    return CommandError(9, "FailedToParse", msg)


class DuplicateKey(Exception):
    """Raised by storage on a unique index violation; turned into a writeErrors entry."""

    def __init__(self, ns, index_name, key_pattern, key_value):
        self.ns, self.index_name = ns, index_name
        self.key_pattern, self.key_value = key_pattern, key_value
        super().__init__(self.errmsg())

    def errmsg(self):
        shown = ", ".join("%s: %r" % (k, v) for k, v in self.key_value.items())
        return "E11000 duplicate key error collection: %s index: %s dup key: { %s }" % (
            self.ns, self.index_name, shown)

    def write_error(self, index):
        return {"index": index, "code": 11000, "keyPattern": self.key_pattern,
                "keyValue": self.key_value, "errmsg": self.errmsg()}
