"""The DCE/RPC and NTLMSSP sample builders, read back by real tshark.

Two captures: a plain DCOM-style connection (binds with NDR32, NDR64 and bind-time
features, an alter_context, calls, a fragmented response, a fault) plus a rejected bind,
and NTLMv2 connections at PKT_PRIVACY, PKT_INTEGRITY and CONNECT. tshark finds DCE/RPC
on port 49668 by its TCP heuristic; no decode-as is passed.
"""
import hashlib
import hmac
import uuid

import pytest
from Cryptodome.Cipher import ARC4
from Cryptodome.Hash import MD4
from impacket import ntlm

import samples.dcerpc as d
from samples import ntlmssp
from samples.network import Capture, host
from decoded import field_values, run

pytestmark = pytest.mark.tshark_matrix  # every tshark of tests/tsharks.py

IFACE = d.syntax("5ca1ab1e-0000-4000-8000-00000000c5d0", 1)  # unknown to Wireshark: stubs stay opaque
OTHER = d.syntax("5ca1ab1e-0000-4000-8000-00000000c5d1", 2, 1)
UNWANTED = d.syntax("5ca1ab1e-0000-4000-8000-00000000c5d2", 1)
IPID = uuid.UUID("0000b401-0d58-0000-5a1e-c0ffee0d0c00")
CLIENT, SERVER = host(1, "10.1.0.11"), host(2, "10.1.0.12")
PASSWORD = ["-o", "ntlmssp.nt_password:" + ntlmssp.ACCOUNT.password]

BIG = bytes(range(256)) * 2 + b"tail"  # 516 bytes: three fragments at max_frag 200
PLAIN_CALLS = [  # (opnum, request stub, response stub, object uuid, fault, max_frag)
    (3, b"\x01\x00\x00\x00" + b"query" * 7, b"\x02" * 50, IPID, None, None),
    (4, b"\x00" * 8, BIG, IPID, None, 200),
    (99, b"\x04" * 8, b"", None, d.NCA_S_OP_RNG_ERROR, None),
]
SEALED_CALLS = [  # (opnum, request stub, response stub, max_frag); lengths off 16 to exercise padding
    (3, b"secret request stub" * 3, b"secret response stub" * 5, None),
    (5, b"second request", b"a second, longer response" * 2, None),
    (6, b"third", BIG, 200),
    (7, b"fourth", b"last one", None),
]


def plain_capture():
    cap = Capture()
    conn = d.start(cap, CLIENT, SERVER, 50001)
    items = [d.ContextItem(0, IFACE, [d.NDR32]), d.ContextItem(1, IFACE, [d.NDR64]),
             d.ContextItem(2, IFACE, [d.bind_time_features()])]
    calls = [conn.bind(items, [d.accept(d.NDR32), d.reject(d.PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED),
                               d.negotiate_ack(d.SECURITY_CONTEXT_MULTIPLEXING | d.KEEP_CONNECTION_ON_ORPHAN)])]
    calls.append(conn.alter_context(
        [d.ContextItem(3, OTHER, [d.NDR32]), d.ContextItem(4, UNWANTED, [d.NDR32]),
         d.ContextItem(5, UNWANTED, [d.NDR32])],
        [d.accept(d.NDR32), d.reject(d.ABSTRACT_SYNTAX_NOT_SUPPORTED), d.reject(user=True)]))
    for opnum, rq, rs, obj, status, frag in PLAIN_CALLS:
        calls.append(conn.call(0, opnum, rq, rs, object_uuid=obj, fault_status=status, max_frag=frag))
    conn.close()
    nak = d.start(cap, CLIENT, SERVER, 50002)
    calls.append(nak.bind_nak([d.ContextItem(0, IFACE, [d.NDR32])], d.PROTOCOL_VERSION_NOT_SUPPORTED))
    nak.close()
    return cap.pcapng(), calls


def secure_capture():
    cap = Capture()
    conns = {}
    for port, level in ((50010, d.RPC_C_AUTHN_LEVEL_PKT_PRIVACY), (50011, d.RPC_C_AUTHN_LEVEL_PKT_INTEGRITY),
                        (50012, d.RPC_C_AUTHN_LEVEL_CONNECT)):
        conn = d.start(cap, CLIENT, SERVER, port)
        conn.bind([d.ContextItem(0, IFACE, [d.NDR32])], ntlm=ntlmssp.Handshake(), level=level)
        for opnum, rq, rs, frag in SEALED_CALLS:
            conn.call(0, opnum, rq, rs, object_uuid=IPID, max_frag=frag)
        conn.close()
        conns[level] = conn
    return cap.pcapng(), conns


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    data, calls = plain_capture()
    path = tmp_path_factory.mktemp("dcerpc") / "plain.pcapng"
    path.write_bytes(data)
    return path, calls


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    data, conns = secure_capture()
    path = tmp_path_factory.mktemp("dcerpc") / "secure.pcapng"
    path.write_bytes(data)
    return path, conns


def rows(pcap, fields, *extra):
    return {int(r["frame.number"]): r for r in field_values(pcap, fields, *extra, lua=False)}


def hexbytes(values):
    return [bytes.fromhex(v.replace(":", "")) for v in values]


def test_rebuilds_are_byte_identical():
    assert plain_capture()[0] == plain_capture()[0]
    assert secure_capture()[0] == secure_capture()[0]


def test_every_pdu_is_seen_with_its_ids(plain):
    pcap, calls = plain
    r = rows(pcap, ["dcerpc.pkt_type", "dcerpc.cn_call_id", "dcerpc.cn_ctx_id", "dcerpc.opnum",
                    "dcerpc.cn_flags", "dcerpc.obj_id"], "-Y", "dcerpc")
    seen = [(int(x["dcerpc.pkt_type"][0]), int(x["dcerpc.cn_call_id"][0]), x["dcerpc.cn_ctx_id"],
             x["dcerpc.opnum"]) for f, x in sorted(r.items())]
    assert seen == [
        (d.BIND, 1, ["0", "1", "2"], []), (d.BIND_ACK, 1, [], []),
        (d.ALTER_CONTEXT, 2, ["3", "4", "5"], []), (d.ALTER_CONTEXT_RESP, 2, [], []),
        (d.REQUEST, 3, ["0"], ["3"]), (d.RESPONSE, 3, ["0"], ["3"]),
        (d.REQUEST, 4, ["0"], ["4"]), *[(d.RESPONSE, 4, ["0"], ["4"])] * 3,
        (d.REQUEST, 5, ["0"], ["99"]), (d.FAULT, 5, ["0"], ["99"]),
        (d.BIND, 1, ["0"], []), (d.BIND_NAK, 1, [], []),
    ]
    frames = [f for c in calls for f in c.request_frames + c.response_frames]
    assert sorted(frames) == sorted(r)  # the frame numbers the builder reports are the PDUs tshark shows
    request = r[calls[2].request_frames[0]]
    assert request["dcerpc.cn_flags"] == ["0x83"] and request["dcerpc.obj_id"] == [str(IPID)]


def test_bind_items_and_ack_results_are_what_was_sent(plain):
    pcap, calls = plain
    fields = ["dcerpc.cn_bind_to_uuid", "dcerpc.cn_bind_if_ver", "dcerpc.cn_bind_if_ver_minor",
              "dcerpc.cn_bind_trans_id", "dcerpc.cn_bind_trans_ver", "dcerpc.cn_ack_result", "dcerpc.cn_ack_reason",
              "dcerpc.cn_ack_trans_id", "dcerpc.cn_bind_trans_btfn", "dcerpc.cn_sec_addr", "dcerpc.cn_reject_reason"]
    r = rows(pcap, fields, "-Y", "dcerpc")
    bind_, ack = r[calls[0].request_frames[0]], r[calls[0].response_frames[0]]
    assert bind_["dcerpc.cn_bind_to_uuid"] == [str(IFACE.uuid)] * 3
    assert bind_["dcerpc.cn_bind_trans_id"] == [str(d.NDR32.uuid), str(d.NDR64.uuid),
                                                "6cb71c2c-9812-4540-0300-000000000000"]
    assert bind_["dcerpc.cn_bind_trans_ver"] == ["2", "1", "1"]
    assert ack["dcerpc.cn_ack_result"] == ["0", "2", "3"]
    assert ack["dcerpc.cn_ack_reason"] == ["2"]  # shown for the provider rejection only
    assert ack["dcerpc.cn_bind_trans_btfn"] == ["0x0003"]  # negotiate_ack: the reason field holds the features
    assert ack["dcerpc.cn_ack_trans_id"][0] == str(d.NDR32.uuid)
    assert ack["dcerpc.cn_sec_addr"] == ["49668"]
    alter, resp = r[calls[1].request_frames[0]], r[calls[1].response_frames[0]]
    assert alter["dcerpc.cn_bind_if_ver"][0] == "2" and alter["dcerpc.cn_bind_if_ver_minor"][0] == "1"
    assert resp["dcerpc.cn_ack_result"] == ["0", "2", "1"]
    assert resp["dcerpc.cn_ack_reason"][0] == str(d.ABSTRACT_SYNTAX_NOT_SUPPORTED)
    assert resp["dcerpc.cn_sec_addr"] == []
    assert r[calls[-1].response_frames[0]]["dcerpc.cn_reject_reason"] == [str(d.PROTOCOL_VERSION_NOT_SUPPORTED)]


def test_stubs_arrive_whole_and_fragments_reassemble(plain):
    pcap, calls = plain
    r = rows(pcap, ["dcerpc.stub_data", "dcerpc.cn_flags", "dcerpc.cn_alloc_hint", "dcerpc.cn_frag_len"],
             "-Y", "dcerpc.pkt_type == 0 || dcerpc.pkt_type == 2")
    first = calls[2]
    assert hexbytes(r[first.request_frames[0]]["dcerpc.stub_data"]) == [PLAIN_CALLS[0][1]]
    assert hexbytes(r[first.response_frames[0]]["dcerpc.stub_data"]) == [PLAIN_CALLS[0][2]]
    frags = calls[3].response_frames
    assert len(frags) == 3
    assert [r[f]["dcerpc.cn_flags"] for f in frags] == [["0x01"], ["0x00"], ["0x02"]]
    assert [int(r[f]["dcerpc.cn_alloc_hint"][0]) for f in frags] == [516, 340, 164]
    assert all(int(r[f]["dcerpc.cn_frag_len"][0]) <= 200 for f in frags)
    assert hexbytes(r[frags[-1]]["dcerpc.stub_data"]) == [BIG]


def test_fault_status_is_decoded(plain):
    pcap, calls = plain
    r = rows(pcap, ["dcerpc.cn_status", "dcerpc.cn_flags.dne", "_ws.col.Info"], "-Y", "dcerpc.pkt_type == 3")
    fault = r[calls[4].response_frames[0]]
    assert int(fault["dcerpc.cn_status"][0], 16) == d.NCA_S_OP_RNG_ERROR
    assert fault["dcerpc.cn_flags.dne"] == ["1"]
    assert "nca_op_rng_error" in fault["_ws.col.Info"][0]


@pytest.mark.parametrize("which,extra", [("plain", []), ("secure", []), ("secure", PASSWORD)])
def test_no_malformed_packets_or_warnings(request, which, extra):
    pcap = request.getfixturevalue(which)[0]
    # a bind_nak is a warning by design; nothing else may be
    res = run(pcap, *extra, "-Y", "_ws.malformed || (_ws.expert.severity >= warning && !dcerpc.bind_not_acknowledged)",
              lua=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""


def _secure_rows(pcap, level, *extra):
    r = rows(pcap, ["tcp.srcport", "tcp.dstport", "dcerpc.pkt_type", "dcerpc.auth_level", "dcerpc.auth_pad_len",
                    "dcerpc.cn_auth_len", "dcerpc.stub_data", "dcerpc.encrypted_stub_data",
                    "dcerpc.decrypted_stub_data", "ntlmssp.verf.body"],
             *extra, "-Y", "dcerpc.pkt_type <= 2")
    port = {d.RPC_C_AUTHN_LEVEL_PKT_PRIVACY: "50010", d.RPC_C_AUTHN_LEVEL_PKT_INTEGRITY: "50011",
            d.RPC_C_AUTHN_LEVEL_CONNECT: "50012"}[level]
    return [x for f, x in sorted(r.items()) if port in x["tcp.srcport"] + x["tcp.dstport"]]


def _expected_pdus(protected):
    """(is request, this fragment's stub, the whole stub on a call's last fragment) per PDU."""
    out = []
    for _, rq, rs, frag in SEALED_CALLS:
        out.append((True, rq, rq))
        sizes = d.fragment_sizes(len(rs), frag or d.MAX_FRAG, d.ResponseHead.sizeof(), protected)
        offset = 0
        for n, size in enumerate(sizes):
            out.append((False, rs[offset:offset + size], rs if n == len(sizes) - 1 else None))
            offset += size
    return out


def test_sealed_stubs_are_opaque_without_the_password(secure):
    pdus = _secure_rows(secure[0], d.RPC_C_AUTHN_LEVEL_PKT_PRIVACY)
    expected = _expected_pdus(True)
    assert len(pdus) == len(expected) and sum(1 for e in expected if e[2] is None) == 3  # BIG in 4 fragments
    for x, (_, fragment, _) in zip(pdus, expected):
        assert x["dcerpc.auth_level"] == ["6"] and x["dcerpc.cn_auth_len"] == ["16"]
        assert x["dcerpc.stub_data"] == [] and x["dcerpc.decrypted_stub_data"] == []
        sealed = hexbytes(x["dcerpc.encrypted_stub_data"])[0]
        # the stub and its padding to 16, sealed together
        assert len(sealed) == len(fragment) + int(x["dcerpc.auth_pad_len"][0]) and len(sealed) % 16 == 0
        assert fragment not in sealed


def test_sealed_stubs_decrypt_with_the_password(secure):
    pdus = _secure_rows(secure[0], d.RPC_C_AUTHN_LEVEL_PKT_PRIVACY, *PASSWORD)
    expected = _expected_pdus(True)
    for x, (_, fragment, whole) in zip(pdus, expected):
        # a last fragment shows the whole reassembled stub, the others their own part
        assert hexbytes(x["dcerpc.decrypted_stub_data"]) == [whole if whole is not None else fragment]
    # each direction numbers its messages from 0 (the sequence number is clear in the signature)
    seqs = [int.from_bytes(hexbytes(x["ntlmssp.verf.body"])[0][8:], "little") for x in pdus]
    for direction in (True, False):
        mine = [s for s, e in zip(seqs, expected) if e[0] == direction]
        assert mine == list(range(len(mine)))


def test_wireshark_derives_our_session_key(secure):
    pcap, conns = secure
    r = rows(pcap, ["_ws.expert.message"], *PASSWORD, "-Y", "ntlmssp.messagetype == 3")
    key = conns[d.RPC_C_AUTHN_LEVEL_PKT_PRIVACY].handshakes[0].exported_session_key.hex()
    assert len(r) == 3
    for x in r.values():
        assert "NTLMSSP SessionKey (%s)" % key in x["_ws.expert.message"]


def test_integrity_signs_but_leaves_stubs_clear(secure):
    pdus = _secure_rows(secure[0], d.RPC_C_AUTHN_LEVEL_PKT_INTEGRITY)
    expected = _expected_pdus(True)
    assert len(pdus) == len(expected)
    for x, (_, fragment, whole) in zip(pdus, expected):
        assert x["dcerpc.auth_level"] == ["5"] and x["dcerpc.cn_auth_len"] == ["16"]
        assert x["dcerpc.encrypted_stub_data"] == []
        if whole is not None:
            assert hexbytes(x["dcerpc.stub_data"]) == [whole]


def test_connect_level_authenticates_the_bind_only(secure):
    pcap = secure[0]
    pdus = _secure_rows(pcap, d.RPC_C_AUTHN_LEVEL_CONNECT)
    expected = _expected_pdus(False)
    assert len(pdus) == len(expected)
    for x, (_, fragment, whole) in zip(pdus, expected):
        assert x["dcerpc.cn_auth_len"] == ["0"]
        if whole is not None:
            assert hexbytes(x["dcerpc.stub_data"]) == [whole]
    r = rows(pcap, ["dcerpc.auth_level", "ntlmssp.messagetype"], "-Y", "tcp.port == 50012 && dcerpc.cn_auth_len > 0")
    assert [(x["dcerpc.auth_level"], x["ntlmssp.messagetype"]) for f, x in sorted(r.items())] == [
        (["2"], ["0x00000001"]), (["2"], ["0x00000002"]), (["2"], ["0x00000003"])]


# -- the crypto, against independent implementations (impacket, pycryptodome) ---------
def test_md4_matches_rfc1320_and_pycryptodome():
    assert ntlmssp.md4(b"").hex() == "31d6cfe0d16ae931b73c59d7e0c089c0"
    assert ntlmssp.md4(b"message digest").hex() == "d9130a8164549fe818874806e1c7014b"
    for n in (55, 56, 63, 64, 65, 1000):
        data = bytes(i * 7 & 0xFF for i in range(n))
        assert ntlmssp.md4(data) == MD4.new(data).digest()


def test_ntlmv2_keys_match_impacket():
    h = ntlmssp.Handshake()
    h.negotiate(), h.challenge()
    auth = h.authenticate()
    a = ntlmssp.ACCOUNT
    key_nt = ntlm.NTOWFv2(a.user, a.password, a.domain)
    assert key_nt == h.response_key_nt
    head = ntlmssp.AuthenticateHead.parse(auth)
    nt = auth[head.nt_response.offset:][:head.nt_response.len]
    proof = ntlm.hmac_md5(key_nt, h.server_challenge + nt[16:])
    assert nt[:16] == proof
    base = ntlm.hmac_md5(key_nt, proof)
    kx = ntlm.KXKEY(ntlmssp.SERVER_FLAGS, base, bytes(24), h.server_challenge, a.password, "", "")
    enc = auth[head.session_key.offset:][:head.session_key.len]
    assert ntlm.generateEncryptedSessionKey(kx, h.exported_session_key) == enc
    mic = hmac.new(h.exported_session_key, b"".join(h.messages[:2]) + auth[:72] + bytes(16) + auth[88:],
                   hashlib.md5).digest()
    assert head.mic == mic
    key = h.exported_session_key
    assert h.client_signer().signing_key == ntlm.SIGNKEY(ntlmssp.SERVER_FLAGS, key, "Client")
    assert h.server_signer().signing_key == ntlm.SIGNKEY(ntlmssp.SERVER_FLAGS, key, "Server")


def test_sealed_request_matches_impacket_seal():
    h = ntlmssp.Handshake()
    signer = h.client_signer()
    auth = d.Auth(d.RPC_C_AUTHN_WINNT, d.RPC_C_AUTHN_LEVEL_PKT_PRIVACY, 0)
    stub = b"secret request stub" * 3
    pdu = d.request(2, 0, 3, stub, object_uuid=IPID, auth=auth, protect=signer.seal)
    pad = -len(stub) % 16
    head, trailer = pdu[:40], pdu[40 + len(stub) + pad:][:8]
    sealing_key = ntlm.SEALKEY(ntlmssp.SERVER_FLAGS, h.exported_session_key, "Client")
    handle = ARC4.new(sealing_key).encrypt
    sealed, sig = ntlm.SEAL(ntlmssp.SERVER_FLAGS, h.client_signer().signing_key, sealing_key,
                            head + stub + bytes(pad) + trailer, stub + bytes(pad), 0, handle)
    assert pdu == head + sealed + trailer + sig.getData()
