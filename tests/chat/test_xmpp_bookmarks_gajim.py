"""Bookmarks as Gajim keeps them, with Gajim's XMPP library (nbxmpp) in a process of its own
(``gajim_bookmarks.py``): it chooses XEP-0402 from disco#info on the bare JID, stores a bookmark,
reads it back (and through XEP-0049), gets the PEP events from its own account, retracts it.

nbxmpp needs PyGObject, GLib and libsoup 3, which only Debian's packages bring: ``scripts/test``
installs them (``python3-gi``, ``gir1.2-soup-3.0``) and nbxmpp into ``.venv-nbxmpp``, a venv on
the system Python; ``NBXMPP_PYTHON`` names another Python that has nbxmpp."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from tests.chat.conftest import run, running
from tests.chat.test_xmpp_muc_admin import alias_of
from tests.chat.xmpp import add_user, password_of

ROOT = Path(__file__).resolve().parents[2]
NBXMPP_PYTHON = os.environ.get("NBXMPP_PYTHON") or str(ROOT / ".venv-nbxmpp" / "bin" / "python")
SCRIPT = Path(__file__).with_name("gajim_bookmarks.py")


@pytest.fixture(autouse=True)
def nbxmpp_installed():
    if not Path(NBXMPP_PYTHON).exists():
        pytest.fail(f"{NBXMPP_PYTHON} does not exist: run scripts/test once (it installs nbxmpp) or set NBXMPP_PYTHON")


def test_gajims_library_chooses_xep_0402_stores_reads_and_retracts_a_bookmark(xworld):
    add_user(xworld, "andy", "imp-1a")
    a = xworld.nodes["imp-1a"]
    room = f"ops@{alias_of(a)}"

    async def scenario():
        async with running(a):
            gajim = await asyncio.create_subprocess_exec(
                NBXMPP_PYTHON,
                str(SCRIPT),
                str(a.xmpp_port),
                "andy",
                password_of("andy"),
                room,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(gajim.communicate(), 120)
            sys.stderr.write(err.decode()[-3000:])
            return json.loads(out.decode().strip().splitlines()[-1])

    seen = run(scenario())
    assert seen["connected"]
    assert seen["module"] == "NativeBookmarks"
    assert seen["before"] == []
    assert seen["stored"] == [[room, "Ops", "Andy", True]]
    assert seen["private"] == [[room, "Ops", "Andy", True]]  # the same bookmark through XEP-0049
    assert seen["after"] == []
    assert seen["events"] == [
        {"self": True, "retracted": False, "id": room, "bookmark": [room, True, "Andy"]},
        {"self": True, "retracted": True, "id": room, "bookmark": None},
    ]
