"""The secrets audit on real files: the rig's own writers (MicroPython's ``@rig`` lines, the
timeline, run.json, the Jinja2 report) put a secret in, the audit finds it in the form each
writer uses and names the file and the key, never the value."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import random
import subprocess
import tarfile
import traceback
import tracemalloc
import urllib.parse
import warnings
import zipfile
from pathlib import Path

import pytest

from rig.board.virtual import find_micropython
from rig.errors import ConfigError
from rig.evidence import run_record
from rig.evidence.secrets_audit import (
    CHUNK_BYTES,
    MAX_UNCONFIRMED,
    POSSIBLE,
    AuditIncomplete,
    Leak,
    SecretsLeaked,
    audit_artifacts,
    check_artifacts,
    too_short,
)
from rig.evidence.timeline import Timeline
from rig.report import write_html_report
from rig.report.templating import environment
from tests.rig.inner_pytest import REPO

BROKER = "broker_password[board-virtual]"
HOST = "broker_password[host]"
WIFI = "wifi_password"
# A quote and a backslash (JSON and repr escape them), and what HTML escapes.
TRICKY = "pa\"ss\\w<o>rd&'9"
TOKEN = "Zq8TnLw3sVb2Xk-rT_4mQ"  # a base64url secret with "-" and "_" in it
WIFI_VALUE = "wifi-0123456789abcdef"
SECRETS = {BROKER: TRICKY, HOST: TOKEN, WIFI: WIFI_VALUE}


def micropython() -> str:
    """The unix port the virtual board runs (beside this Python, else on PATH), or a skip."""
    try:
        return find_micropython(None)
    except ConfigError as e:
        pytest.skip(str(e))


def found(leaks: list[Leak]) -> set[tuple[str, str, str]]:
    return {(f"{leak.path}{'!' + leak.member if leak.member else ''}", leak.key, leak.form) for leak in leaks}


def noise(rng: random.Random, size: int) -> bytes:
    """Log-like text: timestamps, words, hex and base64 of random bytes."""
    words = ["mqtt", "connect", "publish", "received", "topic", "payload", "keepalive", "ping", "broker"]
    lines, total = [], 0
    while total < size:
        kind = rng.random()
        blob = rng.randbytes(rng.randint(4, 60))
        if kind < 0.3:
            line = f'@rig {{"ev": "received", "topic": "rig/x/echo", "hex": "{blob.hex()}"}}'
        elif kind < 0.5:
            line = json.dumps({"t": rng.random() * 1e9, "b64": base64.b64encode(blob).decode()})
        else:
            line = f"{rng.random() * 1e4:.6f} " + " ".join(
                rng.choice(words) for _ in range(rng.randint(3, 15))
            )
        lines.append(line)
        total += len(line) + 1
    return ("\n".join(lines) + "\n").encode()[:size]


# -- each form, as the rig's writers produce it -------------------------------------------------


def test_a_password_in_hex_in_a_real_rig_event_line(tmp_path: Path) -> None:
    payload = f"login {TRICKY} now".encode()
    # The firmware's own event code on the real MicroPython, as the board prints a payload.
    code = (
        "import binascii, serial_events\n"
        f"serial_events.emit('received', topic='rig/x/echo', "
        f"hex=serial_events.hexlify(binascii.unhexlify({payload.hex()!r})))\n"
    )
    run = subprocess.run(
        [micropython(), "-c", code], cwd=REPO / "firmware", capture_output=True, timeout=30, check=True
    )
    head = b"MicroPython v1.28 on unix\n>>> boot\n"
    (tmp_path / "serial.log").write_bytes(head + run.stdout)
    (tmp_path / "upper.log").write_bytes(b"dump " + payload.hex().upper().encode() + b"\n")

    leaks = audit_artifacts([tmp_path], SECRETS)

    assert found(leaks) == {("serial.log", BROKER, "hex"), ("upper.log", BROKER, "hex")}
    serial = next(leak for leak in leaks if leak.path == Path("serial.log"))
    assert serial.offset == len(head) + run.stdout.index(TRICKY.encode().hex().encode())
    assert serial.root == tmp_path


def test_json_escaped_in_the_timeline_and_a_trace(tmp_path: Path) -> None:
    timeline = Timeline(tmp_path / "test_x")
    payload = f"pw={TRICKY}".encode()
    timeline.add(1.0, "mqtt", f"in rig/x/echo {payload!r}", payload=payload.decode(), hex=payload.hex())
    timeline.close()
    with (tmp_path / "mqtt.jsonl").open("w", encoding="utf-8") as trace:
        trace.write(json.dumps({"topic": "rig/x/echo", "payload": f"é {TRICKY}"}, ensure_ascii=False) + "\n")

    leaks = found(audit_artifacts([tmp_path], SECRETS))

    assert ("test_x/timeline.jsonl", BROKER, "json-escaped") in leaks
    assert ("test_x/timeline.jsonl", BROKER, "hex") in leaks
    assert ("mqtt.jsonl", BROKER, "json-escaped") in leaks
    # timeline.txt shows the payload's bytes repr: the backslash doubled, the quote as it is.
    assert ("test_x/timeline.txt", BROKER, "repr-escaped") in leaks
    assert not any(form == "plain" for path, _, form in leaks if path.endswith(".jsonl"))


def test_html_escaped_in_a_page_of_the_report_environment(tmp_path: Path) -> None:
    page = environment().from_string(
        "<td>{{ message }}</td>\n<script>const data = {{ data|tojson }};</script>\n"
    )
    (tmp_path / "index.html").write_text(page.render(message=TRICKY, data={"m": TOKEN + TRICKY}))

    leaks = found(audit_artifacts([tmp_path], SECRETS))

    assert ("index.html", BROKER, "html-escaped") in leaks  # {{ }}: markupsafe's &#34; &#39;
    assert ("index.html", BROKER, "json-escaped") in leaks  # tojson: \u003c and friends
    assert ("index.html", HOST, "plain") in leaks  # nothing to escape in a url-safe token
    assert (tmp_path / "index.html").read_text().count(TRICKY) == 0


def test_a_run_folder_and_its_report_written_by_the_rig(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    message = f"AssertionError: assert 'ok' == {TRICKY!r}\nlogin refused for {WIFI_VALUE}"
    record = run_record.RunRecord(rig_version="0.1.0", started=1.0, finished=2.0)
    record.tests.append(
        run_record.TestRecord("tests/hil/test_x.py::test_y", "test_y", "failed", message=message)
    )
    record.save(run / "run.json")
    report = write_html_report([run], tmp_path / "report" / "index.html")

    leaks = audit_artifacts([tmp_path], SECRETS)

    files = {(leak.where, leak.key) for leak in leaks}
    assert (str(run / "run.json"), BROKER) in files
    assert (str(run / "run.json"), WIFI) in files
    assert (str(report), BROKER) in files
    assert (str(report), WIFI) in files


def test_base64_at_each_of_the_three_alignments(tmp_path: Path) -> None:
    # ">>>" and "???" encode to "+" and "/": the url-safe alphabet writes them "-" and "_".
    secret = "key>>>???value"
    for shift in range(6):
        blob = os.urandom(shift) + secret.encode() + os.urandom(5)
        (tmp_path / f"std{shift}.json").write_text(json.dumps({"b64": base64.b64encode(blob).decode()}))
        (tmp_path / f"url{shift}.txt").write_bytes(base64.urlsafe_b64encode(blob))

    leaks = found(audit_artifacts([tmp_path], {"tls_server_key": secret}))

    assert leaks == {(f"std{s}.json", "tls_server_key", "base64") for s in range(6)} | {
        (f"url{s}.txt", "tls_server_key", "base64url") for s in range(6)
    }


def test_url_encoded_in_a_deploy_record(tmp_path: Path) -> None:
    url = f"mqtt://board:{urllib.parse.quote(TRICKY, safe='')}@127.0.0.1:1883"
    (tmp_path / "deploy.json").write_text(json.dumps({"broker": url}))
    (tmp_path / "form.txt").write_text(urllib.parse.urlencode({"password": TRICKY}))

    leaks = found(audit_artifacts([tmp_path], SECRETS))

    assert leaks == {("deploy.json", BROKER, "url-encoded"), ("form.txt", BROKER, "url-encoded")}


# -- where it looks, and where it does not -------------------------------------------------------


def test_a_secret_across_every_chunk_border(tmp_path: Path) -> None:
    for chunk in (1, 7, 16):
        for start in range(40):
            path = tmp_path / f"c{chunk}-{start}.log"
            path.write_bytes(b"x" * start + TOKEN.encode() + b"y" * 3)
            [leak] = audit_artifacts([path], {HOST: TOKEN}, chunk_bytes=chunk)
            assert (leak.form, leak.offset) == ("plain", start), (chunk, start)
            path.unlink()


def test_a_large_file_is_searched_in_bounded_memory(tmp_path: Path) -> None:
    rng = random.Random(7)
    size = 48 * CHUNK_BYTES
    log = bytearray(noise(rng, 2 * CHUNK_BYTES) * (size // (2 * CHUNK_BYTES)))
    # Across the borders of the 1st and 20th chunks (in hex), and at the very end.
    hex_at = CHUNK_BYTES - 5
    plain_at = 20 * CHUNK_BYTES - len(WIFI_VALUE) // 2
    end_at = size - len(TOKEN)
    log[hex_at : hex_at + 2 * len(TRICKY.encode())] = TRICKY.encode().hex().encode()
    log[plain_at : plain_at + len(WIFI_VALUE)] = WIFI_VALUE.encode()
    log[end_at:] = TOKEN.encode()
    (tmp_path / "serial-board.log").write_bytes(log)
    del log

    tracemalloc.start()
    try:
        leaks = audit_artifacts([tmp_path], SECRETS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert {(leak.key, leak.form, leak.offset) for leak in leaks} == {
        (BROKER, "hex", hex_at),
        (WIFI, "plain", plain_at),
        (HOST, "plain", end_at),
    }
    assert peak < 8 * CHUNK_BYTES, f"peak {peak} bytes for a {size}-byte file"


def test_a_clean_tree_has_no_leak(tmp_path: Path) -> None:
    rng = random.Random(3)
    (tmp_path / "session").mkdir()
    (tmp_path / "session" / "serial-virtual.log").write_bytes(noise(rng, 200_000))
    # Near misses: each secret cut short by one character, its hex cut short by one digit.
    near = [value[:-1] for value in SECRETS.values()] + [v.encode().hex()[:-1] for v in SECRETS.values()]
    (tmp_path / "near.txt").write_text("\n".join(near))
    (tmp_path / "empty.log").write_bytes(b"")

    assert audit_artifacts([tmp_path], SECRETS) == []
    check_artifacts([tmp_path], SECRETS)


def test_skipped_files_and_folders_are_not_searched(tmp_path: Path) -> None:
    (tmp_path / "flash").mkdir()
    (tmp_path / "flash" / "config.json").write_text(json.dumps({"wifi": WIFI_VALUE}))
    (tmp_path / "secrets.env").write_text(f"WIFI={WIFI_VALUE}\n")
    (tmp_path / "serial.log").write_text(f"leaked {WIFI_VALUE}\n")

    leaks = audit_artifacts(
        [tmp_path], SECRETS, skip=[tmp_path / "flash", tmp_path / "secrets.env", tmp_path / "absent"]
    )

    assert found(leaks) == {("serial.log", WIFI, "plain")}
    assert audit_artifacts([tmp_path / "flash"], SECRETS, skip=[tmp_path]) == []


def test_binary_files(tmp_path: Path) -> None:
    rng = random.Random(5)
    blob = rng.randbytes(50_000)
    at = 12_345
    (tmp_path / "flash.bin").write_bytes(blob[:at] + TOKEN.encode() + b"\x00\xff\xfe" + blob[at:])
    (tmp_path / "core.dump").write_bytes(
        b"\x00" * 1000 + WIFI_VALUE.encode().hex().upper().encode() + b"\xff"
    )
    (tmp_path / "clean.bin").write_bytes(blob)

    leaks = audit_artifacts([tmp_path], SECRETS)

    assert {(str(leak.path), leak.key, leak.form, leak.offset) for leak in leaks} == {
        ("core.dump", WIFI, "hex", 1000),
        ("flash.bin", HOST, "plain", at),
    }


def test_symlinks_are_not_followed_and_special_files_not_opened(tmp_path: Path) -> None:
    outside, root = tmp_path / "outside", tmp_path / "root"
    outside.mkdir()
    root.mkdir()
    (outside / "secrets.txt").write_text(WIFI_VALUE)
    (root / "to-file").symlink_to(outside / "secrets.txt")
    (root / "to-folder").symlink_to(outside, target_is_directory=True)
    (root / "real.log").write_text(TOKEN)
    (root / "alias.log").symlink_to(root / "real.log")  # inside: audited once, as itself
    os.mkfifo(root / "pipe")  # opening it for reading would wait for a writer

    leaks = audit_artifacts([root], SECRETS)

    assert found(leaks) == {("real.log", HOST, "plain")}


def test_a_file_is_audited_once_however_it_is_reached(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "serial.log").write_text(TOKEN)
    os.link(tmp_path / "run" / "serial.log", tmp_path / "hard.log")

    leaks = audit_artifacts([tmp_path, tmp_path / "run", tmp_path / "run" / "serial.log"], SECRETS)

    assert [(str(leak.path), leak.root) for leak in leaks] == [("hard.log", tmp_path)]


def test_overlapping_secrets_and_one_value_under_two_keys(tmp_path: Path) -> None:
    # One secret inside another, and the same value named twice: each key is reported.
    secrets = {"a": "abcdefghij", "b": "defghijklm", "c": "abcdefghij", "d": "cdefgh"}
    (tmp_path / "log").write_text("..abcdefghijklm..")

    leaks = audit_artifacts([tmp_path], secrets)

    assert {(leak.key, leak.offset) for leak in leaks} == {("a", 2), ("b", 5), ("c", 2), ("d", 4)}


def test_many_near_misses_do_not_hide_a_later_hit(tmp_path: Path) -> None:
    secret = "Abc-Def_Ghi"
    # Folded ("abc+def/ghi"), these match the needle; the bytes do not.
    misses = b"abc+def/ghi " * (3 * MAX_UNCONFIRMED)
    (tmp_path / "log").write_bytes(misses + secret.encode())

    [leak] = audit_artifacts([tmp_path], {"k": secret})

    assert (leak.form, leak.offset) == ("plain", len(misses))


# -- archives ------------------------------------------------------------------------------------


def test_compressed_artifacts_are_looked_into(tmp_path: Path) -> None:
    (tmp_path / "serial.log.gz").write_bytes(gzip.compress(f"boot\n{WIFI_VALUE}\n".encode()))
    member = json.dumps({"payload": TRICKY}).encode()
    with tarfile.open(tmp_path / "run.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("run/mqtt.jsonl")
        info.size = len(member)
        tar.addfile(info, io.BytesIO(member))
    with zipfile.ZipFile(tmp_path / "bundle.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("report/index.html", f"<p>{TOKEN}</p>" * 10)
        archive.writestr("logs/old.log.gz", gzip.compress(TOKEN.encode().hex().encode()))

    leaks = found(audit_artifacts([tmp_path], SECRETS))

    assert leaks == {
        ("serial.log.gz!serial.log", WIFI, "plain"),
        ("run.tar.gz!run.tar", BROKER, "json-escaped"),
        ("bundle.zip!report/index.html", HOST, "plain"),
        ("bundle.zip!logs/old.log.gz!logs/old.log", HOST, "hex"),
    }


def test_an_archive_that_does_not_decompress_is_not_vouched_for(tmp_path: Path) -> None:
    whole = gzip.compress(("x" * 1000 + WIFI_VALUE + "y" * 100_000).encode())
    (tmp_path / "cut.log.gz").write_bytes(whole[: len(whole) // 2])  # a run killed mid-write
    (tmp_path / "trace.jsonl").write_text(json.dumps(TRICKY))

    with pytest.raises(AuditIncomplete) as incomplete:
        audit_artifacts([tmp_path], SECRETS)
    [unaudited] = incomplete.value.unaudited
    assert (unaudited.path, unaudited.member, unaudited.root) == (Path("cut.log.gz"), "cut.log", tmp_path)
    assert "cut.log.gz!cut.log: " in str(incomplete.value)
    # What was read is reported: the secret sits in the half that arrived.
    assert found(incomplete.value.leaks) == {
        ("cut.log.gz!cut.log", WIFI, "plain"),
        ("trace.jsonl", BROKER, "json-escaped"),
    }
    # A leak outranks an incomplete audit; the message says what was not audited.
    with pytest.raises(SecretsLeaked, match=r"not audited: .*cut\.log\.gz!cut\.log"):
        check_artifacts([tmp_path], SECRETS)
    (tmp_path / "trace.jsonl").unlink()
    clean = gzip.compress(b"x" * 100_000)
    (tmp_path / "cut.log.gz").write_bytes(clean[: len(clean) // 2])
    with pytest.raises(AuditIncomplete) as incomplete:
        check_artifacts([tmp_path], SECRETS)
    assert incomplete.value.leaks == []


def test_a_corrupt_zip_member_does_not_stop_the_others(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "bundle.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.log", "boot\n" * 1000)
        archive.writestr("b.log", f"{TOKEN}\n" * 100)  # deflated: not in the zip's own bytes
    data = bytearray((tmp_path / "bundle.zip").read_bytes())
    data[30 + len("a.log") + 5] ^= 0xFF  # in a.log's compressed bytes
    (tmp_path / "bundle.zip").write_bytes(data)

    with pytest.raises(SecretsLeaked) as leaked:
        check_artifacts([tmp_path], SECRETS)

    assert found(leaked.value.leaks) == {("bundle.zip!b.log", HOST, "plain")}
    assert [(u.path, u.member) for u in leaked.value.unaudited] == [(Path("bundle.zip"), "a.log")]


def test_a_missing_root_is_not_vouched_for(tmp_path: Path) -> None:
    with pytest.raises(AuditIncomplete, match="absent: No such file or directory"):
        audit_artifacts([tmp_path / "absent"], SECRETS)


# -- what the audit says -------------------------------------------------------------------------


def test_messages_name_the_file_and_key_never_the_value(tmp_path: Path) -> None:
    (tmp_path / "serial.log").write_text(f'@rig {{"hex": "{TRICKY.encode().hex()}"}}\n')
    (tmp_path / "run.json").write_text(json.dumps({"message": TRICKY, "wifi": WIFI_VALUE}))
    (tmp_path / "cut.gz").write_bytes(gzip.compress(TOKEN.encode() * 1000)[:40])

    with pytest.raises(SecretsLeaked) as leaked:
        check_artifacts([tmp_path], SECRETS)
    error = leaked.value
    text = str(error)
    assert f"{tmp_path / 'serial.log'}: {BROKER} (hex) at byte 14" in text
    assert f"{tmp_path / 'run.json'}: {BROKER} (json-escaped)" in text
    assert f"{tmp_path / 'run.json'}: {WIFI} (plain)" in text
    assert f"not audited: {tmp_path / 'cut.gz'}" in text

    said = [
        text,
        repr(error),
        "".join(traceback.format_exception(error)),
        # What pytest prints of a failure: each frame's arguments, and its locals with -l.
        str(leaked.getrepr(style="long", funcargs=True, showlocals=True)),
        *(f"{leak!s} {leak!r}" for leak in error.leaks),
        *(f"{u!s} {u!r}" for u in error.unaudited),
    ]
    for value in SECRETS.values():
        for form in (value, value.encode().hex(), json.dumps(value)[1:-1], repr(value)[1:-1]):
            assert not any(form in words for words in said)


def test_a_short_secret_is_searched_as_written_and_never_audited_clean(tmp_path: Path) -> None:
    (tmp_path / "log").write_text("pin 1234 and the hunter2\n")
    (tmp_path / "dump.txt").write_text("payload 0x31323334\n")  # the PIN's bytes, in hex
    secrets = {"pin": "1234", "empty": "", "pw": "hunter2"}

    with pytest.raises(AuditIncomplete) as incomplete:
        audit_artifacts([tmp_path], secrets)

    error = incomplete.value
    assert error.too_short == ["pin"]
    assert [str(u) for u in error.unaudited] == [
        "pin: secret shorter than 6 characters, so not fully audited (searched as written, where a "
        "hit may be chance; not in base64): use a longer secret"
    ]
    shown = {(leak.path.name, leak.key, leak.form, leak.possible) for leak in error.leaks}
    assert shown == {
        ("log", "pin", f"plain; {POSSIBLE}", True),
        ("dump.txt", "pin", f"hex; {POSSIBLE}", True),
        ("log", "pw", "plain", False),
    }
    [possible] = [leak for leak in error.leaks if leak.path.name == "log" and leak.possible]
    assert (
        str(possible)
        == f"{tmp_path / 'log'}: pin (plain; possible leak: secret under 6 characters) at byte 4"
    )
    text = str(error)
    assert "pin: secret shorter than 6 characters" in text
    assert "1234" not in text and "31323334" not in text
    assert too_short(secrets) == ["pin"], "an empty value is no secret"


def test_a_short_secret_found_nowhere_still_leaves_the_audit_incomplete(tmp_path: Path) -> None:
    (tmp_path / "log").write_text("nothing of it here\n")
    with pytest.raises(AuditIncomplete, match="wifi_password: secret shorter than 6") as incomplete:
        audit_artifacts([tmp_path], {"wifi_password": "abc12", "pw": "hunter2"})
    assert incomplete.value.leaks == [] and incomplete.value.too_short == ["wifi_password"]
    with pytest.raises(AuditIncomplete, match="1 not audited"):
        check_artifacts([tmp_path], {"wifi_password": "abc12"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert audit_artifacts([tmp_path], {"pw": "hunter2!", "none": ""}) == []  # clean as before


def test_a_possible_leak_of_a_short_secret_fails_the_check(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"message": 'login pw=ab"c'}))
    with pytest.raises(SecretsLeaked) as leaked:
        check_artifacts([tmp_path], {"broker_password": 'ab"c'})
    text = str(leaked.value)
    assert f"broker_password (json-escaped; {POSSIBLE})" in text
    assert "not audited: broker_password: secret shorter than 6 characters" in text
    assert 'ab"c' not in text and 'ab\\"c' not in text
