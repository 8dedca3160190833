#!/usr/bin/python3
"""The independent reference for switchyard's REST tests: protobuf's own
proto3 JSON mapping in Python (Debian's python3-protobuf json_format, a
separate implementation from the libprotobuf C++ that switchyard uses).

Usage: pbjson.py DESCSET TYPE [--field NAME] B64...
Decodes each base64 argument as a binary message of TYPE (a full name, e.g.
sy.user.v1.User) with the types of the descriptor set DESCSET and prints its
JSON, one compact line per message; with --field, only that field's JSON
value (as google.api.http's response_body selects it).
SPDX-License-Identifier: MIT
"""
import base64
import json
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory


def main():
    args = sys.argv[1:]
    field = None
    if len(args) >= 4 and args[2] == "--field":
        field = args[3]
        args = args[:2] + args[4:]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    fds = descriptor_pb2.FileDescriptorSet()
    with open(args[0], "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    cls = message_factory.MessageFactory(pool).GetPrototype(pool.FindMessageTypeByName(args[1]))
    for b64 in args[2:]:
        msg = cls()
        msg.ParseFromString(base64.b64decode(b64))
        text = json_format.MessageToJson(msg, indent=None,
                                         including_default_value_fields=field is not None)
        value = json.loads(text)
        if field is not None:
            value = value[msg.DESCRIPTOR.fields_by_name[field].json_name]
        print(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
