"""SMB2 messages (MS-SMB2 §2.2) that carry RSVD in the samples.

Only what the samples send is here. Our dissectors do not decode SMB2 (Wireshark
does), so these are builders; each follows its MS-SMB2 table.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from construct import (
    Bytes,
    Const,
    GreedyBytes,
    Int8ul,
    Int16ul,
    Int32ul,
    Int64ul,
    Struct,
)

from dissectors.definitions import rsvd

# 2.2.1 command codes
NEGOTIATE, SESSION_SETUP, LOGOFF, TREE_CONNECT, TREE_DISCONNECT = 0, 1, 2, 3, 4
CREATE, CLOSE, FLUSH, READ, WRITE, LOCK, IOCTL = 5, 6, 7, 8, 9, 10, 11

FLAGS_SERVER_TO_REDIR = 0x00000001
FLAGS_ASYNC_COMMAND = 0x00000002
FLAGS_RELATED_OPERATIONS = 0x00000004

STATUS_SUCCESS = 0x00000000
STATUS_PENDING = 0x00000103
STATUS_MORE_PROCESSING_REQUIRED = 0xC0000016

SMB2_DIALECT_202, SMB2_DIALECT_210, SMB2_DIALECT_300, SMB2_DIALECT_302, SMB2_DIALECT_311 = (
    0x0202, 0x0210, 0x0300, 0x0302, 0x0311)

SESSION_FLAG_BINDING = 0x01  # 2.2.5 SESSION_SETUP Request Flags
SESSION_FLAG_ENCRYPT_DATA = 0x0004  # 2.2.6 SESSION_SETUP Response SessionFlags
SERVER_CAPABILITIES = 0x2F  # 2.2.4: DFS, LEASING, LARGE_MTU, MULTI_CHANNEL, DIRECTORY_LEASING
GLOBAL_CAP_ENCRYPTION = 0x40

FILE_NO_INTERMEDIATE_BUFFERING = 0x00000008
FILE_NON_DIRECTORY_FILE = 0x00000040
SMB2_0_IOCTL_IS_FSCTL = 0x00000001

HEADER_SIZE = 64

# 2.2.1.2 SMB2 Packet Header - SYNC; 2.2.1.1 - ASYNC (AsyncId replaces Reserved/TreeId)
_HEADER_START = (
    "ProtocolId" / Const(b"\xfeSMB"),
    "StructureSize" / Const(64, Int16ul),
    "CreditCharge" / Int16ul,
    "Status" / Int32ul,
    "Command" / Int16ul,
    "Credit" / Int16ul,
    "Flags" / Int32ul,
    "NextCommand" / Int32ul,
    "MessageId" / Int64ul,
)
_HEADER_END = ("SessionId" / Int64ul, "Signature" / Bytes(16))
SyncHeader = Struct(*_HEADER_START, "Reserved" / Int32ul, "TreeId" / Int32ul, *_HEADER_END)
AsyncHeader = Struct(*_HEADER_START, "AsyncId" / Int64ul, *_HEADER_END)


def header(command: int, message_id: int, *, status: int = 0, flags: int = 0, tree_id: int = 0,
           session_id: int = 0, async_id: Optional[int] = None, credit: int = 1) -> bytes:
    common = dict(CreditCharge=1, Status=status, Command=command, Credit=credit, Flags=flags,
                  NextCommand=0, MessageId=message_id, SessionId=session_id, Signature=bytes(16))
    if async_id is not None:
        return AsyncHeader.build(dict(common, Flags=flags | FLAGS_ASYNC_COMMAND, AsyncId=async_id))
    return SyncHeader.build(dict(common, Reserved=0xFEFF, TreeId=tree_id))


def _pad8(b: bytes) -> bytes:
    return b + bytes(-len(b) % 8)


# 2.2.3 NEGOTIATE Request
NegotiateRequest = Struct(
    "StructureSize" / Const(36, Int16ul),
    "DialectCount" / Int16ul,
    "SecurityMode" / Int16ul,
    "Reserved" / Int16ul,
    "Capabilities" / Int32ul,
    "ClientGuid" / Bytes(16),
    "ClientStartTime" / Int64ul,
    "Dialects" / GreedyBytes,
)

# 2.2.4 NEGOTIATE Response
NegotiateResponse = Struct(
    "StructureSize" / Const(65, Int16ul),
    "SecurityMode" / Int16ul,
    "DialectRevision" / Int16ul,
    "Reserved" / Int16ul,
    "ServerGuid" / Bytes(16),
    "Capabilities" / Int32ul,
    "MaxTransactSize" / Int32ul,
    "MaxReadSize" / Int32ul,
    "MaxWriteSize" / Int32ul,
    "SystemTime" / Int64ul,
    "ServerStartTime" / Int64ul,
    "SecurityBufferOffset" / Int16ul,
    "SecurityBufferLength" / Int16ul,
    "Reserved2" / Int32ul,
    "Buffer" / GreedyBytes,
)

# 2.2.5 SESSION_SETUP Request / 2.2.6 Response
SessionSetupRequest = Struct(
    "StructureSize" / Const(25, Int16ul),
    "Flags" / Int8ul,
    "SecurityMode" / Int8ul,
    "Capabilities" / Int32ul,
    "Channel" / Int32ul,
    "SecurityBufferOffset" / Int16ul,
    "SecurityBufferLength" / Int16ul,
    "PreviousSessionId" / Int64ul,
    "Buffer" / GreedyBytes,
)
SessionSetupResponse = Struct(
    "StructureSize" / Const(9, Int16ul),
    "SessionFlags" / Int16ul,
    "SecurityBufferOffset" / Int16ul,
    "SecurityBufferLength" / Int16ul,
    "Buffer" / GreedyBytes,
)

# 2.2.9 TREE_CONNECT Request / 2.2.10 Response
TreeConnectRequest = Struct(
    "StructureSize" / Const(9, Int16ul),
    "Flags" / Int16ul,
    "PathOffset" / Int16ul,
    "PathLength" / Int16ul,
    "Buffer" / GreedyBytes,
)
TreeConnectResponse = Struct(
    "StructureSize" / Const(16, Int16ul),
    "ShareType" / Int8ul,
    "Reserved" / Int8ul,
    "ShareFlags" / Int32ul,
    "Capabilities" / Int32ul,
    "MaximalAccess" / Int32ul,
)

# 2.2.13 CREATE Request
CreateRequest = Struct(
    "StructureSize" / Const(57, Int16ul),
    "SecurityFlags" / Int8ul,
    "RequestedOplockLevel" / Int8ul,
    "ImpersonationLevel" / Int32ul,
    "SmbCreateFlags" / Int64ul,
    "Reserved" / Int64ul,
    "DesiredAccess" / Int32ul,
    "FileAttributes" / Int32ul,
    "ShareAccess" / Int32ul,
    "CreateDisposition" / Int32ul,
    "CreateOptions" / Int32ul,
    "NameOffset" / Int16ul,
    "NameLength" / Int16ul,
    "CreateContextsOffset" / Int32ul,
    "CreateContextsLength" / Int32ul,
    "Buffer" / GreedyBytes,
)
# 2.2.13.2 SMB2_CREATE_CONTEXT: the definition the analyzer reads it with, then name and data
CreateContext = Struct(*rsvd.SMB2_CREATE_CONTEXT.subcons, "Buffer" / GreedyBytes)
# 2.2.14 CREATE Response
CreateResponse = Struct(
    "StructureSize" / Const(89, Int16ul),
    "OplockLevel" / Int8ul,
    "Flags" / Int8ul,
    "CreateAction" / Int32ul,
    "CreationTime" / Int64ul,
    "LastAccessTime" / Int64ul,
    "LastWriteTime" / Int64ul,
    "ChangeTime" / Int64ul,
    "AllocationSize" / Int64ul,
    "EndofFile" / Int64ul,
    "FileAttributes" / Int32ul,
    "Reserved2" / Int32ul,
    "FileId" / Bytes(16),
    "CreateContextsOffset" / Int32ul,
    "CreateContextsLength" / Int32ul,
    "Buffer" / GreedyBytes,
)
# MS-FSCC 2.4.15 FILE_FULL_EA_INFORMATION: the analyzer's definition (EaName without its NUL), then the value
FileFullEaInformation = Struct(*rsvd.FILE_FULL_EA_INFORMATION.subcons, Const(b"\x00"),
                               "EaValue" / Bytes(lambda ctx: ctx.EaValueLength))

# 2.2.15 CLOSE Request / 2.2.16 Response
CloseRequest = Struct(
    "StructureSize" / Const(24, Int16ul),
    "Flags" / Int16ul,
    "Reserved" / Int32ul,
    "FileId" / Bytes(16),
)
CloseResponse = Struct(
    "StructureSize" / Const(60, Int16ul),
    "Flags" / Int16ul,
    "Reserved" / Int32ul,
    "CreationTime" / Int64ul,
    "LastAccessTime" / Int64ul,
    "LastWriteTime" / Int64ul,
    "ChangeTime" / Int64ul,
    "AllocationSize" / Int64ul,
    "EndofFile" / Int64ul,
    "FileAttributes" / Int32ul,
)

# 2.2.19 READ Request / 2.2.20 Response
ReadRequest = Struct(
    "StructureSize" / Const(49, Int16ul),
    "Padding" / Int8ul,
    "Flags" / Int8ul,
    "Length" / Int32ul,
    "Offset" / Int64ul,
    "FileId" / Bytes(16),
    "MinimumCount" / Int32ul,
    "Channel" / Int32ul,
    "RemainingBytes" / Int32ul,
    "ReadChannelInfoOffset" / Int16ul,
    "ReadChannelInfoLength" / Int16ul,
    "Buffer" / Bytes(1),
)
ReadResponse = Struct(
    "StructureSize" / Const(17, Int16ul),
    "DataOffset" / Int8ul,
    "Reserved" / Int8ul,
    "DataLength" / Int32ul,
    "DataRemaining" / Int32ul,
    "Reserved2" / Int32ul,
    "Buffer" / GreedyBytes,
)

# 2.2.21 WRITE Request / 2.2.22 Response
WriteRequest = Struct(
    "StructureSize" / Const(49, Int16ul),
    "DataOffset" / Int16ul,
    "Length" / Int32ul,
    "Offset" / Int64ul,
    "FileId" / Bytes(16),
    "Channel" / Int32ul,
    "RemainingBytes" / Int32ul,
    "WriteChannelInfoOffset" / Int16ul,
    "WriteChannelInfoLength" / Int16ul,
    "Flags" / Int32ul,
    "Buffer" / GreedyBytes,
)
WriteResponse = Struct(
    "StructureSize" / Const(17, Int16ul),
    "Reserved" / Int16ul,
    "Count" / Int32ul,
    "Remaining" / Int32ul,
    "WriteChannelInfoOffset" / Int16ul,
    "WriteChannelInfoLength" / Int16ul,
)

# 2.2.31 IOCTL Request / 2.2.32 Response
IoctlRequest = Struct(
    "StructureSize" / Const(57, Int16ul),
    "Reserved" / Int16ul,
    "CtlCode" / Int32ul,
    "FileId" / Bytes(16),
    "InputOffset" / Int32ul,
    "InputCount" / Int32ul,
    "MaxInputResponse" / Int32ul,
    "OutputOffset" / Int32ul,
    "OutputCount" / Int32ul,
    "MaxOutputResponse" / Int32ul,
    "Flags" / Int32ul,
    "Reserved2" / Int32ul,
    "Buffer" / GreedyBytes,
)
IoctlResponse = Struct(
    "StructureSize" / Const(49, Int16ul),
    "Reserved" / Int16ul,
    "CtlCode" / Int32ul,
    "FileId" / Bytes(16),
    "InputOffset" / Int32ul,
    "InputCount" / Int32ul,
    "OutputOffset" / Int32ul,
    "OutputCount" / Int32ul,
    "Flags" / Int32ul,
    "Reserved2" / Int32ul,
    "Buffer" / GreedyBytes,
)

# 2.2.2 ERROR Response; also the interim STATUS_PENDING answer.
ErrorResponse = Struct(
    "StructureSize" / Const(9, Int16ul),
    "ErrorContextCount" / Int8ul,
    "Reserved" / Int8ul,
    "ByteCount" / Int32ul,
    "ErrorData" / Bytes(1),
)

# 2.2.7 LOGOFF, 2.2.11 TREE_DISCONNECT: the same four bytes each way.
Empty4 = Struct("StructureSize" / Const(4, Int16ul), "Reserved" / Int16ul)


# -- bodies ---------------------------------------------------------------
def negotiate_request(dialects: Sequence[int], client_guid: bytes) -> bytes:
    return NegotiateRequest.build(dict(
        DialectCount=len(dialects), SecurityMode=1, Reserved=0, Capabilities=0x7F,
        ClientGuid=client_guid, ClientStartTime=0,
        Dialects=b"".join(Int16ul.build(d) for d in dialects)))


def negotiate_response(dialect: int, server_guid: bytes, systime: int, capabilities: int = 0x2F) -> bytes:
    return NegotiateResponse.build(dict(
        SecurityMode=1, DialectRevision=dialect, Reserved=0, ServerGuid=server_guid,
        Capabilities=capabilities, MaxTransactSize=8 << 20, MaxReadSize=8 << 20, MaxWriteSize=8 << 20,
        SystemTime=systime, ServerStartTime=0, SecurityBufferOffset=0, SecurityBufferLength=0,
        Reserved2=0, Buffer=b""))


def session_setup_request(flags: int = 0) -> bytes:
    return SessionSetupRequest.build(dict(
        Flags=flags, SecurityMode=1, Capabilities=1, Channel=0, SecurityBufferOffset=0,
        SecurityBufferLength=0, PreviousSessionId=0, Buffer=b"\x00"))


def session_setup_response(session_flags: int = 0) -> bytes:
    return SessionSetupResponse.build(dict(
        SessionFlags=session_flags, SecurityBufferOffset=0, SecurityBufferLength=0, Buffer=b"\x00"))


def tree_connect_request(path: str) -> bytes:
    p = path.encode("utf-16-le")
    return TreeConnectRequest.build(dict(Flags=0, PathOffset=HEADER_SIZE + 8, PathLength=len(p), Buffer=p))


def tree_connect_response() -> bytes:
    # ShareType disk, SMB2_SHARE_CAP_CONTINUOUS_AVAILABILITY|CLUSTER as a CSV share has.
    return TreeConnectResponse.build(dict(ShareType=1, Reserved=0, ShareFlags=0x30, Capabilities=0x18,
                                          MaximalAccess=0x001F01FF))


def create_context(name: bytes, data: bytes) -> bytes:
    """One SMB2_CREATE_CONTEXT; `Next` is filled by create_contexts()."""
    head = 16
    name_part = _pad8(name)
    return CreateContext.build(dict(
        Next=0, NameOffset=head, NameLength=len(name), Reserved=0,
        DataOffset=head + len(name_part) if data else 0, DataLength=len(data),
        Buffer=name_part + data))


def create_contexts(contexts: Sequence[bytes]) -> bytes:
    out = b""
    for i, c in enumerate(contexts):
        if i < len(contexts) - 1:
            c = _pad8(c)
            c = Int32ul.build(len(c)) + c[4:]
        out += c
    return out


def full_ea_list(eas: Sequence[Tuple[bytes, bytes]]) -> bytes:
    entries = []
    for i, (name, value) in enumerate(eas):
        e = FileFullEaInformation.build(dict(NextEntryOffset=0, Flags=0, EaNameLength=len(name),
                                             EaValueLength=len(value), EaName=name, EaValue=value))
        if i < len(eas) - 1:
            e = e + bytes(-len(e) % 4)
            e = Int32ul.build(len(e)) + e[4:]
        entries.append(e)
    return b"".join(entries)


def create_request(name: str, create_options: int, contexts: Sequence[bytes]) -> bytes:
    fixed = 56
    n = name.encode("utf-16-le")
    name_off = HEADER_SIZE + fixed
    ctx = create_contexts(contexts)
    ctx_off = HEADER_SIZE + fixed + len(_pad8(n)) if ctx else 0
    return CreateRequest.build(dict(
        SecurityFlags=0, RequestedOplockLevel=0, ImpersonationLevel=2, SmbCreateFlags=0, Reserved=0,
        DesiredAccess=0x0012019F, FileAttributes=0x80, ShareAccess=0x7, CreateDisposition=1,
        CreateOptions=create_options, NameOffset=name_off, NameLength=len(n),
        CreateContextsOffset=ctx_off, CreateContextsLength=len(ctx),
        Buffer=(_pad8(n) + ctx) if ctx else n))


def create_response(file_id: bytes, size: int, contexts: Sequence[bytes] = ()) -> bytes:
    ctx = create_contexts(contexts)
    return CreateResponse.build(dict(
        OplockLevel=0, Flags=0, CreateAction=1, CreationTime=0, LastAccessTime=0, LastWriteTime=0,
        ChangeTime=0, AllocationSize=size, EndofFile=size, FileAttributes=0x20, Reserved2=0,
        FileId=file_id, CreateContextsOffset=HEADER_SIZE + 88 if ctx else 0,
        CreateContextsLength=len(ctx), Buffer=ctx or b"\x00"))


def ioctl_request(ctl_code: int, file_id: bytes, data: bytes, max_output: int = 65536) -> bytes:
    fixed = 56
    return IoctlRequest.build(dict(
        Reserved=0, CtlCode=ctl_code, FileId=file_id,
        InputOffset=HEADER_SIZE + fixed if data else 0, InputCount=len(data), MaxInputResponse=0,
        OutputOffset=HEADER_SIZE + fixed + len(data), OutputCount=0, MaxOutputResponse=max_output,
        Flags=SMB2_0_IOCTL_IS_FSCTL, Reserved2=0, Buffer=data))


def ioctl_response(ctl_code: int, file_id: bytes, data: bytes) -> bytes:
    fixed = 48
    return IoctlResponse.build(dict(
        Reserved=0, CtlCode=ctl_code, FileId=file_id, InputOffset=HEADER_SIZE + fixed, InputCount=0,
        OutputOffset=HEADER_SIZE + fixed, OutputCount=len(data), Flags=0, Reserved2=0, Buffer=data))


def read_request(file_id: bytes, offset: int, length: int) -> bytes:
    return ReadRequest.build(dict(
        Padding=0x50, Flags=0, Length=length, Offset=offset, FileId=file_id, MinimumCount=0, Channel=0,
        RemainingBytes=0, ReadChannelInfoOffset=0, ReadChannelInfoLength=0, Buffer=b"\x00"))


def read_response(data: bytes) -> bytes:
    return ReadResponse.build(dict(DataOffset=HEADER_SIZE + 16, Reserved=0, DataLength=len(data),
                                   DataRemaining=0, Reserved2=0, Buffer=data))


def write_request(file_id: bytes, offset: int, data: bytes) -> bytes:
    return WriteRequest.build(dict(
        DataOffset=HEADER_SIZE + 48, Length=len(data), Offset=offset, FileId=file_id, Channel=0,
        RemainingBytes=0, WriteChannelInfoOffset=0, WriteChannelInfoLength=0, Flags=0, Buffer=data))


def write_response(count: int) -> bytes:
    return WriteResponse.build(dict(Reserved=0, Count=count, Remaining=0, WriteChannelInfoOffset=0,
                                    WriteChannelInfoLength=0)) + b"\x00"


def error_response() -> bytes:
    return ErrorResponse.build(dict(ErrorContextCount=0, Reserved=0, ByteCount=0, ErrorData=b"\x00"))


def close_request(file_id: bytes) -> bytes:
    return CloseRequest.build(dict(Flags=0, Reserved=0, FileId=file_id))


def close_response() -> bytes:
    return CloseResponse.build(dict(Flags=0, Reserved=0, CreationTime=0, LastAccessTime=0, LastWriteTime=0,
                                    ChangeTime=0, AllocationSize=0, EndofFile=0, FileAttributes=0))


def empty4() -> bytes:
    return Empty4.build(dict(Reserved=0))


def compound(pdus: Sequence[bytes]) -> bytes:
    """Chain SMB2 PDUs (header+body each) with NextCommand, 8-byte aligned (3.2.4.1.4)."""
    out = b""
    for i, p in enumerate(pdus):
        if i < len(pdus) - 1:
            p = _pad8(p)
            p = p[:20] + Int32ul.build(len(p)) + p[24:]
        out += p
    return out
