"""Lua scripts of the Redis transport: each check-and-act is one atomic round trip.

Times are the server's (``TIME``), so liveness does not depend on the clocks
of the nodes. ``redis.replicate_commands()`` lets scripts that read ``TIME``
write on Redis before 7 (a no-op since then).
"""

from __future__ import annotations

__all__ = [
    "ACK",
    "BY_NAME",
    "CLEANUP",
    "DEAD_LETTER",
    "DELIVER",
    "DELIVER_TO_PROVIDERS",
    "DROP_ENDPOINT",
    "ENDPOINTS",
    "HEARTBEAT",
    "LIVE",
    "POST",
    "PROVIDERS",
    "QUEUE_PUT",
    "QUEUE_TASK_DONE",
    "QUEUE_WAKE",
    "REGISTER",
    "REGISTRY",
    "REPLAY",
    "REQUEUE",
    "TAKE",
]

_NOW = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

#: The most entries of one private mailbox a ring carries (see ``_RING``); a consumer handed
#: as many reads its mailbox again for more.
CARRIED = 100

# The registry of an endpoint is two keys: a sorted set of the nodes serving it, scored by
# their expiry (kept by each node's heartbeat: one entry per node, not per provider), and a
# hash provider -> node. A provider is live while its node is. A delivery to a provider also
# rings its node's bell (a stream ``bell prefix .. node``): the node reads the private
# mailboxes of all its providers over one connection, blocking on its bell alone. The ring
# carries the entries: the delivery reads them for the node (what the mailbox holds not yet
# read, in order, at most CARRIED) and the ring holds 'k' KEY, then per entry 'r' ID and its
# fields — the node hands them to the provider without a read of its own. Without a bell (the
# node is gone, or Redis lost it) nothing is read nor rung.
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

# KEYS: stream, registry nodes, registry providers | ARGV: maxlen, payload, check ("", "any" or a
# provider id), group, bell prefix, private lifetime (ms). Returns 1 delivered, 0 mailbox full,
# -1 no live provider. A delivery to a provider makes its mailbox (and group) if it expired while
# idle, extends its life and rings the provider's node.
DELIVER = (
    _NOW
    + _RING
    + """
local check = ARGV[3]
local node = nil
if check == 'any' then
    if redis.call('ZCOUNT', KEYS[2], now, '+inf') == 0 then return -1 end
elseif check ~= '' then
    node = redis.call('HGET', KEYS[3], check)
    if not node then return -1 end
    local expiry = redis.call('ZSCORE', KEYS[2], node)
    if not expiry or tonumber(expiry) < now then return -1 end
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

# KEYS: registry nodes, registry providers, their infos, the endpoints zset | ARGV: ttl_ms, node,
# provider, the keys' lifetime, the provider's info, its endpoint.
REGISTER = (
    _NOW
    + """
local expiry = now + tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], expiry, ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[5])
redis.call('ZADD', KEYS[4], expiry, ARGV[6])
for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
return 1
"""
)

# KEYS: registry nodes, registry providers. The providers whose node is live.
PROVIDERS = (
    _NOW
    + """
local live = {}
for _, node in ipairs(redis.call('ZRANGE', KEYS[1], now, '+inf', 'BYSCORE')) do
    live[node] = true
end
local found = {}
local flat = redis.call('HGETALL', KEYS[2])
for i = 1, #flat, 2 do
    if live[flat[i + 1]] then table.insert(found, flat[i]) end
end
return found
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

# KEYS: stream | ARGV: group, id...  Acknowledge and delete: a stream holds only unfinished work,
# so XLEN is the mailbox's true depth. After a Redis restart the group may be gone: then there is
# nothing to acknowledge.
ACK = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local ok = redis.pcall('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
if type(ok) == 'table' and ok.err then return 0 end
redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
return ok
"""

# KEYS: stream | ARGV: group, the id that was in hand ('' for none), id...  Put taken-but-
# unacknowledged entries back at the tail. A tactor entry carries its payload 'p' and, once it
# came back, 'n': how often it was delivered before. Each delivery of an entry counts (its
# delivery count in the group) except the last of those never in hand: they were not attempted.
REQUEUE = """
local moved = 0
for i = 3, #ARGV do
    local entry = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
    if #entry > 0 then
        local fields, payload, before = entry[1][2], nil, 0
        for j = 1, #fields, 2 do
            if fields[j] == 'p' then payload = fields[j + 1] end
            if fields[j] == 'n' then before = tonumber(fields[j + 1]) or 0 end
        end
        if payload then
            local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
            local count = #pending > 0 and pending[1][4] or 1
            if ARGV[i] ~= ARGV[2] then count = count - 1 end
            redis.call('XADD', KEYS[1], '*', 'p', payload, 'n', before + count)
        else
            redis.call('XADD', KEYS[1], '*', unpack(fields))
        end
        moved = moved + 1
    end
    redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
    redis.call('XDEL', KEYS[1], ARGV[i])
end
return moved
"""

# KEYS: stream, its dead letters (a stream) | ARGV: group, id, payload, attempts, reason, keep.
# Acknowledge the entry and add it to the dead letters, in one step; keep at most 'keep' of them.
# Returns {1 if it was set aside (0: it was not pending, someone else finished it), dropped}.
# The dead letters' type is checked first: a script that fails half-way keeps what it did, and
# an entry acknowledged and deleted but not added would be lost.
DEAD_LETTER = """
local kind = redis.call('TYPE', KEYS[2])['ok']
if kind ~= 'none' and kind ~= 'stream' then
    return redis.error_reply('WRONGTYPE ' .. KEYS[2] .. ' is a ' .. kind .. ', not a stream')
end
local acked = redis.pcall('XACK', KEYS[1], ARGV[1], ARGV[2])
if type(acked) ~= 'number' or acked == 0 then return {0, 0} end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], '*', 'p', ARGV[3], 'a', ARGV[4], 'r', ARGV[5])
return {1, redis.call('XTRIM', KEYS[2], 'MAXLEN', tonumber(ARGV[6]))}
"""

# KEYS: dead letters, stream | ARGV: letter id. Move one dead letter back into the stream, as a
# new entry (its deliveries counted afresh). Returns 1, or 0 if there was no such letter.
REPLAY = """
local letter = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #letter == 0 then return 0 end
local fields = letter[1][2]
for j = 1, #fields, 2 do
    if fields[j] == 'p' then redis.call('XADD', KEYS[2], '*', 'p', fields[j + 1]) end
end
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
"""

# KEYS: stream | ARGV: group, consumer. Forget a consumer; drop the stream when nothing is left.
CLEANUP = """
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
if redis.call('XLEN', KEYS[1]) > 0 then return 0 end
for _, info in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    for i = 1, #info, 2 do
        if info[i] == 'consumers' and info[i + 1] > 0 then return 0 end
    end
end
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS: zset..., then keys that live only while their owner does
# ARGV: ttl_ms, how many zsets, one member per zset, the keys' lifetime in ms (0: a light beat),
# then per zset entry a key it needs ('' for none).
# Extends (or re-creates) each zset entry — not one whose needed key is gone (a registry's hash
# of providers, lost with a restart: the entry would make the node live with no providers);
# unless light, drops expired ones and extends each owned key.
# A zset of another type is skipped, not fatal: the others are kept alive. Returns
# {{key, error, key, error, ...} for the skipped ones, {owned keys that were gone}}.
# Any other error (READONLY) fails it.
HEARTBEAT = (
    _NOW
    + """
local zsets = tonumber(ARGV[2])
local lifetime = ARGV[zsets + 3]
local refused, swept = {}, {}
local gone = {}
for i = 1, zsets do
    local need = ARGV[zsets + 3 + i]
    local added = 0
    if need ~= '' and redis.call('EXISTS', need) == 0 then
        table.insert(gone, need)
    else
        added = redis.pcall('ZADD', KEYS[i], now + tonumber(ARGV[1]), ARGV[i + 2])
        -- Not there before: its entries may have been dropped as a dead node's (see
        -- REGISTRY): the node writes its fields of the hash again.
        if added == 1 and need ~= '' then table.insert(gone, need) end
    end
    if type(added) == 'table' and added.err then
        if string.sub(added.err, 1, 9) ~= 'WRONGTYPE' then return redis.error_reply(added.err) end
        table.insert(refused, KEYS[i])
        table.insert(refused, added.err)
    elseif lifetime ~= '0' and not swept[KEYS[i]] then
        swept[KEYS[i]] = true
        redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    end
end
for i = zsets + 1, #KEYS do
    if redis.call('PEXPIRE', KEYS[i], lifetime) == 0 then table.insert(gone, KEYS[i]) end
end
return {refused, gone}
"""
)

# KEYS: zset | ARGV: members to test (none: list the live ones).
LIVE = (
    _NOW
    + """
if #ARGV == 0 then
    return redis.call('ZRANGE', KEYS[1], now, '+inf', 'BYSCORE')
end
local live = {}
for _, member in ipairs(ARGV) do
    local expiry = redis.call('ZSCORE', KEYS[1], member)
    if expiry and tonumber(expiry) >= now then table.insert(live, member) end
end
return live
"""
)

# KEYS: registry nodes, registry providers, their infos (hashes). Returns {provider, info, ...}
# of the live providers (those of a live node; '' for an info lost). Drops what dead nodes left:
# their providers, their infos, the nodes themselves (a node that was only late to beat sees
# that it was dropped at its next beat, and writes its providers again: see HEARTBEAT).
REGISTRY = (
    _NOW
    + """
local live = {}
for _, node in ipairs(redis.call('ZRANGE', KEYS[1], now, '+inf', 'BYSCORE')) do
    live[node] = true
end
local found, registered = {}, {}
local flat = redis.call('HGETALL', KEYS[2])
for i = 1, #flat, 2 do
    local provider, node = flat[i], flat[i + 1]
    if live[node] then
        registered[provider] = true
        table.insert(found, provider)
        table.insert(found, redis.call('HGET', KEYS[3], provider) or '')
    else
        redis.call('HDEL', KEYS[2], provider)
        redis.call('ZREM', KEYS[1], node)
    end
end
for _, provider in ipairs(redis.call('HKEYS', KEYS[3])) do
    if not registered[provider] then redis.call('HDEL', KEYS[3], provider) end
end
return found
"""
)

# KEYS: the endpoints zset | ARGV: the prefix of registry keys. The live endpoints that have a
# live node (registry keys are named from the endpoints, within the transport's prefix).
ENDPOINTS = (
    _NOW
    + """
local found = {}
for _, endpoint in ipairs(redis.call('ZRANGE', KEYS[1], now, '+inf', 'BYSCORE')) do
    if redis.call('ZCOUNT', ARGV[1] .. endpoint, now, '+inf') > 0 then
        table.insert(found, endpoint)
    end
end
return found
"""
)

# KEYS: registry zset, the endpoints zset | ARGV: endpoint. Drop the endpoint from the list of
# endpoints unless it has a live provider (registering adds to the registry first).
DROP_ENDPOINT = (
    _NOW
    + """
if redis.call('ZCOUNT', KEYS[1], now, '+inf') > 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""
)

# KEYS: inbox list, live zset | ARGV: payload, ttl_ms. Push only while the inbox's owner is alive,
# so a reply to a node that is gone leaves nothing behind.
POST = (
    _NOW
    + """
local expiry = redis.call('ZSCORE', KEYS[2], KEYS[1])
if not expiry or tonumber(expiry) < now then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
)

# KEYS: queue list, unfinished counter | ARGV: maxsize (0: unbounded), payload.
# Returns 1 appended (and counted unfinished), 0 full. What can fail comes before the append
# (a script that fails keeps what it did): a put that fails puts nothing.
QUEUE_PUT = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'none' and kind ~= 'list' then
    return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' is a ' .. kind .. ', not a list')
end
local maxsize = tonumber(ARGV[1])
if maxsize > 0 and redis.call('LLEN', KEYS[1]) >= maxsize then return 0 end
redis.call('INCR', KEYS[2])
redis.call('RPUSH', KEYS[1], ARGV[2])
return 1
"""

# KEYS: unfinished counter. Returns the count left, or -1 when none was unfinished (no change).
# A count back at zero is deleted, so a queue drained and done leaves no key behind.
QUEUE_TASK_DONE = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n <= 0 then return -1 end
if n == 1 then
    redis.call('DEL', KEYS[1])
    return 0
end
return redis.call('DECR', KEYS[1])
"""

# KEYS: the private wake-up list of one waiting get | ARGV: ttl_ms.
# Wakes that get's BLPOP; the token expires if the BLPOP had already ended.
QUEUE_WAKE = """
redis.call('RPUSH', KEYS[1], '1')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

#: Every script, by the name the transport calls it (``transport.scripts[name]``).
BY_NAME = {
    "deliver": DELIVER,
    "deliver_to_providers": DELIVER_TO_PROVIDERS,
    "register": REGISTER,
    "providers": PROVIDERS,
    "take": TAKE,
    "ack": ACK,
    "requeue": REQUEUE,
    "cleanup": CLEANUP,
    "dead_letter": DEAD_LETTER,
    "replay": REPLAY,
    "heartbeat": HEARTBEAT,
    "live": LIVE,
    "registry": REGISTRY,
    "endpoints": ENDPOINTS,
    "drop_endpoint": DROP_ENDPOINT,
    "post": POST,
    "queue_put": QUEUE_PUT,
    "queue_task_done": QUEUE_TASK_DONE,
    "queue_wake": QUEUE_WAKE,
}
