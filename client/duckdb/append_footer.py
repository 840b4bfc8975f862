#!/usr/bin/env python3
"""append_footer.py: turn a shared object into a loadable DuckDB extension.

usage: append_footer.py LIBDUCKDB IN.so OUT.duckdb_extension EXTENSION_VERSION

DuckDB reads the last 512 bytes of an extension file: 256 bytes of metadata (eight 32-byte,
NUL-padded fields, stored last field first: magic "4", platform, DuckDB version, extension
version, ABI type "CPP", three unused) and a 256-byte signature (zeros here: the host must
allow unsigned extensions). A C++ extension loads only into the DuckDB version and platform
it was built for, so both are asked of the libduckdb.so it was compiled against (through
DuckDB's C API: duckdb_library_version() and PRAGMA platform), never assumed.
"""
import ctypes
import os
import sys


def ask_duckdb(path):
    lib = ctypes.CDLL(path)
    lib.duckdb_library_version.restype = ctypes.c_char_p
    version = lib.duckdb_library_version().decode()

    db = ctypes.c_void_p()
    con = ctypes.c_void_p()
    result = ctypes.create_string_buffer(256)  # duckdb_result is 48 bytes in 1.x
    if lib.duckdb_open(None, ctypes.byref(db)) != 0:
        raise RuntimeError("duckdb_open failed")
    try:
        if lib.duckdb_connect(db, ctypes.byref(con)) != 0:
            raise RuntimeError("duckdb_connect failed")
        if lib.duckdb_query(con, b"PRAGMA platform", result) != 0:
            raise RuntimeError("PRAGMA platform failed")
        lib.duckdb_value_varchar.restype = ctypes.c_void_p
        raw = lib.duckdb_value_varchar(result, ctypes.c_uint64(0), ctypes.c_uint64(0))
        platform = ctypes.cast(raw, ctypes.c_char_p).value.decode()
        lib.duckdb_free(ctypes.c_void_p(raw))
        lib.duckdb_destroy_result(result)
        lib.duckdb_disconnect(ctypes.byref(con))
    finally:
        lib.duckdb_close(ctypes.byref(db))
    return version, platform


def field(text):
    data = text.encode()
    if len(data) > 32:
        raise ValueError(f"footer field too long: {text!r}")
    return data + b"\0" * (32 - len(data))


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__.split("\n\n")[1])
    libduckdb, src, dst, ext_version = sys.argv[1:]
    version, platform = ask_duckdb(libduckdb)
    # Written in file order: unused x3, ABI type, extension version, DuckDB version,
    # platform, magic; then the signature.
    meta = (field("") * 3 + field("CPP") + field(ext_version) + field(version) +
            field(platform) + field("4"))
    assert len(meta) == 256
    with open(src, "rb") as f:
        body = f.read()
    tmp = dst + ".tmp"
    with open(tmp, "wb") as f:
        f.write(body + meta + b"\0" * 256)
    os.chmod(tmp, 0o755)
    os.replace(tmp, dst)


if __name__ == "__main__":
    main()
