"""rsvd_guest_validation.pcapng: Test-Cluster validating a guest cluster's shared VHDX, seen from
the guest network, where both layers of one disk travel: the validation node's ClusPrep calls
(MS-CSVP IClusterStorage3) to each guest node, and each node's own persistent-reservation
commands to the shared VHDX (MS-RSVD tunnelled SCSI), which those calls cause.

NODE3 (10.0.0.31) validates; NODE1 (10.0.0.11) and NODE2 (10.0.0.12) hold disk.vhdx on the
Scale-Out File Server (10.0.0.20). The ClusPrep calls are sealed (NTLM, PKT_PRIVACY) as
Windows sends them: `analyze --nt-password Clu5ter-Sample` (samples.ntlmssp.ACCOUNT) reads them. The ClusPrep disk (GUID DISK_GUID) and the RSVD disk share the
reservation keys K1 and K2, so the analyzer tells them as one disk: NODE1 registers and reserves,
NODE2 registers, its WRITE is refused, it preempts NODE1, NODE1 is told RESERVATIONS PREEMPTED,
NODE2 releases and clears.
"""
from __future__ import annotations

from dissectors.definitions import csvp
from . import dcerpc, ntlmssp
from .csvp_scenarios import CLIENT, DISK, NODE1, NODE2, ClusPrepClient, disk_props
from .network import Capture
from .rsvd_cluster import CHECK_CONDITION, RESERVATION_CONFLICT, SRB_ERROR, SRB_ERROR_AUTOSENSE, cdb, fixed_sense, pr_out, two_nodes
from .rsvd_scenarios import DISK_SIZE, SECTOR, pattern

K1, K2 = 0x0000B10C00000011, 0x0000B10C00000012  # the keys validation asks each node to register
S2, S3 = csvp.IClusterStorage2, csvp.IClusterStorage3


def prepared(cap: Capture, node, port: int) -> ClusPrepClient:
    """A ClusPrep connection to `node`, prepared (3.2.4.1-3.2.4.4) with the disk attached (3.2.4.9)."""
    c = ClusPrepClient(dcerpc.start(cap, CLIENT, node, port))
    # both interfaces in one bind, sealed, as Windows sends them
    c.conn.bind(c._items(S2, True) + c._items(S3, True), ntlm=ntlmssp.Handshake(),
                level=dcerpc.RPC_C_AUTHN_LEVEL_PKT_PRIVACY)
    c.call(S2, "CprepPrepareNode", outs=dict(pulMajorVersion=10, pulMinorVersion=0, pdwCPrepVersion=0x0005))
    c.call(S2, "CprepPrepareNodePhase2", dict(AttachDisksOnSystemBus=1), dict(pulNumDisks=1))
    c.call(S2, "CprepDiskGetProps", dict(DiskId=DISK), dict(DiskProps=disk_props()))
    c.call(S2, "CprepDiskAttach", dict(DiskId=DISK))
    return c


def disk_info(c, fid: bytes, name: str) -> None:
    """What a node asks first of an open shared disk (MS-VSOD 3.2.2 step 2)."""
    c.tunnel("RSVD_TUNNEL_GET_FILE_INFO_OPERATION",
             dict(_variant="windows", ServerVersion=0, SectorSize=0, PhysicalSectorSize=0, Reserved=0, VirtualSize=0),
             dict(_variant="windows", ServerVersion=2, SectorSize=SECTOR, PhysicalSectorSize=4096, Reserved=0,
                  VirtualSize=DISK_SIZE), file_id=fid)


def guest_validation() -> bytes:
    cap = Capture()
    n1, f1, n2, f2 = two_nodes(cap, disk_info)
    v1, v2 = prepared(cap, NODE1, 50301), prepared(cap, NODE2, 50302)
    # validation clears the disk, then asks NODE1 to register and reserve; NODE1 does it on the disk
    v1.call(S3, "CprepDiskPRClear3", dict(DiskId=DISK, Key=0))
    pr_out(n1, f1, "CLEAR", 0, 0)
    v1.call(S3, "CprepDiskPRRegister3", dict(DiskId=DISK, OldPrKey=0, NewPrKey=K1))
    pr_out(n1, f1, "REGISTER", 0, K1)
    v1.call(S3, "CprepDiskPRReserve3", dict(DiskId=DISK, Key=K1))
    pr_out(n1, f1, "RESERVE", K1, 0)
    # NODE2 registers, and a write of its own is refused while NODE1 holds the disk
    v2.call(S3, "CprepDiskPRRegister3", dict(DiskId=DISK, OldPrKey=0, NewPrKey=K2))
    pr_out(n2, f2, "REGISTER", 0, K2)
    n2.scsi(cdb("WRITE_10", Flags=dict(RdWrProtect=0, DPO=False, FUA=True, FUA_NV=False), LogicalBlockAddress=4096,
                GroupNumber=0, TransferLength=8, Control=0), 10, data_in=False, length=4096, out=pattern(4096, 9),
            file_id=f2, srb_status=SRB_ERROR, scsi_status=RESERVATION_CONFLICT)
    # validation has NODE2 take the disk over: it preempts NODE1's key
    v2.call(S3, "CprepDiskPRPreempt3", dict(DiskId=DISK, OwnerKey=K1, NewKey=K2))
    pr_out(n2, f2, "PREEMPT", K2, K1)
    n1.scsi(cdb("READ_10", Flags=dict(RdWrProtect=0, DPO=False, FUA=False, FUA_NV=False), LogicalBlockAddress=0,
                GroupNumber=0, TransferLength=1, Control=0), 10, data_in=True, length=512, returned=b"",
            file_id=f1, srb_status=SRB_ERROR_AUTOSENSE, scsi_status=CHECK_CONDITION,
            sense=fixed_sense("UNIT_ATTENTION", "RESERVATIONS PREEMPTED"))
    # and clean up: NODE2 releases, then clears every registration
    v2.call(S3, "CprepDiskPRRelease3", dict(DiskId=DISK, Key=K2))
    pr_out(n2, f2, "RELEASE", K2, 0)
    v2.call(S3, "CprepDiskPRClear3", dict(DiskId=DISK, Key=K2))
    pr_out(n2, f2, "CLEAR", K2, 0)
    for v in (v1, v2):
        v.conn.close()
    return cap.pcapng()


SCENARIOS = {"rsvd_guest_validation": guest_validation}
