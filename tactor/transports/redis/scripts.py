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
    "HEARTBEAT",
    "LIVE",
    "POST",
    "QUEUE_PUT",
    "QUEUE_TASK_DONE",
    "QUEUE_WAKE",
    "REGISTRY",
    "REPLAY",
    "REQUEUE",
]

_NOW = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: stream, registry | ARGV: maxlen, payload, check ("", "any" or a provider id)
# Returns 1 delivered, 0 mailbox full, -1 no live provider.
DELIVER = (
    _NOW
    + """
local check = ARGV[3]
if check == 'any' then
    if redis.call('ZCOUNT', KEYS[2], now, '+inf') == 0 then return -1 end
elseif check ~= '' then
    local expiry = redis.call('ZSCORE', KEYS[2], check)
    if not expiry or tonumber(expiry) < now then return -1 end
end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('XADD', KEYS[1], '*', 'p', ARGV[2])
return 1
"""
)

# KEYS: registry | ARGV: maxlen, payload, mailbox key prefix. Appends to the private mailbox
# (prefix .. provider) of every live provider with room. Returns {reached..., '', full...}.
# The mailbox keys are computed here, so this script needs a single Redis node (not Cluster).
DELIVER_TO_PROVIDERS = (
    _NOW
    + """
local reached, full = {}, {}
local maxlen = tonumber(ARGV[1])
for _, provider in ipairs(redis.call('ZRANGE', KEYS[1], now, '+inf', 'BYSCORE')) do
    local stream = ARGV[3] .. provider
    if redis.call('XLEN', stream) >= maxlen then
        table.insert(full, provider)
    else
        redis.call('XADD', stream, '*', 'p', ARGV[2])
        table.insert(reached, provider)
    end
end
table.insert(reached, '')
for _, provider in ipairs(full) do table.insert(reached, provider) end
return reached
"""
)

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
# ARGV: ttl_ms, how many zsets, one member per zset, the keys' lifetime in ms.
# Extends (or re-creates) each zset entry and drops expired ones; extends each owned key.
# A zset of another type is skipped, not fatal: the others are kept alive. Returns
# {key, error, key, error, ...} for the skipped ones. Any other error (READONLY) fails it.
HEARTBEAT = (
    _NOW
    + """
local zsets = tonumber(ARGV[2])
local refused = {}
for i = 1, zsets do
    local added = redis.pcall('ZADD', KEYS[i], now + tonumber(ARGV[1]), ARGV[i + 2])
    if type(added) == 'table' and added.err then
        if string.sub(added.err, 1, 9) ~= 'WRONGTYPE' then return redis.error_reply(added.err) end
        table.insert(refused, KEYS[i])
        table.insert(refused, added.err)
    else
        redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    end
end
local lifetime = ARGV[zsets + 3]
for i = zsets + 1, #KEYS do
    redis.call('PEXPIRE', KEYS[i], lifetime)
end
return refused
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

# KEYS: registry zset, its providers' infos (a hash). Returns {provider, info, ...} of the live
# providers ('' for an info lost) and drops the infos of the others (a killed provider's).
# Registering adds to the zset before the hash, unregistering removes in the same order.
REGISTRY = (
    _NOW
    + """
local live = redis.call('ZRANGE', KEYS[1], now, '+inf', 'BYSCORE')
local keep, found = {}, {}
for _, provider in ipairs(live) do keep[provider] = true end
for _, provider in ipairs(redis.call('HKEYS', KEYS[2])) do
    if not keep[provider] then redis.call('HDEL', KEYS[2], provider) end
end
for _, provider in ipairs(live) do
    table.insert(found, provider)
    table.insert(found, redis.call('HGET', KEYS[2], provider) or '')
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
    "ack": ACK,
    "requeue": REQUEUE,
    "cleanup": CLEANUP,
    "dead_letter": DEAD_LETTER,
    "replay": REPLAY,
    "heartbeat": HEARTBEAT,
    "live": LIVE,
    "registry": REGISTRY,
    "drop_endpoint": DROP_ENDPOINT,
    "post": POST,
    "queue_put": QUEUE_PUT,
    "queue_task_done": QUEUE_TASK_DONE,
    "queue_wake": QUEUE_WAKE,
}
