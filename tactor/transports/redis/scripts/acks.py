"""Lua scripts for what becomes of an entry taken from a mailbox: acknowledged (``ACK``), put
back (``REQUEUE``), moved to the dead letters (``DEAD_LETTER``) and replayed from them
(``REPLAY``); and a consumer that leaves (``CLEANUP``)."""

from __future__ import annotations

__all__ = ["ACK", "CLEANUP", "DEAD_LETTER", "REPLAY", "REQUEUE"]

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
