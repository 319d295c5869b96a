"""The committed generated module must describe exactly what remote.proto declares.

protoc (grpcio-tools) is deliberately not a dependency, so this test does not regenerate the module:
it parses remote.proto with a small parser for the proto3 subset the file uses, builds the
FileDescriptorProto protoc would build, and compares it with the descriptor embedded in remote_pb2.py.
It therefore always runs, and fails as soon as someone edits one file without the other.
"""

from __future__ import annotations

import re
from pathlib import Path

from google.protobuf import descriptor_pb2

from monitoring_client import remote_pb2

PROTO = Path(__file__).resolve().parents[1] / "remote.proto"
FD = descriptor_pb2.FieldDescriptorProto
SCALARS = {
    "double": FD.TYPE_DOUBLE,
    "float": FD.TYPE_FLOAT,
    "int64": FD.TYPE_INT64,
    "uint64": FD.TYPE_UINT64,
    "int32": FD.TYPE_INT32,
    "uint32": FD.TYPE_UINT32,
    "bool": FD.TYPE_BOOL,
    "string": FD.TYPE_STRING,
    "bytes": FD.TYPE_BYTES,
    "sint64": FD.TYPE_SINT64,
    "sint32": FD.TYPE_SINT32,
}


def parse_proto(text: str, filename: str) -> descriptor_pb2.FileDescriptorProto:
    """FileDescriptorProto for a flat proto3 file: syntax, package, messages of scalar/message fields."""
    text = re.sub(r"//[^\n]*", "", text)
    fdp = descriptor_pb2.FileDescriptorProto(name=filename)
    fdp.syntax = re.search(r'syntax\s*=\s*"(\w+)"\s*;', text).group(1)  # type: ignore[union-attr]
    package = re.search(r"package\s+([\w.]+)\s*;", text)
    if package:
        fdp.package = package.group(1)
    messages = re.findall(r"message\s+(\w+)\s*\{([^{}]*)\}", text)
    names = {name for name, _ in messages}
    for name, body in messages:
        msg = fdp.message_type.add(name=name)
        for label, ftype, fname, number in re.findall(r"(repeated\s+)?(\w+)\s+(\w+)\s*=\s*(\d+)\s*;", body):
            field = msg.field.add(name=fname, number=int(number), json_name=_json_name(fname))
            field.label = FD.LABEL_REPEATED if label else FD.LABEL_OPTIONAL
            if ftype in SCALARS:
                field.type = SCALARS[ftype]
            else:
                assert ftype in names, f"unknown type {ftype}"
                field.type = FD.TYPE_MESSAGE
                field.type_name = f".{fdp.package}.{ftype}" if fdp.package else f".{ftype}"
    return fdp


def _json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def committed() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto()
    remote_pb2.DESCRIPTOR.CopyToProto(fdp)
    return fdp


def _normalized(fdp: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    # json_name is derived data that protoc may or may not embed; compare everything else exactly.
    copy = descriptor_pb2.FileDescriptorProto()
    copy.CopyFrom(fdp)
    for msg in copy.message_type:
        for field in msg.field:
            field.ClearField("json_name")
    return copy


def test_committed_module_matches_remote_proto() -> None:
    expected = _normalized(parse_proto(PROTO.read_text(), "remote.proto"))
    actual = _normalized(committed())
    assert actual == expected, (
        f"regenerate monitoring_client/remote_pb2.py from remote.proto:\n{actual}\n!=\n{expected}"
    )


def test_parser_detects_a_changed_field() -> None:
    # The check above is only worth something if a real difference makes it fail.
    changed = PROTO.read_text().replace("int64 timestamp = 2;", "int64 timestamp = 3;")
    assert changed != PROTO.read_text()
    assert _normalized(parse_proto(changed, "remote.proto")) != _normalized(committed())


def test_wire_numbers_are_the_remote_write_spec() -> None:
    # Remote write 1.0: WriteRequest.timeseries=1, TimeSeries.labels=1/samples=2, Label.name=1/value=2,
    # Sample.value=1 (double)/timestamp=2 (int64). A receiver decodes by these numbers, not by names.
    fields = {(m.name, f.name): (f.number, f.type) for m in committed().message_type for f in m.field}
    assert fields == {
        ("WriteRequest", "timeseries"): (1, FD.TYPE_MESSAGE),
        ("TimeSeries", "labels"): (1, FD.TYPE_MESSAGE),
        ("TimeSeries", "samples"): (2, FD.TYPE_MESSAGE),
        ("Label", "name"): (1, FD.TYPE_STRING),
        ("Label", "value"): (2, FD.TYPE_STRING),
        ("Sample", "value"): (1, FD.TYPE_DOUBLE),
        ("Sample", "timestamp"): (2, FD.TYPE_INT64),
    }
