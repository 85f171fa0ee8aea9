"""Where Wireshark's own rsvd and smb2 dissectors decode the same bytes, they agree with ours.

They know only the Windows layouts, so frames where we chose a seed layout are skipped;
their SRB_STATUS response decoder hits a dissector bug on 4.0, and smb2's HostName reads the
UTF-16 name as one-byte text ("N" for "NODE2"), so neither is compared.
"""
import pytest

import samples
from decoded import field_values

pytestmark = pytest.mark.tshark_matrix  # every tshark of tests/tsharks.py

PCAP = samples.path("rsvd_shared_disk")
HEADER = [
    ("rsvd.svhdx_operation_code", ["msrsvd.header.operation_code"], int),
    ("rsvd.svhdx_status", ["msrsvd.header.status"], int),
    ("rsvd.svhdx_request_id", ["msrsvd.header.request_id"], int),
]
SCSI = [
    ("rsvd.svhdx_length", ["msrsvd.scsi_request.length", "msrsvd.scsi_response.length"], int),
    ("rsvd.svhdx_scsi_cdb_length", ["msrsvd.scsi_request.cdb_length", "msrsvd.scsi_response.cdb_length"], int),
    ("rsvd.svhdx_scsi_data_in", ["msrsvd.scsi_request.data_in", "msrsvd.scsi_response.data_in"], int),
    ("rsvd.svhdx_scsi_srbflags", ["msrsvd.scsi_request.srb_flags", "msrsvd.scsi_response.srb_flags"], int),
    ("rsvd.svhdx_scsi_data_transfer_length",
     ["msrsvd.scsi_request.data_transfer_length", "msrsvd.scsi_response.data_transfer_length"], int),
    ("rsvd.svhdx_scsi_status", ["msrsvd.scsi_response.scsi_status"], int),
    # The built-in shows SrbStatus without its 0x80 auto-sense bit.
    ("rsvd.svhdx_srb_status", ["msrsvd.scsi_response.srb_status"], lambda s: int(s, 0) & 0x7F),
]
DISK_INFO = [
    ("rsvd.svhdx_disk_info_blocksize", ["msrsvd.disk_info_request.block_size", "msrsvd.disk_info_response.block_size"], int),
    ("rsvd.svhdx_disk_info_linkage_id", ["msrsvd.disk_info_request.linkage_id", "msrsvd.disk_info_response.linkage_id"], str),
    ("rsvd.svhdx_disk_info_file_size", ["msrsvd.disk_info_request.file_size", "msrsvd.disk_info_response.file_size"], int),
    ("rsvd.svhdx_disk_info_virtual_disk_id",
     ["msrsvd.disk_info_request.virtual_disk_id", "msrsvd.disk_info_response.virtual_disk_id"], str),
    ("rsvd.svhdx_disk_info_disk_type", ["msrsvd.disk_info_response.disk_type"], int),
    ("rsvd.svhdx_disk_info_disk_format", ["msrsvd.disk_info_response.disk_format"], int),
]
FILE_INFO = [  # the built-in decodes only the response, always as the 24-byte form
    ("rsvd.svhdx_file_info_server_version", ["msrsvd.file_info_response.server_version"], int),
    ("rsvd.svhdx_file_info_sector_size", ["msrsvd.file_info_response.sector_size"], int),
    ("rsvd.svhdx_file_info_physical_sector_size", ["msrsvd.file_info_response.physical_sector_size"], int),
    ("rsvd.svhdx_file_info_virtual_size", ["msrsvd.file_info_response.virtual_size"], int),
]
OPEN_CONTEXT = [
    ("smb2.svhdx_open_device_context.version", ["msrsvd.open_device_context.version"], int),
    ("smb2.svhdx_open_device_context.initiator_id", ["msrsvd.open_device_context.initiator_id"], str),
    ("smb2.svhdx_open_device_context.originator_flags", ["msrsvd.open_device_context.originator_flags"], int),
    ("smb2.svhxd_open_device_context.open_request_id", ["msrsvd.open_device_context.open_request_id"], int),
    ("smb2.svhxd_open_device_context.initiator_host_name_len",
     ["msrsvd.open_device_context.initiator_host_name_length"], int),
    ("smb2.svhdx_open_device_context.server_service_version",
     ["msrsvd.open_device_context.server_service_version"], int),
    ("smb2.svhdx_open_device_context.virtual_sector_size", ["msrsvd.open_device_context.virtual_sector_size"], int),
    ("smb2.svhdx_open_device_context.virtual_size", ["msrsvd.open_device_context.virtual_size"], int),
]
SUPPORT = [
    ("smb2.ioctl.shared_virtual_disk.support", ["msrsvd.support_response.shared_virtual_disk_support"], int),
    ("smb2.ioctl.shared_virtual_disk.handle_state",
     ["msrsvd.support_response.shared_virtual_disk_handle_state"], int),
]
LAYOUTS = ["msrsvd.file_info_response.layout", "msrsvd.open_device_context.layout", "msrsvd.support_response.layout"]


def _conv(f, text):
    return f(text, 0) if f is int else f(text)


@pytest.mark.parametrize("group", [HEADER, SCSI, DISK_INFO, FILE_INFO, OPEN_CONTEXT, SUPPORT],
                         ids=["header", "scsi", "disk_info", "file_info", "open_context", "support"])
def test_builtin_agrees(group):
    fields = LAYOUTS + [b for b, _, _ in group] + [o for _, ours, _ in group for o in ours]
    rows = field_values(PCAP, fields)
    compared = {b: 0 for b, _, _ in group}
    for row in rows:
        if any(v.startswith("seed") for layout in LAYOUTS for v in row[layout]):
            continue
        for builtin, ours, conv in group:
            theirs = [_conv(conv, v) for v in row[builtin]]
            mine = [_conv(conv, v) for o in ours for v in row[o]]
            if not theirs:
                continue
            assert theirs == mine, "frame %s: %s %r vs %s %r" % (row["frame.number"], builtin, theirs, ours, mine)
            compared[builtin] += 1
    assert all(compared.values()), "nothing compared for %s" % [k for k, v in compared.items() if not v]
