"""Keys: what an engineer gives `analyze` so that Wireshark decrypts SMB 3 encryption and sealed
DCE/RPC. Each encrypted sample, with its keys, gives the findings of its clear-text twin; without
them, the report says what stayed encrypted and which option unlocks it."""
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import analyzer
import samples
from samples import csvp_scenarios
from samples.smb3_encryption import smb30_keys
from samples.rsvd_scenarios import SESSION_KEYS

ROOT = Path(__file__).resolve().parent.parent
ENCRYPTED, CLEAR = samples.path("rsvd_encrypted"), samples.path("rsvd_shared_disk")
SEALED = samples.path("clusprep_sealed")
KERBEROS = samples.path("clusprep_kerberos")
KEYTAB = samples.SAMPLES_DIR / "clusprep_kerberos.keytab"
PASSWORD = "Clu5ter-Sample"
# What an unauthenticated twin shows that its sealed original cannot: the level observation, and
# its server answering calls below packet privacy
LEVEL_RULES = {"clusprep.insufficient_auth_level", "clusprep.low_auth_accepted"}
SMB_KEYS = ["0x%016X:%s" % (sid, key.hex()) for sid, key in sorted(SESSION_KEYS.items())]


def analyze(*args, tshark=None):
    return subprocess.run([sys.executable, "-m", "analyzer", "--format", "json", "--fail-on", "never",
                           *(("--tshark", tshark.exe) if tshark else ()), *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def doc(*args, tshark=None):
    res = analyze(*args, tshark=tshark)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def findings(d):
    return Counter((f["rule"], f["severity"], tuple(f["frames"])) for f in d["findings"])


def test_smb30_key_derivation_matches_impacket():
    from impacket.smb3 import crypto

    for key in SESSION_KEYS.values():
        s2c, c2s = smb30_keys(key)
        assert c2s == crypto.KDF_CounterMode(key, b"SMB2AESCCM\x00", b"ServerIn \x00", 128)
        assert s2c == crypto.KDF_CounterMode(key, b"SMB2AESCCM\x00", b"ServerOut\x00", 128)


@pytest.mark.tshark_matrix
def test_smb3_encrypted_sample_with_keys_gives_its_clear_twins_findings(tshark):
    with_keys = doc(ENCRYPTED, *[a for k in SMB_KEYS for a in ("--smb-key", k)], tshark=tshark)
    clear = doc(CLEAR, tshark=tshark)
    assert findings(with_keys) == findings(clear) and findings(clear)
    strip = lambda ss: [{k: v for k, v in s.items() if k not in ("latency_p50_ms", "latency_p99_ms")} for s in ss]
    assert strip(with_keys["rsvd_sessions"]) == strip(clear["rsvd_sessions"])
    assert with_keys["rules_not_evaluated"] == [] and with_keys["captures"][0]["encrypted"]["smb3_messages"] == 0


@pytest.mark.tshark_matrix
def test_smb3_encrypted_sample_without_keys_names_what_is_missing(tshark):
    d = doc(ENCRYPTED, tshark=tshark)
    assert d["findings"] == [] and d["rsvd_sessions"] == []
    enc = d["captures"][0]["encrypted"]
    # Wireshark's own count of transform headers
    out = subprocess.run([*tshark.argv, "-n", "-r", str(ENCRYPTED), "-T", "fields",
                          "-e", "smb2.header.transform.msg_size"], capture_output=True, text=True).stdout
    assert enc["smb3_messages"] == sum(len(line.split(",")) for line in out.split("\n") if line.strip())
    assert enc["smb3_sessions"] == ["0x%016X" % sid for sid in sorted(SESSION_KEYS)]
    subjects = {n["subject"]: n for n in d["rules_not_evaluated"]}
    for sid in SESSION_KEYS:
        n = subjects["SMB 3 session 0x%016X" % sid]
        assert n["unlock"].startswith("--smb-key 0x%016X:" % sid) and "rsvd.sense_not_retrieved" in n["rules"]
    text = subprocess.run([sys.executable, "-m", "analyzer", str(ENCRYPTED)], cwd=ROOT, capture_output=True,
                          text=True).stdout
    assert "Encrypted and not decrypted: %d SMB 3 messages" % enc["smb3_messages"] in text


def test_smb_key_forms_and_raw_option_decrypt_alike():
    """0x... (as Wireshark shows smb2.sesid), wire-order hex, and the raw -o uat record."""
    [(sid, key)] = [(s, k) for s, k in SESSION_KEYS.items() if s == 0x0000040000000005]
    wire = sid.to_bytes(8, "little").hex()
    forms = [["--smb-key", "0x%016X:%s" % (sid, key.hex())], ["--smb-key", "%s:%s" % (wire, key.hex())],
             ["-o", "uat:smb2_seskey_list:%s,%s,%s,%s" % ((wire, key.hex()) + tuple(k.hex() for k in smb30_keys(key)))]]
    results = [doc(ENCRYPTED, *f) for f in forms]
    assert all(r["findings"] == results[0]["findings"] for r in results) and results[0]["findings"]
    assert all([s["open_id"] for s in r["rsvd_sessions"]] == [s["open_id"] for s in results[0]["rsvd_sessions"]]
               for r in results)
    # one host, one name: its second open context says NODE2, written as it first named itself
    assert {s["initiator_host"] for s in results[0]["rsvd_sessions"]} == {"NODE2.cluster.example"}


@pytest.mark.parametrize("args, says", [
    (["--smb-key", "nonsense"], "--smb-key"),
    (["--smb-key", "0x1:abcd"], "session key must be 16 or 32 bytes"),
    (["--smb-key", "0102:%s" % ("00" * 16)], "session id must be 8 bytes"),
    (["-o", "novalue"], "NAME:VALUE"),
    (["-o", "no.such.preference:1"], "tshark refused a key or option"),
    (["--keytab", "/nonexistent/keytab"], "is not a file"),
])
def test_bad_keys_are_one_clear_line(args, says):
    res = subprocess.run([sys.executable, "-m", "analyzer", *args, str(ENCRYPTED)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2 and says in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def _by_method(cap):
    """Findings keyed by rule and the methods of the calls at their frames (frame numbers differ:
    the NTLM handshake adds an auth3)."""
    calls = cap.clusprep_calls
    at = {int(r["request_frame"]): r["method"] for _, r in calls.iterrows()}
    at.update({int(r["response_frame"]): r["method"] for _, r in calls.iterrows() if r["response_frame"] != ""})
    return Counter((f.rule, tuple(at.get(x, "?") for x in f.frames)) for f in cap.result.findings)


def test_sealed_clusprep_with_the_password_gives_its_clear_twins_findings(tmp_path):
    twin = tmp_path / "clusprep_clear_twin.pcapng"
    twin.write_bytes(csvp_scenarios.sealed(privacy=False))
    clear = analyzer.load(twin)
    opened = analyzer.load(SEALED, nt_password=PASSWORD)
    level = LEVEL_RULES  # the twin is unauthenticated: those are the twin's own
    want = Counter({k: n for k, n in _by_method(clear).items() if k[0] not in level})
    assert _by_method(opened) == want and ("clusprep.raw_io_without_arb_sectors", ("CprepDiskRawRead",)) in want
    assert list(opened.clusprep_calls["result"]) == list(clear.clusprep_calls["result"])
    assert "sealed" not in set(opened.clusprep_calls["result"])
    assert opened.result.not_evaluated == [] and opened.result.encrypted["sealed_dcerpc_pdus"] == 0
    # without it: nothing read, the rules that need the stubs listed, the option named
    shut = analyzer.load(SEALED)
    assert set(shut.clusprep_calls["result"]) == {"sealed"} and shut.result.findings == []
    [n] = shut.result.not_evaluated
    assert "clusprep.raw_io_without_arb_sectors" in n.rules and "--nt-password" in n.unlock
    assert shut.result.encrypted["sealed_dcerpc_pdus"] == 2 * len(shut.clusprep_calls)


def test_a_wrong_password_is_named_as_such():
    cap = analyzer.load(SEALED, nt_password="not-" + PASSWORD)
    [n] = cap.result.not_evaluated
    assert "was given but did not decrypt" in n.reason and set(cap.clusprep_calls["result"]) == {"sealed"}


def test_keytab_matches_impacket_and_names_the_service():
    from impacket.krb5.keytab import Keytab

    from samples import kerberos

    [entry] = Keytab.loadFile(str(KEYTAB)).entries
    assert entry.main_part["keyblock"]["keyvalue"]["data"] == kerberos.SERVICE_KEY
    assert entry.main_part["keyblock"]["keytype"] == 18 and entry.main_part["vno8"] == kerberos.KVNO


@pytest.mark.tshark_matrix
def test_kerberos_sealed_clusprep_with_the_keytab_gives_its_clear_twins_findings(tshark, tmp_path):
    """A domain's ClusPrep: AP-REQ in the bind, AP-REP, AES256 wrap tokens with header signing.
    Wireshark learns the session key from the ticket (keytab), the acceptor's subkey from the
    AP-REP, and decrypts every stub; the findings are the clear twin's."""
    twin = tmp_path / "clusprep_clear_twin.pcapng"
    twin.write_bytes(csvp_scenarios.sealed(privacy=False))
    opened = doc(KERBEROS, "--keytab", KEYTAB, tshark=tshark)
    clear = doc(twin, tshark=tshark)
    methods = lambda d: [(c["method"], c["result"]) for s in d["clusprep_sequences"] for c in s["sequence"]]
    assert methods(opened) == methods(clear) and "sealed" not in {r for _, r in methods(opened)}
    level = LEVEL_RULES  # the twin is unauthenticated: those are the twin's own
    by_method = lambda d: Counter((f["rule"], tuple(c["method"] for s in d["clusprep_sequences"]
                                                    for c in s["sequence"] if c["frame"] in f["frames"]))
                                  for f in d["findings"] if f["rule"] not in level)
    assert by_method(opened) == by_method(clear) and by_method(clear)
    assert opened["rules_not_evaluated"] == [] and opened["captures"][0]["encrypted"]["sealed_dcerpc_pdus"] == 0


def test_kerberos_without_the_keytab_names_it():
    shut = analyzer.load(KERBEROS)
    [n] = shut.result.not_evaluated
    assert n.unlock.startswith("--keytab") and "Kerberos" in n.unlock and shut.result.findings == []
    assert set(shut.clusprep_calls["result"]) == {"sealed"}
    # Wireshark's own Kerberos dissector, with the keytab, names the ticket's service and learns the subkey
    def fields(field, flt):
        return subprocess.run(["tshark", "-n", "-r", str(KERBEROS), "-o", "kerberos.decrypt:TRUE",
                               "-o", "kerberos.file:%s" % KEYTAB, "-T", "fields", "-e", field, "-Y", flt],
                              capture_output=True, text=True).stdout.split()
    assert fields("kerberos.SNameString", "kerberos.msg_type == 14") == ["host,node1.cluster.example"]
    stubs = fields("dcerpc.decrypted_stub_data", "dcerpc.pkt_type == 0 || dcerpc.pkt_type == 2")
    assert len(stubs) == 2 * len(shut.clusprep_calls) and all(stubs)


def test_the_nt_password_may_come_from_a_file_or_the_environment(tmp_path):
    """Never only argv, which ps shows: --nt-password-file (its first line) and ANALYZE_NT_PASSWORD
    unseal what --nt-password does; both a password and a file is a usage error."""
    import os

    given = doc(SEALED, "--nt-password", PASSWORD)
    assert given["captures"][0]["encrypted"]["sealed_dcerpc_pdus"] == 0 and given["findings"]
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\nignored second line\n")
    assert doc(SEALED, "--nt-password-file", secret)["findings"] == given["findings"]
    res = subprocess.run([sys.executable, "-m", "analyzer", "--format", "json", "--fail-on", "never", str(SEALED)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, ANALYZE_NT_PASSWORD=PASSWORD))
    assert json.loads(res.stdout)["findings"] == given["findings"]
    both = analyze(SEALED, "--nt-password", PASSWORD, "--nt-password-file", secret)
    assert both.returncode == 2 and "give the password once" in both.stderr and both.stderr.count("\n") == 1
    missing = analyze(SEALED, "--smb-key-file", tmp_path / "nope")
    assert missing.returncode == 2 and "--smb-key-file" in missing.stderr and "cannot read it" in missing.stderr
