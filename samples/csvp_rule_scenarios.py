"""clusprep_rule_violations.pcapng: a ClusPrep client that breaks the sequencing rules of
MS-CSVP §3 (each rule of analyzer.rules_clusprep at least once), with the answers a server
gives to such calls. Built from dissectors/definitions/csvp.py like the other ClusPrep samples; the
calls are in clear so every rule can read its parameters.

- storage: a method before CprepPrepareNode, another before Phase2 completed, Phase2 with
  AttachDisksOnSystemBus 0, PR calls on a disk never attached and out of order, raw I/O
  without GetArbSectors, Online without PRArbitrate, a file-system call on a disk not
  online, a partition outside what Online reported and never checked for NTFS,
  StopDefense without Offline, and a call the capture never answers;
- network: SendRTMessage before InitializeNode (which the server serves: it should fail it),
  GetAddRoutesStatus with nothing monitored, ProcessAddRoutes twice;
- firewall: enumeration before InitializeAdapterConfiguration, then an index past the
  adapter count;
- setup: RetrieveSvcSecret answered ERROR_FILE_NOT_FOUND after ConfigSvcSecret stored a secret;
- a request on a presentation context whose bind the capture does not hold, to an object (IPID)
  the calls of another connection use.
"""
from __future__ import annotations

from dissectors.definitions import csvp, dcom
from . import dcerpc
from .csvp_scenarios import CLIENT, DISK, NODE1, NODE2, ClusPrepClient, disk_props, orpcthis
from .network import Capture

ERROR_INVALID_STATE = 0x8007139F
ERROR_FILE_NOT_FOUND = 0x80070002
E_FAIL, E_UNEXPECTED, E_INVALIDARG = 0x80004005, 0x8000FFFF, 0x80070057


def violations() -> bytes:
    cap = Capture()
    S2, N, FW, SET = csvp.IClusterStorage2, csvp.IClusterNetwork2, csvp.IClusterFirewall, csvp.IClusterSetup

    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE1, 50401))
    c.bind(S2)
    c.call(S2, "CprepDiskGetProps", dict(DiskId=DISK), hresult=0x80070548)  # before PrepareNode
    c.call(S2, "CprepPrepareNode", outs=dict(pulMajorVersion=10, pulMinorVersion=0, pdwCPrepVersion=5))
    c.call(S2, "CprepDiskAttach", dict(DiskId=DISK), hresult=0x80070548)  # before Phase2
    c.call(S2, "CprepPrepareNodePhase2", dict(AttachDisksOnSystemBus=0), dict(pulNumDisks=1))
    c.call(S2, "CprepDiskPRRegister", dict(DiskId=DISK), hresult=ERROR_INVALID_STATE)  # not attached
    c.call(S2, "CprepDiskAttach", dict(DiskId=DISK))
    c.call(S2, "CprepDiskPRReserve", dict(DiskId=DISK))  # before any PRRegister
    c.call(S2, "CprepDiskRawRead", dict(DiskId=DISK, ulSector=7, cbData=512),
           dict(pbData=bytes(512), pcbDataRead=512, ulLatency=1))  # no GetArbSectors
    c.call(S2, "CprepDiskOnline", dict(DiskId=DISK), hresult=ERROR_INVALID_STATE)  # not arbitrated
    c.call(S2, "CprepDiskGetFSName", dict(DiskId=DISK, Partition=1), hresult=ERROR_INVALID_STATE)  # not online
    c.call(S2, "CprepDiskPRArbitrate", dict(DiskId=DISK))
    c.call(S2, "CprepDiskOnline", dict(DiskId=DISK), dict(MaxPartitionNumber=1))
    c.call(S2, "CprepDiskWriteFileData", dict(DiskId=DISK, ulPartition=3, FileName="ClusPrepTest.txt", cbDataIn=4,
                                              DataIn=b"test"), hresult=ERROR_FILE_NOT_FOUND)  # partition 3 of 1
    c.call(S2, "CprepDiskStopDefense", dict(DiskId=DISK))  # still online: no Offline before it
    c.call(S2, "CprepDiskGetProps", dict(DiskId=DISK), dict(DiskProps=disk_props()), answered=False)
    c.conn.close()

    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE2, 50402))
    c.bind(N)
    c.call(N, "SendRTMessage", dict(SourceIPAddress="10.0.0.12", DestIPAddress="10.0.0.11", DestPort=3343,
                                    AddressFamily="AF_INET", MessageSize=1024, Timeout=1000), dict(RTElapsedTime=2))
    c.call(N, "InitializeNode", dict(RequestUDPPort=3343),
           dict(BoundUDPPort=3343, NodeMajorVersion=10, NodeMinorVersion=0, ClusprepVersion=5))
    c.call(N, "GetAddRoutesStatus", outs=dict(reply=dict(indices=[], replies=[], routeUnavailable=1)))
    route = dict(remoteVirtualIP="fe80::5efe:a00:b", localUnicastIPs=["10.0.0.12"], remoteUnicastIPs=["10.0.0.11"],
                 indices=[1])
    c.call(N, "ProcessAddRoutes", dict(request=dict(remoteVirtualIP="fe80::5efe:a00:b", nodeRouteInfos=[route])))
    c.call(N, "ProcessAddRoutes", dict(request=dict(remoteVirtualIP="fe80::5efe:a00:b", nodeRouteInfos=[route])),
           hresult=E_FAIL)
    c.call(N, "CancelAddRoutesRequest")
    c.call(N, "CleanupNode")
    c.alter_context(FW, dcom_style=False)
    c.call(FW, "GetNextAdapterFirewallConfiguration", dict(idx=0), hresult=E_UNEXPECTED)
    c.call(FW, "InitializeAdapterConfiguration", outs=dict(cRetAdapters=2))
    c.call(FW, "GetNextAdapterFirewallConfiguration", dict(idx=5), hresult=E_INVALIDARG)
    c.conn.close()

    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE2, 50403))
    c.bind(SET, dcom_style=False)
    c.call(SET, "RetrieveSvcSecret", hresult=ERROR_FILE_NOT_FOUND)  # fine: nothing configured yet
    c.call(SET, "ConfigSvcSecret", dict(SecretBLOB="cluster-secret"))
    c.call(SET, "RetrieveSvcSecret", hresult=ERROR_FILE_NOT_FOUND)  # the server lost the secret it stored
    c.conn.close()

    # a connection whose bind happened before the capture started, to the IClusterSetup object above
    # (its IPID, which the calls above use, is what makes it ClusPrep's without the bind)
    conn = dcerpc.start(cap, CLIENT, NODE2, 50404)
    m = SET.method(5)
    conn.call(0, m.opnum, m.request(dcom.ORPCTHIS).build(dict(ORPCthis=orpcthis())),
              m.response(dcom.ORPCTHAT).build(dict(ORPCthat=dict(flags=0, extensions=None), ReturnValue=0,
                                                   HostLabel="NODE2.corp.contoso.com")),
              object_uuid=c.ipid[SET.name])
    conn.close()
    return cap.pcapng()


SCENARIOS = {"clusprep_rule_violations": violations}
