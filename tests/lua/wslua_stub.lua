-- A stand-in for the part of Wireshark's Lua API the generated decoders use, so they can
-- run under any Lua interpreter (5.2, 5.3, 5.4). Usage:
--   lua5.x wslua_stub.lua PLUGIN.lua < messages
-- where each input line is "<decoder> <hex bytes>" (msrsvd) or "stub <interface uuid>
-- <opnum> request|response <hex>" (clusprep's NDR interpreter); for each it prints the
-- items added ("<field>\t<value>"), then "end". It runs the real generated file; only
-- Wireshark's side is imitated, and only as far as the decoders need.

local plugin = arg[1]

local function byte_at(s, i) return s:byte(i + 1) end

local function le_uint(s, off, len)
  local x = 0
  for i = len - 1, 0, -1 do x = x * 256 + byte_at(s, off + i) end
  return x
end

-- UTF-16LE to UTF-8 (basic plane is enough for host names).
local function utf16le(s, off, len)
  local out = {}
  for i = off, off + len - 2, 2 do
    local c = le_uint(s, i, 2)
    if c < 0x80 then out[#out + 1] = string.char(c)
    elseif c < 0x800 then out[#out + 1] = string.char(0xC0 + math.floor(c / 64), 0x80 + c % 64)
    else out[#out + 1] = string.char(0xE0 + math.floor(c / 4096), 0x80 + math.floor(c / 64) % 64, 0x80 + c % 64) end
  end
  return table.concat(out)
end

local Range = {}
Range.__index = Range
function Range:le_uint() return le_uint(self.s, self.off, self.len) end
function Range:uint()
  local x = 0
  for i = 0, self.len - 1 do x = x * 256 + byte_at(self.s, self.off + i) end
  return x
end
Range.uint64 = Range.uint  -- a number here, a UInt64 in Wireshark: the plugin converts either
function Range:le_uint64()
  local x = 0
  for i = self.len - 1, 0, -1 do x = x * 256 + byte_at(self.s, self.off + i) end
  return x
end
function Range:range(off, len) return setmetatable({ s = self.s, off = self.off + off, len = len }, Range) end
function Range:bytes()
  local hex = self:hex():upper()
  return setmetatable({}, { __tostring = function() return hex end })
end
function Range:le_ustring() return utf16le(self.s, self.off, self.len) end
function Range:le_int()
  local x = le_uint(self.s, self.off, self.len)
  local top = 2 ^ (8 * self.len)
  if x >= top / 2 then x = x - top end
  return x
end
function Range:len() return self.len end
function Range:string()
  local t = self.s:sub(self.off + 1, self.off + self.len)
  return (t:match("^[^%z]*"))
end
function Range:hex()
  local out = {}
  for i = 0, self.len - 1 do out[#out + 1] = string.format("%02x", byte_at(self.s, self.off + i)) end
  return table.concat(out)
end

local function new_tvb(s)
  local tvb = { s = s }
  setmetatable(tvb, { __call = function(t, off, len)
    if off == nil then off, len = 0, #s end
    if off < 0 or len < 0 or off + len > #s then error(string.format("range %d+%d out of %d bytes", off, len, #s)) end
    return setmetatable({ s = s, off = off, len = len }, Range)
  end })
  function tvb:len() return #s end
  function tvb:range(off, len) return tvb(off, len) end
  return tvb
end
function Range:tvb() return new_tvb(self.s:sub(self.off + 1, self.off + self.len)) end

local out = {}

local function guid(r)
  local h = r:hex()
  local function swap(x) local t = {} for i = #x - 1, 1, -2 do t[#t + 1] = x:sub(i, i + 1) end return table.concat(t) end
  return swap(h:sub(1, 8)) .. "-" .. swap(h:sub(9, 12)) .. "-" .. swap(h:sub(13, 16)) .. "-" ..
    h:sub(17, 20) .. "-" .. h:sub(21, 32)
end

-- A masked field shows (x & mask) >> shift; masks here are contiguous bits.
local function masked(x, mask)
  local low = 1
  while mask % (low * 2) < low do low = low * 2 end
  return math.floor(x / low) % math.floor(mask / low + 1)
end

local function value_of(f, r, v, le)
  if v ~= nil and f.kind == "uint64" and type(v) == "number" then return string.format("0x%x", v) end
  if v ~= nil then return tostring(v) end
  local x
  if f.kind == "uint64" then
    local h = {}
    for i = 0, r.len - 1 do
      local j = le and (r.len - 1 - i) or i
      h[#h + 1] = string.format("%02x", byte_at(r.s, r.off + j))
    end
    return "0x" .. table.concat(h)
  end
  if f.kind:match("^int") then return string.format("%d", r:le_int()) end
  if f.kind:match("^uint") or f.kind == "bool" then
    x = le and r:le_uint() or r:uint()
    if f.mask then x = masked(x, f.mask) end
    if f.kind == "bool" then return x ~= 0 and "true" or "false" end
    return string.format("%d", x)
  elseif f.kind == "guid" then return guid(r)
  elseif f.kind == "bytes" then return r:hex()
  elseif f.kind == "string" then return r:string()
  end
  return ""
end

local Item = {}
Item.__index = Item
local function adder(le)
  return function(self, f, r, v)
    if getmetatable(r) ~= Range then r, v = nil, r end
    out[#out + 1] = f.abbrev .. "\t" .. value_of(f, r, v, le)
    return setmetatable({}, Item)
  end
end
Item.add, Item.add_le = adder(false), adder(true)
function Item:set_generated() return self end
function Item:set_len() end
function Item:append_text() end
function Item:add_proto_expert_info(e, text) out[#out + 1] = "expert\t" .. text end

local function field(kind)
  return function(abbrev, name, a, b, c)
    local mask = c
    if kind == "none" or kind == "guid" or kind == "bytes" or kind == "string" then mask = nil end
    return { abbrev = abbrev, kind = kind, mask = mask }
  end
end

ProtoField = {}
for _, k in ipairs({ "none", "bool", "uint8", "uint16", "uint24", "uint32", "uint64", "int8", "int16", "int32",
                    "int64", "guid", "bytes", "string",
                    "framenum", "relative_time" }) do
  ProtoField[k] = field(k)
end
base = { DEC = 1, HEX = 2, NONE = 0, UNICODE = 0, ASCII = 0, RANGE_STRING = 256 }
expert = { group = { MALFORMED = 1, SEQUENCE = 2, PROTOCOL = 3, RESPONSE_CODE = 4, SECURITY = 5 },
           severity = { ERROR = 1, WARN = 2, NOTE = 3, CHAT = 4 } }
frametype = { NONE = 0, REQUEST = 1, RESPONSE = 2 }
NSTime = { new = function(s, ns) return { s = s, ns = ns } end }
UInt64 = { new = function(x) return x end }  -- wslua's 64-bit value; a number serves here
ProtoExpert = { new = function(abbrev) return { abbrev = abbrev } end }
-- Field.new of a field no plugin registered raises, as in wslua: the load guard probes
-- <proto>.dissector_error to step aside for a compiled plugin, and none is loaded here
Field = { new = function(name) if tostring(name):match("%.dissector_error$") then error("no such field: " .. name) end return function() end end }
function Proto(name) return { name = name, prefs = {} } end
Pref = { bool = function(title, default) return default end }
function register_postdissector() end
-- the statistics register a -z argument, and a menu item only in the GUI
function register_stat_cmd_arg() end
function gui_enabled() return false end
function register_menu() end

local f = assert(io.open(plugin, "rb"))
local text = f:read("*a")
f:close()
-- The chunk's locals are in scope at its end: hand back the decoders (and, in a dcerpc
-- plugin, the NDR interpreter and its method tables).
local has_ndr = text:find("local function ndr_decode", 1, true) ~= nil
local D, ndr_decode, STUBS = assert(load(text .. (has_ndr and "\nreturn D, ndr_decode, STUBS" or "\nreturn D"),
  "=" .. plugin))()

local function bytes_of(hex)
  return (hex:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

-- "<decoder> <hex> [<request decoder> <request hex>]": a response may come with the
-- request it answers, whose values reach its decoder as ctx.request (as in the binding).
for line in io.lines() do
  local uuid, opnum, dir, shex = line:match("^stub (%S+) (%d+) (%a+) (%x*)$")
  if uuid then
    local s = bytes_of(shex)
    out = {}
    local nodes = STUBS[uuid][tonumber(opnum)][dir == "request" and 2 or 3]
    local ok, err = pcall(ndr_decode, new_tvb(s), setmetatable({}, Item), nodes, {})
    if not ok then out[#out + 1] = "error\t" .. tostring(err) end
    io.write(table.concat(out, "\n"), "\nend\n")
    goto continue
  end
  local name, hex, rname, rhex = line:match("^(%S+)%s+(%x*)%s*(%S*)%s*(%x*)$")
  local ctx = nil
  if rname ~= "" then
    local r = bytes_of(rhex)
    local _, _, rv = pcall(D[rname], new_tvb(r), setmetatable({}, Item), 0, #r, {}, nil)
    ctx = { request = rv }
  end
  local s = bytes_of(hex)
  out = {}
  local ok, err = pcall(D[name], new_tvb(s), setmetatable({}, Item), 0, #s, {}, ctx)
  if not ok then out[#out + 1] = "error\t" .. tostring(err) end
  io.write(table.concat(out, "\n"), "\nend\n")
  ::continue::
end
