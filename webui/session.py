"""Who this browser signed in as (webui/wallet.py's Sign-In with Ethereum), for every
page and for the order book's owner-only reads. A session proves an account, and so
the participants that account owns; it authorises no order, mandate or payment."""

from __future__ import annotations

import time

from flask import session

from webui.context import participant_list

SESSION_S = 12 * 3600


def signed_in() -> str | None:
    """The checksummed address this browser signed in with, if its session is current."""
    address, until = session.get("address"), session.get("until", 0)
    return address if address and until > time.time() else None


def owned_by(address: str | None) -> list[dict]:
    if not address:
        return []
    return [p for p in participant_list() if p["owner"].lower() == address.lower()]


def session_reader(participant: str | None) -> int | None:
    """The participant whose orders this browser's sign-in may read: `participant` (a
    query argument) if the signed-in account owns it; without one, the only participant
    it owns. None if nobody is signed in or the account does not own it."""
    mine = [p["id"] for p in owned_by(signed_in())]
    if participant is None or participant == "":
        return mine[0] if len(mine) == 1 else None
    return int(participant) if participant.isascii() and participant.isdigit() and int(participant) in mine else None
