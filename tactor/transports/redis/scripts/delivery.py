"""Lua scripts that move payloads to their readers: into a mailbox (``DELIVER``) or the private
mailboxes of every live provider of an endpoint (``DELIVER_TO_PROVIDERS``), ringing the
providers' nodes; and out of mailboxes (``TAKE``). (A reply goes into its caller's inbox by
plain commands: see ``RedisTransport.post``.)"""

from __future__ import annotations

from .clock import _CLOCK, _NOW

__all__ = ["CARRIED", "DELIVER", "DELIVER_TO_PROVIDERS", "TAKE"]

#: The most entries of one private mailbox a ring carries (see ``_RING``); a consumer handed
#: as many reads its mailbox again for more.
CARRIED = 100

# A delivery to a provider (see the registry's keys in registry.py) also rings its node's bell (a
# stream ``bell prefix .. node``): the node reads the private mailboxes of all its providers over
# one connection, blocking on its bell alone. The ring carries the entries: the delivery reads them
# for the node (what the mailbox holds not yet read, in order, at most CARRIED) and the ring holds
# 'k' KEY, then per entry 'r' ID and its fields — the node hands them to the provider without a read
# of its own. Without a bell (the node is gone, or Redis lost it) nothing is read nor rung.
_RING = (
    """
local function ring(node, streams)
    local bell = ARGV[5] .. node
    if redis.call('EXISTS', bell) == 0 then return end
    local fields = {}
    for _, stream in ipairs(streams) do
        table.insert(fields, 'k')
        table.insert(fields, stream)
        local got = redis.pcall(  -- (no group: a plain ring, the consumer reads for itself)
            'XREADGROUP', 'GROUP', ARGV[4], node, 'COUNT', """
    + str(CARRIED)
    + """, 'STREAMS', stream, '>')
        if type(got) == 'table' and not got.err and got[1] then
            for _, entry in ipairs(got[1][2]) do
                table.insert(fields, 'r')
                table.insert(fields, entry[1])
                for _, value in ipairs(entry[2]) do table.insert(fields, value) end
            end
        end
        if #fields >= 1000 then  -- unpack has a limit
            redis.call('XADD', bell, '*', unpack(fields))
            fields = {}
        end
    end
    if #fields > 0 then redis.call('XADD', bell, '*', unpack(fields)) end
end
local function private(stream)
    if redis.call('EXISTS', stream) == 0 then
        redis.call('XGROUP', 'CREATE', stream, ARGV[4], '0', 'MKSTREAM')
    end
end
"""
)

# KEYS: stream, registry nodes, registry providers, the endpoint's up key (see ``_UP`` in
# registry.py) | ARGV: maxlen, payload, check ("", "any" or a provider id), group, bell prefix,
# private lifetime (ms). Returns 1 delivered, 0 mailbox full, -1 no live provider. A delivery to
# a provider makes its mailbox (and group) if it expired while idle, extends its life and rings
# the provider's node.
DELIVER = (
    _CLOCK
    + _RING
    + """
local check = ARGV[3]
local node = nil
if check == 'any' then
    if redis.call('EXISTS', KEYS[4]) == 0 then return -1 end
elseif check ~= '' then
    node = redis.call('HGET', KEYS[3], check)
    if not node then return -1 end
    local expiry = redis.call('ZSCORE', KEYS[2], node)
    if not expiry or tonumber(expiry) < server_now() then return -1 end
end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
if node then private(KEYS[1]) end
redis.call('XADD', KEYS[1], '*', 'p', ARGV[2])
if node then
    redis.call('PEXPIRE', KEYS[1], ARGV[6])
    ring(node, {KEYS[1]})
end
return 1
"""
)

# KEYS: registry nodes, registry providers | ARGV: maxlen, payload, mailbox key prefix, group, bell
# prefix, private lifetime (ms). Appends to the private mailbox (prefix .. provider) of every live
# provider with room, and rings each node once. Returns {reached..., '', full...}. The mailbox keys
# are computed here, so this script needs a single Redis node (not Cluster).
DELIVER_TO_PROVIDERS = (
    _NOW
    + _RING
    + """
local live = {}
for _, node in ipairs(redis.call('ZRANGE', KEYS[1], now, '+inf', 'BYSCORE')) do
    live[node] = {}
end
local reached, full = {}, {}
local maxlen = tonumber(ARGV[1])
local flat = redis.call('HGETALL', KEYS[2])
for i = 1, #flat, 2 do
    local provider, node = flat[i], flat[i + 1]
    local rung = live[node]
    if rung then
        local stream = ARGV[3] .. provider
        if redis.call('XLEN', stream) >= maxlen then
            table.insert(full, provider)
        else
            private(stream)
            redis.call('XADD', stream, '*', 'p', ARGV[2])
            redis.call('PEXPIRE', stream, ARGV[6])
            table.insert(reached, provider)
            table.insert(rung, stream)
        end
    end
end
for node, rung in pairs(live) do
    if #rung > 0 then ring(node, rung) end
end
table.insert(reached, '')
for _, provider in ipairs(full) do table.insert(reached, provider) end
return reached
"""
)

# KEYS: stream..., read by one consumer: first those with acknowledgements due, then those to
# read, in order | ARGV: group, consumer, count, how many keys have acknowledgements, how many
# ids each, the ids, then per key to read: its start id ('>' new, '0' what it holds) and 'p' for
# a private mailbox (skipped when it expired while idle), then a bell and its wake-up field ('' for
# none). Acknowledges, then reads the first key with entries (earlier ones first): returns {key,
# entries}; or, none having any, rings the bell (the node's reader then reads them blocking) and
# returns {}. One round trip per message a provider takes, its acknowledgements riding along.
TAKE = """
local group, consumer, count = ARGV[1], ARGV[2], ARGV[3]
local acked = tonumber(ARGV[4])
local at = 5 + acked
for i = 1, acked do
    local n = tonumber(ARGV[4 + i])
    if redis.call('EXISTS', KEYS[i]) == 1 then
        local ids = {unpack(ARGV, at, at + n - 1)}
        local ok = redis.pcall('XACK', KEYS[i], group, unpack(ids))
        if not (type(ok) == 'table' and ok.err) then redis.call('XDEL', KEYS[i], unpack(ids)) end
    end
    at = at + n
end
for i = acked + 1, #KEYS do
    local start, kind = ARGV[at], ARGV[at + 1]
    at = at + 2
    if kind ~= 'p' or redis.call('EXISTS', KEYS[i]) == 1 then
        local got = redis.call(
            'XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', KEYS[i], start)
        if got and #got > 0 and #got[1][2] > 0 then return got[1] end
    end
end
if ARGV[at] ~= '' then redis.call('XADD', ARGV[at], '*', 'w', ARGV[at + 1]) end
return {}
"""
