"""A participant's signed window for a deferrable job, in the EIP-712 style of the
orders and mandates (node.intent.signing).

A job is flexible only within the window its participant signed: whoever schedules it
(the home's own bidding agent now, the community optimiser in a later phase) may start
it at any time from ``earliest`` to ``latest_start`` (unix seconds, inclusive), and at
no other. ``energy_wh`` binds the window to the job it was signed for: a window cannot
be replayed onto a bigger job. The chain does not see job windows yet; the order book
checks the signature against the participant's registered owner, as for an order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from eth_account.signers.local import LocalAccount

from node.errors import InputError
from node.intent.signing import Domain, _Field, _Signed, _Typed, keccak, sign, type_string


@dataclass(frozen=True)
class JobWindow(_Typed):
    """Permission to start job `job` of `participant` between `earliest` and
    `latest_start`; `nonce` is single-use per participant, a higher one amends."""

    participant: int
    job: int
    earliest: int
    latest_start: int
    energy_wh: int
    nonce: int

    TYPE_NAME: ClassVar[str] = "JobWindow"
    FIELDS: ClassVar[tuple[_Field, ...]] = (
        _Field("participant", "participant", 32),
        _Field("job", "job", 64),
        _Field("earliest", "earliest", 64),
        _Field("latest_start", "latestStart", 64),
        _Field("energy_wh", "energyWh", 64),
        _Field("nonce", "nonce", 64),
    )

    def _check(self) -> None:
        if self.latest_start < self.earliest:
            raise InputError(f"jobwindow.latestStart ({self.latest_start}) is before jobwindow.earliest ({self.earliest})")


JOB_WINDOW_TYPE = type_string(JobWindow)  # off chain for now: not in SOLIDITY_TYPEHASHES
JOB_WINDOW_TYPEHASH = keccak(text=JOB_WINDOW_TYPE)


@dataclass(frozen=True)
class SignedJobWindow(_Signed):
    job_window: JobWindow
    signature: bytes
    KEY: ClassVar[str] = "jobWindow"
    MESSAGE: ClassVar[type[_Typed]] = JobWindow

    @property
    def message(self) -> JobWindow:
        return self.job_window


def sign_job_window(account: LocalAccount, domain: Domain, window: JobWindow) -> SignedJobWindow:
    return SignedJobWindow(window, sign(account, domain, window))
