"""What the auditor checks beyond the clearing re-run: that each settlement used the
chain's own terms, came after its interval ended, and settled every participant's
energy exactly as its meter signed it, leaving out no one it had to settle.

These are the checks that make the oracle a relay: the contract enforces terms and time
itself, and meter readings optimistically (anyone may dispute within the window); the
auditor checks all of them for every interval, final or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

from eth_utils import to_checksum_address

from node.chain.settlement import Entry
from node.chain.trust import Clock, IntervalTerms
from node.clearing.inputs import IntervalInputs
from node.errors import GridLedgerError
from node.intent.signing import Domain, Mandate, SignedReading, recover_address


@dataclass(frozen=True)
class SettledEnergy:
    """What a settlement says of each participant: settled entries and declared exclusions."""

    entries: dict[int, Entry]
    excluded: dict[int, int]  # participant -> declared net Wh


def terms_reasons(chain: IntervalTerms, interval: int, header: dict[str, Any], inputs: IntervalInputs | None) -> list[str]:
    """The settlement and its inputs were priced by the chain's terms for the interval
    (`chain`: what the contract's termsAt answers)."""
    reasons = []
    emitted = (header["importPrice"], header["exportPrice"], header["p2pFee"], header["payAsBid"])
    expected = (chain.import_price, chain.export_price, chain.p2p_fee, chain.pay_as_bid)
    if emitted != expected:
        reasons.append(f"settled at tariffs {emitted[:3]} (pay-as-bid {emitted[3]}), the chain's terms say {expected[:3]} "
                       f"(pay-as-bid {expected[3]})")
    if inputs is not None:
        committed = (inputs.buy_price[0], inputs.sell_price[0], inputs.p2p_fee, inputs.pricing == "pay_as_bid")
        if committed != expected:
            reasons.append(f"inputs carry tariffs {committed[:3]} (pay-as-bid {committed[3]}), the chain's terms for "
                           f"interval {interval} are {expected[:3]} (pay-as-bid {expected[3]})")
    return reasons


def time_reasons(clock: Clock, interval: int, settled_at: int) -> list[str]:
    """The interval had ended by the chain's clock when it was settled."""
    if settled_at < clock.end(interval):
        return [f"settled at {settled_at}, before the interval ended at {clock.end(interval)}"]
    return []


def late_limit_reasons(clock: Clock, interval: int, set_at: dict[int | None, tuple[int, int]],
                       block_time: Callable[[int], int]) -> list[str]:
    """Every grid limit the interval was checked against (`set_at`: the community's,
    zone None, and each zone's, by the (block, log index) that set it) was set by the
    time the interval started. One set later, perhaps once its flows were metered, lets
    the grid operator make a limit bind after the fact, and on a network collect the
    congestion rent. The contract refuses such a limit (TermsModule) and keeps a
    default changed meanwhile out of the interval; this checks that it did. Intervals
    that started before the market was deployed are history a replay posts limits for
    afterwards, and pass."""
    start = clock.start(interval)
    if start < clock.deployed_at:
        return []
    reasons = []
    for zone, (block, _) in sorted(set_at.items(), key=lambda item: -1 if item[0] is None else item[0]):
        if (at := block_time(block)) > start:
            what = "the community's grid limit" if zone is None else f"zone {zone}'s grid limit"
            reasons.append(f"{what} in force was set in block {block} at {at}, after the interval started at {start}")
    return reasons


def meter_reasons(
    domain: Domain,
    meter_key: Callable[[int, int], str],
    interval: int,
    settled: SettledEnergy,
    readings: list[SignedReading] | None,
    covered: set[int],
) -> list[str]:
    """Each settled participant's energy (and each declared exclusion's) is what its
    meter signed for the interval, signed by the meter key in force for it; and no
    participant the oracle had to settle (`covered`: a mandate in force for the
    interval) was left out while its meter read energy. `meter_key(participant, interval)`
    is the key that signs the participant's reading of the interval."""
    if readings is None:
        return ["no meter-signed readings available for the interval"]
    reasons = []
    read: dict[int, int] = {}
    for signed in readings:
        r = signed.reading
        if r.interval != interval:
            reasons.append(f"participant {r.participant}: a reading for interval {r.interval} among interval {interval}'s")
            continue
        try:
            signer = recover_address(domain, r, signed.signature)
        except GridLedgerError as exc:
            reasons.append(f"participant {r.participant}: reading signature invalid ({exc})")
            continue
        meter = meter_key(r.participant, interval)
        if signer != bytes.fromhex(meter.removeprefix("0x")):
            reasons.append(f"participant {r.participant}: reading signed by {to_checksum_address(signer)}, not its "
                           f"meter {meter}")
            continue
        read[r.participant] = r.net_wh
    for pid, entry in sorted(settled.entries.items()):
        if pid not in read:
            reasons.append(f"participant {pid}: settled {entry.net_wh} Wh without a meter-signed reading")
        elif read[pid] != entry.net_wh:
            reasons.append(f"participant {pid}: settled {entry.net_wh} Wh, its meter read {read[pid]} Wh")
    for pid, net in sorted(settled.excluded.items()):
        if read.get(pid) != net:
            reasons.append(f"participant {pid}: left out as {net} Wh, its meter read {read.get(pid)} Wh")
    for pid in sorted(covered - set(settled.entries) - set(settled.excluded)):
        if read.get(pid, 0) != 0:
            reasons.append(f"participant {pid}: left out though its mandate covers the interval and its meter read "
                           f"{read[pid]} Wh")
    return reasons


def covering(mandates: dict[int, Mandate | None], clock: Clock, interval: int) -> set[int]:
    """Participants whose mandate in force covers the interval."""
    start, end = clock.start(interval), clock.end(interval)
    return {pid for pid, m in mandates.items() if m is not None and m.covers(start, end)}
