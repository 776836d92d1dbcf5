#!/usr/bin/python3
"""Write the seed corpora for the codec fuzz targets (tests/fuzz/corpus/<target>/).

Seeds are small: valid frames of various shapes and a few malformed ones, so the fuzzer starts
next to every branch of the decoders. Run from anywhere; needs python3-msgpack. The seeds are
committed; rerun only when the envelope changes.
"""
import os
import struct

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
ID = "0123456789abcdef0123456789abcdef"


def pack(value, single_float=False):
    return msgpack.packb(value, use_bin_type=True, use_single_float=single_float)


def envelope(**override):
    fields = {
        "v": 1, "id": ID, "type": "call.offered", "src": "intake-1", "seq": 7,
        "ts": 1700000000000, "corr": "", "data": {"lang": "ar", "queue": 3},
    }
    fields.update(override)
    return {k: v for k, v in fields.items() if v is not Ellipsis}


def write(target, seeds):
    out = os.path.join(HERE, "corpus", target)
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        os.remove(os.path.join(out, name))
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


def event_seeds():
    valid = pack(envelope())
    nested = {"caller": {"lang": ["ar", "fa"], "needs": {"interpreter": True, "level": None}},
              "scores": [1, -1, 2 ** 40, -(2 ** 63), 2 ** 63 - 1, 0.5], "note": "مرحبا" * 10,
              "empty": {}, "list": []}
    reordered = envelope(data={"k": 1})
    reordered = {k: reordered[k] for k in ["data", "ts", "corr", "seq", "src", "type", "id", "v"]}
    # Wider encodings than needed: map16 header, "v" as str8 with a uint64 value.
    wide = b"\xde\x00\x08" + b"\xd9\x01v\xcf" + struct.pack(">Q", 1) + b"".join(
        pack(k) + pack(v) for k, v in envelope().items() if k != "v")
    return {
        "valid_minimal": pack(envelope(data={})),
        "valid_typical": valid,
        "valid_nested": pack(envelope(data=nested, corr="9f86d081884c7d659a2feaa0c55ad015")),
        "valid_float32": pack(envelope(data={"ratio": 0.25, "t": 1.5}), single_float=True),
        "valid_long_strings": pack(envelope(data={"s8": "x" * 40, "s16": "y" * 300})),
        "valid_reordered": pack(reordered),
        "valid_wide_encodings": wide,
        "bad_truncated": valid[: len(valid) // 2],
        "bad_version": pack(envelope(v=2)),
        "bad_unknown_key": pack(dict(envelope(), extra=1)),
        "bad_missing_key": pack(envelope(corr=...)),
        "bad_duplicate_key": b"\x89" + valid[1:] + pack("v") + pack(1),
        "bad_types": pack(envelope(seq=-1, type="Bad..Type", data=[])),
        "bad_huge_count": b"\xdf\xff\xff\xff\xff\xa1v\x01",
        "bad_bin_data": b"\x81\xa4data\xc6\xff\xff\xff\xff\x00",
        "bad_trailing": valid + b"\xc0",
        "bad_not_a_map": pack([1, 2, 3]),
    }


def msgpack_seeds():
    return {
        "scalars": pack([None, True, False, 0, 127, 128, 255, 256, 65535, 65536, 2 ** 32,
                         2 ** 63 - 1, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 63)]),
        "floats64": pack([0.0, -0.0, 1.5, 1e300, 5e-324]),
        "floats32": pack([0.25, -3.5], single_float=True),
        "strings": pack(["", "a" * 31, "b" * 32, "c" * 256, "مرحبا", "😀"]),
        "nested": pack({"a": [1, {"b": [[], {}, [None]]}], "c": {"d": {"e": "f"}}}),
        "map16": pack({"k%d" % i: i for i in range(20)}),
        "array16": pack(list(range(20))),
        "str32_wide": b"\xdb\x00\x00\x00\x02hi",
        "bad_reserved": b"\x92\x01\xc1",
        "bad_bin": b"\xc4\x01\x00",
        "bad_ext": b"\xd4\x01\x00",
        "bad_uint64": b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
        "bad_utf8": b"\xa3\xed\xa0\x80",
        "bad_dup_key": b"\x82\xa1a\x01\xa1a\x02",
        "bad_nan": b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",
        "bad_deep": b"\x91" * 40 + b"\xc0",
        "bad_huge_array": b"\xdd\xff\xff\xff\xff\x01\x02",
    }


if __name__ == "__main__":
    write("fuzz_event_decode", event_seeds())
    write("fuzz_msgpack_decode", msgpack_seeds())
