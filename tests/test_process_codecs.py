"""A system's own codecs go with its process providers: imported by name, never pickled."""

from __future__ import annotations

import os
import sys
import types

import pytest

from tactor import ActorSystem, JsonCodec, SpawnError, TypeCodec
from tactor.actors.import_paths import object_path, resolve
from tests.process_model import CENTS, CODEC, CODECS, Cents, Rate, Till
from tests.test_processes import _alive

pytestmark = pytest.mark.slow


#: The transports a child is served on: the parent's hub, or the same Redis.
on_each_transport = pytest.mark.parametrize("url", ["memory", "redis"], indirect=True)


async def _till_in_a_child(system: ActorSystem) -> int:
    """Spawn a Till in a child; a user type goes in (constructor, argument) and comes back."""
    ref = await system.processes().spawn(Till, Cents(100))
    till = system.proxy(Till)
    assert await till.add(Cents(50), Rate(200)) == Cents(200)
    assert await system.call(Till.add, Cents(10), Rate(50), provider=ref) == Cents(205)
    pid = await till.pid()
    assert pid != os.getpid()
    return pid


@on_each_transport
async def test_the_systems_type_codecs_go_with_its_children(url: str) -> None:
    async with ActorSystem(url, codecs=[CENTS, *CODECS]) as system:  # a name, a list's item
        pid = await _till_in_a_child(system)
    assert not _alive(pid)


@on_each_transport
async def test_a_codec_of_its_own_goes_with_the_children(url: str) -> None:
    async with ActorSystem(url, codec=CODEC) as system:
        pid = await _till_in_a_child(system)
    assert not _alive(pid)


async def test_a_codec_made_in_a_function_is_refused_at_spawn() -> None:
    local = TypeCodec(Cents, to_wire=lambda c: c.value, from_wire=Cents)
    async with ActorSystem(codecs=[local, *CODECS]) as system:
        with pytest.raises(SpawnError, match=r"TypeCodec of Cents cannot be imported.*CODECS ="):
            await system.processes().spawn(Till, Cents(1))
        assert await system.providers(Till) == []
        assert system.refs() == []


async def test_a_codec_the_child_cannot_import_is_a_spawn_error() -> None:
    module = types.ModuleType("tests_codecs_made_at_runtime")
    module.CENTS = TypeCodec(Cents, to_wire=lambda c: c.value, from_wire=Cents)  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        async with ActorSystem(codecs=[module.CENTS, *CODECS]) as system:
            with pytest.raises(SpawnError, match="cannot import the system's codecs"):
                await system.processes().spawn(Till, Cents(1))
            assert await system.providers(Till) == []
    finally:
        del sys.modules[module.__name__]


async def test_a_json_codec_made_in_place_goes_by_its_type_codecs() -> None:
    # No name holds the codec itself; the child makes its own JSON codec, with the same
    # user types' codecs, each found by its own name.
    async with ActorSystem(codec=CODEC.copy()) as system:
        pid = await _till_in_a_child(system)
    assert not _alive(pid)


class _OtherCodec(JsonCodec):
    """A codec class of its own: a child can only make one by the name that holds it."""


async def test_a_codec_of_its_own_made_in_place_is_refused_at_spawn() -> None:
    async with ActorSystem(codec=_OtherCodec([CENTS, *CODECS])) as system:
        with pytest.raises(SpawnError, match=r"ActorSystem\(codec=...\), a _OtherCodec, cannot"):
            await system.processes().spawn(Till, Cents(1))
        assert system.refs() == []


def test_a_codec_is_named_by_the_module_level_name_that_holds_it() -> None:
    here = ["tests.process_model"]
    assert object_path(CENTS, here) == "tests.process_model:CENTS"
    assert object_path(CODECS[0], here) == "tests.process_model:CODECS[0]"
    assert object_path(TypeCodec(Cents, to_wire=str, from_wire=Cents), here) is None
    assert resolve("tests.process_model:CODECS[0]") is CODECS[0]
    assert resolve("tests.process_model:Till.add") is Till.add
    with pytest.raises(ImportError, match="has no item 5"):
        resolve("tests.process_model:CODECS[5]")
    with pytest.raises(ImportError, match="has no 'NOPE'"):
        resolve("tests.process_model:NOPE")
