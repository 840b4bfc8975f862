#!/usr/bin/env python3
"""make_corpus.py: write the seed corpora of the fuzz targets in tests/fuzz/corpus/.

Each target gets valid inputs and near-valid ones (one thing wrong), written as files
named seed-<what>; files with other names (entries that tools/fuzz merged in) are left
alone. The output is deterministic: running the script again rewrites the same bytes.

Protobuf is packed by hand here (a dozen lines below), so that the script needs nothing
beyond python3; field numbers follow proto/secretd/v1/secretd.proto.

Usage: tests/fuzz/make_corpus.py [CORPUS_DIR]   (default: tests/fuzz/corpus next to it)
"""
import os
import struct
import sys

HEADER = b"\x00SD\x01"
SEP = b"\xffSD\xff"  # frame separator of fuzz_service.c

# Field numbers of secretd.v1 (see the .proto).
REQUEST = {"method": 1, "body": 2, "token": 3, "timeout_ms": 4, "request_id": 5}
REPLY = {"status": 1, "reason": 2, "message": 3, "body": 4, "request_id": 5}


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def tag(field, wire):
    return varint(field << 3 | wire)


def f_varint(field, v):
    return tag(field, 0) + varint(v)


def f_bytes(field, data):
    if isinstance(data, str):
        data = data.encode()
    return tag(field, 2) + varint(len(data)) + data


def kv(key, value):
    """A secretd.v1.Field message."""
    return f_bytes(1, key) + f_bytes(2, value)


def create(type_, fields, name="", scope=(), persistent=False, on_conflict=0, provider=""):
    m = b""
    if name:
        m += f_bytes(1, name)
    m += f_bytes(2, type_)
    for k, v in fields:
        m += f_bytes(3, kv(k, v))
    for s in scope:
        m += f_bytes(4, s)
    if persistent:
        m += f_varint(5, 1)
    if on_conflict:
        m += f_varint(6, on_conflict)
    if provider:
        m += f_bytes(7, provider)
    return m


def drop(name, storage=0, if_exists=False):
    return f_bytes(1, name) + (f_varint(2, storage) if storage else b"") + \
        (f_varint(3, 1) if if_exists else b"")


def list_(unredacted=False, type_="", storage=0):
    return (f_varint(1, 1) if unredacted else b"") + (f_bytes(2, type_) if type_ else b"") + \
        (f_varint(3, storage) if storage else b"")


def get(name, storage=0):
    return f_bytes(1, name) + (f_varint(2, storage) if storage else b"")


def resolve(path, type_):
    return f_bytes(1, path) + f_bytes(2, type_)


def statement(text):
    return f_bytes(1, text)


def request(method, body, token="", timeout_ms=0, request_id=0):
    m = f_bytes(REQUEST["method"], method) + f_bytes(REQUEST["body"], body)
    if token:
        m += f_bytes(REQUEST["token"], token)
    if timeout_ms:
        m += f_varint(REQUEST["timeout_ms"], timeout_ms)
    if request_id:
        m += f_varint(REQUEST["request_id"], request_id)
    return HEADER + m


def reply(status=0, reason="", message="", body=None, request_id=0):
    m = b""
    if status:
        m += f_varint(REPLY["status"], status)
    if reason:
        m += f_bytes(REPLY["reason"], reason)
    if message:
        m += f_bytes(REPLY["message"], message)
    if body is not None:
        m += f_bytes(REPLY["body"], body)
    if request_id:
        m += f_varint(REPLY["request_id"], request_id)
    return HEADER + m


OPENAI = [("api_key", "sk-seed-0001")]
AZURE = [("api_key", "az-seed"), ("resource_name", "res1"), ("api_version", "2024-06-01")]
OLLAMA = [("api_url", "http://10.0.0.1:11434")]

STATEMENTS = {
    "create-openai": "CREATE SECRET (TYPE openai, API_KEY 'sk-seed-0001')",
    "create-temp-named": "CREATE TEMPORARY SECRET my_key (TYPE openai, api_key 'sk-x', "
                         "base_url 'https://api.example.com/v1')",
    "create-persistent": "CREATE PERSISTENT SECRET p1 IN sqlcipher (TYPE ollama, "
                         "api_url 'http://h:11434')",
    "create-or-replace": "CREATE OR REPLACE SECRET s (TYPE azure_llm, api_key 'k', "
                         "resource_name 'r', api_version '2024-06-01', SCOPE ('azure_llm://a', "
                         "'azure_llm://b'))",
    "create-if-not-exists": "create secret if not exists \"Quoted \"\" Name\" "
                            "(type openai, api_key 'it''s', provider config, scope '');",
    "create-number": "CREATE SECRET n (TYPE openai, api_key 12345)",
    "create-comment": "-- a comment\nCREATE SECRET c (TYPE openai, api_key 'v') -- trailing",
    "create-in-memory": "CREATE SECRET m IN memory (TYPE openai, api_key 'v')",
    "drop": "DROP SECRET my_key",
    "drop-temp-if-exists": "DROP TEMPORARY SECRET IF EXISTS my_key",
    "drop-persistent-from": "DROP PERSISTENT SECRET p1 FROM sqlcipher",
    "list": "FROM duckdb_secrets()",
    "list-select": "SELECT * FROM duckdb_secrets(redact := false);",
    "list-redact-eq": "FROM duckdb_secrets(redact = true)",
    "resolve": "FROM which_secret('openai://gpt-4o', 'openai')",
    "resolve-select": "SELECT * FROM which_secret('', 'ollama')",
    "get": "GET SECRET my_key",
    "get-from": "GET SECRET \"p1\" FROM \"sqlcipher\"",
    # near-valid
    "bad-or-replace-if-not-exists": "CREATE OR REPLACE SECRET IF NOT EXISTS s (TYPE openai)",
    "bad-temp-in-sqlcipher": "CREATE TEMPORARY SECRET s IN sqlcipher (TYPE openai, api_key 'v')",
    "bad-unterminated": "CREATE SECRET s (TYPE openai, api_key 'unterminated",
    "bad-unterminated-ident": "DROP SECRET \"abc",
    "bad-two-statements": "FROM duckdb_secrets(); FROM duckdb_secrets()",
    "bad-empty-options": "CREATE SECRET s ()",
    "bad-type-twice": "CREATE SECRET s (TYPE openai, TYPE ollama)",
    "bad-keyword-name": "DROP SECRET type",
    "bad-storage": "DROP SECRET s FROM disk",
    "bad-glued-quote": "CREATE SECRET s (TYPE openai, api_key 'it's')",
    "bad-double-quoted-value": "CREATE SECRET s (TYPE openai, api_key \"v\")",
    "bad-long-ident": "DROP SECRET " + "x" * 70 + "\u00e9" * 10,
    "bad-utf8-ident": "DROP SECRET \u00e4\u00f6\u00fc ++",
    "bad-empty": "",
    "bad-spaces": "  ;  ",
    "bad-missing-paren": "FROM which_secret('a', 'b'",
    "bad-unknown-type": "CREATE SECRET s (TYPE bedrock, api_key 'v')",
    "bad-missing-field": "CREATE SECRET s (TYPE azure_llm, api_key 'v')",
    "bad-unknown-field": "CREATE SECRET s (TYPE openai, api_key 'v', colour 'blue')",
    "bad-provider": "CREATE SECRET s (TYPE openai, api_key 'v', PROVIDER env)",
}


def binary_frames():
    """Single binary frames for fuzz_service, valid and near-valid."""
    f = {}
    f["create-openai"] = request("Create", create("openai", OPENAI), request_id=1)
    f["create-openai-named-scope"] = request("Create", create(
        "OpenAI", OPENAI + [("base_url", "https://x")], name="MyKey-\u00c4",
        scope=["openai://a", "openai://b"]))
    f["create-azure-persistent"] = request("Create", create("azure_llm", AZURE, name="az",
                                                            persistent=True))
    f["create-ollama-replace"] = request("Create", create("ollama", OLLAMA, on_conflict=1))
    f["create-ignore-provider"] = request("Create", create("openai", OPENAI, on_conflict=2,
                                                           provider="CONFIG"))
    f["create-empty-scope"] = request("Create", create("openai", OPENAI, scope=[""]))
    f["drop"] = request("Drop", drop("planted"))
    f["drop-if-exists"] = request("Drop", drop("nothing", storage=1, if_exists=True))
    f["list"] = request("List", list_())
    f["list-unredacted"] = request("List", list_(unredacted=True, type_="openai", storage=1))
    f["get"] = request("Get", get("planted"))
    f["get-storage"] = request("Get", get("PLANTED", storage=2))
    f["resolve"] = request("Resolve", resolve("openai://gpt-4o", "openai"))
    f["resolve-none"] = request("Resolve", resolve("ollama://x", "ollama"))
    f["execute-list"] = request("Execute", statement("FROM duckdb_secrets(redact := false)"),
                                timeout_ms=5000, request_id=7)
    f["execute-create"] = request("Execute", statement(STATEMENTS["create-or-replace"]))
    f["token"] = request("List", list_(), token="not-a-token")
    # near-valid
    f["bad-empty"] = b""
    f["bad-short-header"] = b"\x00SD"
    f["bad-header"] = b"\x00SX\x01" + request("List", list_())[4:]
    f["bad-version-2"] = b"\x00SD\x02" + request("List", list_())[4:]
    f["bad-version-0"] = b"\x00SD\x00" + request("List", list_())[4:]
    f["bad-header-only"] = HEADER
    f["bad-truncated"] = request("Create", create("openai", OPENAI))[:-3]
    f["bad-garbage-body"] = request("Create", b"\xff\xfe\xfd\x07garbage")
    f["bad-garbage-envelope"] = HEADER + b"\x0a\xff\xff\xff\xff\x0f"
    f["bad-unknown-method"] = request("Frobnicate", list_())
    f["bad-method-case"] = request("create", create("openai", OPENAI))
    f["bad-nul-in-name"] = request("Get", get("pla\x00nted"))
    f["bad-nul-in-method"] = request("List\x00x", list_())
    f["bad-wrong-wire-type"] = HEADER + tag(1, 0) + varint(5) + f_bytes(2, b"")
    f["bad-body-wrong-wire-type"] = request("Get", tag(1, 0) + varint(3))
    f["bad-huge-length"] = HEADER + tag(2, 2) + varint(0xFFFFFFFF) + b"x"
    f["bad-huge-length-64"] = HEADER + tag(2, 2) + varint(0xFFFFFFFFFFFFFFF) + b"x"
    f["bad-nested-repeat"] = request("Create", create("openai", OPENAI * 20,
                                                      scope=["s"] * 20))
    f["bad-group-wire-type"] = HEADER + tag(1, 3) + tag(1, 4)
    f["bad-fixed-wire-types"] = HEADER + tag(4, 5) + b"\x01\x02\x03\x04" + tag(5, 1) + b"\x00" * 8
    f["bad-long-name"] = request("Create", create("openai", OPENAI, name="n" * 300))
    f["bad-long-value"] = request("Create", create("openai", [("api_key", "v" * 17000)]))
    f["bad-many-fields"] = request("Create", create(
        "openai", [("api_key", "v")] + [("f%d" % i, "x") for i in range(20)]))
    f["bad-control-name"] = request("Create", create("openai", OPENAI, name="a\x01b"))
    f["bad-invalid-utf8-statement"] = request("Execute", statement(b"DROP SECRET \xc3\x28"))
    f["bad-enum-out-of-range"] = request("Drop", drop("x", storage=77))
    f["bad-conflict-out-of-range"] = request("Create", create("openai", OPENAI,
                                                              on_conflict=9))
    return f


def text_frames():
    f = {}
    for name, text in STATEMENTS.items():
        if text:  # an empty frame is a binary frame: see bad-empty
            f["text-" + name] = text.encode()
    f["text-auth"] = b"AUTH some-token\nFROM duckdb_secrets()"
    f["text-auth-crlf"] = b"AUTH t\r\nGET SECRET planted"
    f["text-auth-no-newline"] = b"AUTH token-without-statement"
    f["text-invalid-utf8"] = b"CREATE SECRET s (TYPE openai, api_key '\xff\xfe')"
    f["text-overlong-utf8"] = b"DROP SECRET \xc0\xaf"
    f["text-surrogate"] = b"DROP SECRET \xed\xa0\x80"
    f["text-nul"] = b"DROP SECRET a\x00b"
    f["text-random-splice"] = b"CREATE SECRET s (TYPE op\x07\x1b[2Jenai, api_key 'v')"
    return f


def sequences():
    """Several frames in one fuzz_service input, joined by SEP."""
    s = {}
    s["seq-create-get-list-drop"] = [
        request("Create", create("openai", OPENAI, name="k1", scope=["openai://team"])),
        request("Get", get("K1")),
        request("List", list_(unredacted=True)),
        request("Resolve", resolve("openai://team/x", "openai")),
        request("Drop", drop("k1")),
        request("Get", get("k1")),
    ]
    s["seq-ambiguous"] = [
        request("Create", create("openai", OPENAI, name="twin")),
        request("Create", create("openai", OPENAI, name="twin", persistent=True)),
        request("Drop", drop("twin", if_exists=True)),
        request("Get", get("twin")),
        request("Drop", drop("twin", storage=2)),
    ]
    s["seq-conflicts"] = [
        request("Create", create("openai", OPENAI, name="c")),
        request("Create", create("openai", OPENAI, name="c")),
        request("Create", create("ollama", OLLAMA, name="c", on_conflict=1)),
        request("Create", create("openai", OPENAI, name="c", on_conflict=2)),
    ]
    s["seq-full"] = [request("Create", create("openai", OPENAI, name="f%d" % i))
                     for i in range(10)] + [request("List", list_())]
    s["seq-text"] = [
        STATEMENTS["create-temp-named"].encode(),
        STATEMENTS["create-persistent"].encode(),
        STATEMENTS["list-select"].encode(),
        STATEMENTS["resolve"].encode(),
        STATEMENTS["get"].encode(),
        b"GET SECRET p1",
        STATEMENTS["drop"].encode(),
    ]
    s["seq-mixed"] = [
        b"CREATE SECRET (TYPE ollama, api_url 'u')",
        request("Get", get("__default_ollama")),
        request("Execute", statement("DROP SECRET __default_ollama")),
        b"FROM which_secret('ollama://', 'ollama')",
    ]
    return {k: SEP.join(v) for k, v in s.items()}


def row(scope, fields, version=1):
    out = bytes([version]) + struct.pack("<I", len(scope))
    for s in scope:
        b = s.encode() + b"\x00"
        out += struct.pack("<I", len(b)) + b
    out += struct.pack("<I", len(fields))
    for k, v in fields:
        kb = k.encode() + b"\x00"
        vb = v.encode() if isinstance(v, str) else v
        out += struct.pack("<I", len(kb)) + kb + struct.pack("<I", len(vb)) + vb
    return out


def rows():
    r = {}
    r["openai"] = row(["openai://"], OPENAI)
    r["azure"] = row(["azure_llm://a", "azure_llm://b"], AZURE)
    r["empty-scope-entry"] = row([""], OLLAMA)
    r["no-scope-no-fields"] = row([], [])
    r["unsorted-fields"] = row(["s"], [("z", "1"), ("a", "2"), ("m", "")])
    r["binary-value"] = row(["s"], [("api_key", b"\x00\xff\x00")])
    r["bad-version"] = row(["s"], OPENAI, version=2)
    r["bad-empty"] = b""
    r["bad-truncated"] = row(["openai://"], OPENAI)[:-4]
    r["bad-trailing"] = row(["openai://"], OPENAI) + b"\x00"
    r["bad-huge-count"] = b"\x01" + struct.pack("<I", 0xFFFFFFFF)
    r["bad-huge-length"] = b"\x01" + struct.pack("<I", 1) + struct.pack("<I", 0xFFFFFFF0) + b"a\0"
    r["bad-no-nul"] = b"\x01" + struct.pack("<I", 1) + struct.pack("<I", 1) + b"a" + \
        struct.pack("<I", 0)
    r["bad-inner-nul"] = b"\x01" + struct.pack("<I", 1) + struct.pack("<I", 3) + b"a\0\0" + \
        struct.pack("<I", 0)
    r["bad-zero-length-string"] = b"\x01" + struct.pack("<I", 1) + struct.pack("<I", 0) + \
        struct.pack("<I", 0)
    return r


def statement_reply(kind, body):
    return f_varint(1, kind) + body


def secret_msg(name="s", type_="openai", storage=1, scope=("openai://",), fields=OPENAI):
    m = f_bytes(1, name) + f_bytes(2, type_) + f_bytes(3, "config") + f_varint(4, storage)
    for s in scope:
        m += f_bytes(5, s)
    for k, v in fields:
        m += f_bytes(6, kv(k, v))
    return m


def row_msg(name="s"):
    return (f_bytes(1, name) + f_bytes(2, "openai") + f_bytes(3, "config") + f_varint(4, 0) +
            f_bytes(5, "memory") + f_bytes(6, "openai://") +
            f_bytes(7, "name=s;type=openai;provider=config;serializable=true;scope=openai://;"
                       "api_key=redacted"))


def replies():
    """fuzz_reply inputs: a flag byte (call in bits 0-2, 0x08 = echo the request id) and
    the reply frame."""
    CREATE, DROP, LIST, GET, RESOLVE, EXECUTE, LIST_UNREDACTED = range(7)
    ECHO = 0x08
    r = {}
    r["create-ok"] = (CREATE | ECHO, reply(body=f_bytes(1, "s") + f_varint(2, 1) +
                                           f_varint(3, 1)))
    r["drop-ok"] = (DROP | ECHO, reply(body=f_bytes(1, "s") + f_varint(2, 2) + f_varint(3, 1)))
    r["list-ok"] = (LIST | ECHO, reply(body=f_bytes(1, row_msg("a")) + f_bytes(1, row_msg("b"))))
    r["list-unredacted-ok"] = (LIST_UNREDACTED | ECHO, reply(body=f_bytes(1, row_msg())))
    r["list-empty"] = (LIST | ECHO, reply(body=b""))
    r["get-ok"] = (GET | ECHO, reply(body=f_bytes(1, secret_msg(fields=AZURE))))
    r["get-no-secret"] = (GET | ECHO, reply(body=b""))
    r["resolve-found"] = (RESOLVE | ECHO, reply(body=f_varint(1, 1) + f_bytes(2, secret_msg())))
    r["resolve-none"] = (RESOLVE | ECHO, reply(body=b""))
    r["resolve-found-no-secret"] = (RESOLVE | ECHO, reply(body=f_varint(1, 1)))
    r["execute-created"] = (EXECUTE | ECHO, reply(body=statement_reply(
        1, f_bytes(2, f_bytes(1, "s") + f_varint(2, 1) + f_varint(3, 1)))))
    r["execute-dropped"] = (EXECUTE | ECHO, reply(body=statement_reply(
        2, f_bytes(3, f_bytes(1, "s") + f_varint(2, 2) + f_varint(3, 1)))))
    r["execute-rows"] = (EXECUTE | ECHO, reply(body=statement_reply(3, f_bytes(4, row_msg()))))
    r["execute-resolved"] = (EXECUTE | ECHO, reply(body=statement_reply(
        4, f_bytes(5, f_bytes(1, "s") + f_bytes(2, "TEMPORARY") + f_bytes(3, "memory")))))
    r["execute-secret"] = (EXECUTE | ECHO, reply(body=statement_reply(
        5, f_bytes(6, secret_msg(scope=("a", "b", ""))))))
    r["execute-secret-missing"] = (EXECUTE | ECHO, reply(body=statement_reply(5, b"")))
    r["execute-kind-unknown"] = (EXECUTE | ECHO, reply(body=statement_reply(9, b"")))
    r["error-not-found"] = (GET | ECHO, reply(status=5, reason="",
                                              message="Failed to find secret 's'"))
    r["error-ambiguous"] = (DROP | ECHO, reply(status=9, reason="AMBIGUOUS", message="both"))
    r["error-no-message"] = (LIST | ECHO, reply(status=13))
    r["error-status-huge"] = (LIST | ECHO, reply(status=0xFFFFFFFF, message="x"))
    r["error-long-reason"] = (LIST | ECHO, reply(status=3, reason="R" * 100, message="m" * 600))
    r["bad-wrong-id"] = (LIST, reply(body=b"", request_id=12345))
    r["bad-no-id"] = (LIST, reply(body=b""))
    r["bad-header"] = (LIST | ECHO, b"\x00SX\x01")
    r["bad-version"] = (LIST | ECHO, b"\x00SD\x07")
    r["bad-short"] = (LIST, b"\x00S")
    r["bad-text-reply"] = (LIST, b'{"status":"OK","rows":[]}\n')
    r["bad-envelope"] = (GET | ECHO, HEADER + b"\x22\xff\xff\xff\xff\x0f")
    r["bad-body"] = (GET | ECHO, reply(body=b"\x0a\x05ab"))
    r["bad-body-wrong-wire-type"] = (EXECUTE | ECHO, reply(body=tag(1, 2) + varint(1) + b"x"))
    r["bad-nested-deep"] = (GET | ECHO, reply(body=f_bytes(1, f_bytes(6, f_bytes(1, "")) * 50)))
    return {k: bytes([flag]) + frame for k, (flag, frame) in r.items()}


def sql():
    out = {}
    for name, text in STATEMENTS.items():
        out[name] = text.encode()
    out["nul-inside"] = b"DROP SECRET a\x00b"
    out["invalid-utf8-ident"] = b"DROP SECRET \xc3\x28x ++"
    out["invalid-utf8-long-ident"] = b"DROP SECRET " + b"\xc3\xa9" * 40 + b" ++"
    out["high-bytes"] = b"CREATE SECRET \x80\xff (TYPE openai, api_key 'v')"
    return out


def write(directory, files):
    os.makedirs(directory, exist_ok=True)
    for name, data in files.items():
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(directory, "seed-" + name), "wb") as f:
            f.write(data)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
    service = {}
    service.update(binary_frames())
    service.update(text_frames())
    service.update(sequences())
    for k, v in service.items():
        assert k.startswith("seq-") or SEP not in v, k
    write(os.path.join(root, "service"), service)
    write(os.path.join(root, "sql"), sql())
    write(os.path.join(root, "row"), rows())
    write(os.path.join(root, "reply"), replies())
    return 0


if __name__ == "__main__":
    sys.exit(main())
