"""Independent verification of every settlement, from the chain and the committed inputs.

The auditor trusts neither the oracle nor its index. It reads the market's events
from the chain in narrow block ranges, fetches each interval's inputs by the hash the
settlement committed to (from any source, node.audit.sources: the inputs store, an index file or a GridLedger server), checks
the hash, re-runs the clearing, and checks conservation, capacity, prices and that the
settled numbers are exactly the re-run's.

It also re-checks, independently of the contract, that every entry was authorised by
its participant: the orders are decoded from the settlement transaction's calldata and
their EIP-712 signatures verified with node.intent.signing; a mandate must have been in force
(MandateSet and not superseded or revoked) at that point of the chain and cover the
interval by its time, its price limits must hold, and its state-of-charge bounds, which
the contract cannot see, must hold for the participant's battery in the committed inputs.
And (node.audit.trust) that the settlement used the chain's terms, came after its
interval ended, was checked against grid limits set before the interval started, and
settled every participant exactly as its meter signed, leaving out nobody it had to
settle. A settlement a dispute reversed is not audited: it moved nothing.
What held on chain at a settlement (mandates, capacities, owners, meter keys) comes from
the events (node.audit.history), never from contract state at an old block, so the audit
runs against a pruned node.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from collections.abc import Callable, Iterator
from itertools import repeat
from typing import Iterable

from node.errors import GridLedgerError
from node.clearing.inputs import IntervalInputs
from node.chain.market import Market
from node.clearing.interval import mandate_soc_bounds, run_clearing, settlement_for
from node.clearing.zonal import network_reasons
from node.chain.settlement import decode_entry, unpack_order
from node.audit.sources import HttpInputs, IndexInputs, InputsSource, StoreInputs  # noqa: F401 (re-exported)
from node.chain.trust import Clock
from node.audit.jobs import JobStarts, job_window_reasons
from node.audit.shares import share_reasons
from node.audit.history import IntervalChain, MandateHistory, Owners, SettledInterval, read_history
from node.audit.reads import SettlementCall, SettlementCalldata, prefetch
from node.audit.trust import late_limit_reasons, meter_reasons, terms_reasons as chain_terms_reasons, time_reasons
from node.intent.signing import BUY, SELL, Domain, Mandate, recover_signer

log = logging.getLogger("gridledger.audit")



@dataclass
class Verdict:
    interval: int
    tx_hash: str
    reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.reasons


# Inputs audit_interval verified in this process, by hash, for the auditor's own checks
# of the same interval right after (a re-clearing in this process runs just ahead of
# them): parsing and hashing 100 homes' inputs again cost 13 ms an interval.
_verified: dict[str, IntervalInputs] = {}
VERIFIED_KEPT = 8


def audit_interval(settled: SettledInterval, inputs_source: InputsSource, chain: IntervalChain, owners: dict[int, str]) -> Verdict:
    """The checks of one interval that need nothing but its events, inputs, readings and
    `chain` (what held on chain for it): the clearing re-run and the meters. Pure, so
    workers run it (node.audit.parallel)."""
    k = settled.header.args["interval"]
    verdict = Verdict(k, settled.header.tx_hash)
    verdict.reasons += _clearing_reasons(settled, inputs_source, chain.capacity, owners, chain.storage_fees)
    verdict.reasons += meter_reasons(chain.domain, chain.meter_key, k, settled.energy, inputs_source.readings(k),
                                     set(chain.covered))
    return verdict


def _clearing_reasons(settled: SettledInterval, inputs_source: InputsSource, capacity: tuple[int, int],
                      owners: dict[int, str], storage_fees: int = 0) -> list[str]:
    h = settled.header.args
    reasons: list[str] = []
    entries = [(e.participant, e.grid_wh, e.p2p_wh, e.amount) for e in settled.entries]

    # What the contract promises, re-checked from the events alone.
    if sum(p2p for _, _, p2p, _ in entries) != 0:
        reasons.append("P2P energy bought and sold differ")
    imported = sum(g for _, g, _, _ in entries if g > 0)
    exported = -sum(g for _, g, _, _ in entries if g < 0)
    if (imported, exported) != (h["gridImportWh"], h["gridExportWh"]):
        reasons.append(f"grid import/export {imported}/{exported} Wh differ from the declared {h['gridImportWh']}/{h['gridExportWh']}")
    if sum(a for *_, a in entries) + h["gridAmount"] + storage_fees != 0:
        reasons.append("money is not conserved")
    if h["gridImportWh"] > capacity[0] or h["gridExportWh"] > capacity[1]:
        reasons.append(f"grid flow {h['gridImportWh']}/{h['gridExportWh']} Wh exceeds capacity {capacity[0]}/{capacity[1]} Wh")
    unknown = [pid for pid, *_ in entries if pid not in owners or pid == 0]
    if unknown:
        reasons.append(f"unregistered participants {unknown}")

    # The clearing re-run from the committed inputs must give exactly these numbers.
    digest = "0x" + h["inputsHash"].hex()
    try:
        body = inputs_source.fetch(digest)
    except GridLedgerError as exc:
        reasons.append(f"inputs {digest[:12]}… unavailable: {exc}")
        return reasons
    inputs = IntervalInputs.from_json(body)
    if "0x" + inputs.hash().hex() != digest or inputs.canonical_json() != body:
        reasons.append(f"inputs do not match the committed hash {digest[:12]}… (tampered or not canonical)")
        return reasons
    _verified[digest] = inputs
    while len(_verified) > VERIFIED_KEPT:
        _verified.pop(next(iter(_verified)))
    if inputs.interval != h["interval"]:
        reasons.append(f"inputs are for interval {inputs.interval}, settled as {h['interval']}")
    if (inputs.buy_price[0], inputs.sell_price[0]) != (h["importPrice"], h["exportPrice"]):
        reasons.append(f"tariffs {h['importPrice']}/{h['exportPrice']} differ from the inputs' {inputs.buy_price[0]}/{inputs.sell_price[0]}")
    if h["gridImportWh"] > inputs.import_capacity_wh[0] or h["gridExportWh"] > inputs.export_capacity_wh[0]:
        reasons.append("grid flow exceeds the capacity in the inputs")
    expected = settlement_for(inputs, run_clearing(inputs))
    rerun = list(zip(expected.participants.tolist(), expected.grid_wh.tolist(), expected.p2p_wh.tolist(), expected.amount.tolist()))
    if expected.p2p_price != h["p2pPrice"]:
        reasons.append(f"P2P price {h['p2pPrice']} differs from the re-run's {expected.p2p_price}")
    if rerun != entries:
        differing = [a[0] for a, b in zip(rerun, entries) if a != b] or ["participant list"]
        reasons.append(f"settled numbers differ from the re-run for participants {differing[:10]}")
    if expected.grid_amount != h["gridAmount"]:
        reasons.append(f"grid amount {h['gridAmount']} differs from the re-run's {expected.grid_amount}")
    declared = dict(settled.energy.excluded)
    if declared != dict(expected.excluded):
        reasons.append(f"left out {sorted(declared.items())}, the re-run leaves out {sorted(expected.excluded)}")
    return reasons + _zone_reasons(settled, inputs, expected.zone_prices, expected.congestion_rent_milli, entries)


def _zone_reasons(settled: SettledInterval, inputs: IntervalInputs, zone_prices: tuple[int, ...], rent_milli: int,
                  entries: list[tuple[int, int, int, int]]) -> list[str]:
    """A zonal settlement's zone prices and congestion rent as the re-run has them, and
    its lines within their committed limits (the contract checks neither the re-run nor
    the flows of a meshed network)."""
    reasons = []
    event = settled.zones
    prices = [] if event is None else list(event.args["zonePrices"])
    if prices != list(zone_prices):
        reasons.append(f"zone prices {prices} differ from the re-run's {list(zone_prices)}")
    if event is not None and event.args["congestionRentMilli"] != rent_milli:
        reasons.append(f"congestion rent {event.args['congestionRentMilli']} milli-units differs from the re-run's {rent_milli}")
    if inputs.network is not None:
        reasons += network_reasons(inputs.network, inputs.participants, {pid: (grid, p2p) for pid, grid, p2p, _ in entries})
    return reasons


def audit_authorisation(
    settled: SettledInterval, calls: list[SettlementCall], calldata: SettlementCalldata, domain: Domain,
    mandates: MandateHistory, owners: Owners, clock: Clock,
) -> list[str]:
    """Why entries of this settlement were not authorised by their participants (empty
    if all were): orders from the calldata of the transactions that checked them (the
    `settle`, or each `verifyChunk` in order), else the mandate in force at that point."""
    reasons = []
    interval = settled.header.args["interval"]
    remaining = iter(settled.entries)
    words = unused = 0
    for call in calls:
        try:
            params = calldata.decode(call.tx_input)
        except ValueError:
            reasons.append("settlement calldata does not decode with this build's ABI (market deployed from another "
                           "contract version)")
            continue
        auths = list(params["orders"])
        for word in params["entries"]:
            if decode_entry(word).excluded:
                continue  # declared left out: moves nothing (the meters check it)
            words += 1
            entry = next(remaining, None)
            if entry is None:
                continue
            pid, net, amount = entry.participant, entry.net_wh, entry.amount
            if word >> 255:
                if not auths:
                    reasons.append(f"participant {pid}: flagged as authorised by an order, but no order left")
                    continue
                packed, r, vs = auths.pop(0)
                reasons += _order_reasons(domain, owners.at(pid, (call.block, call.log_index)), pid, interval, packed, r, vs, net, amount, call.timestamp)
            else:
                in_force = mandates.in_force(pid, call.block, call.log_index)
                reasons += _mandate_reasons(in_force and mandates.parsed(in_force), pid, net, amount, clock, interval)
        unused += len(auths)
    if unused:
        reasons.append(f"{unused} order(s) in the calldata authorise no entry")
    if words != len(settled.entries):
        reasons.append("calldata entries differ from the settled events")
    return reasons


def _order_reasons(domain: Domain, owner: str | None, pid: int, interval: int, packed: int, r: bytes, vs: bytes,
                   net: int, amount: int, timestamp: int) -> list[str]:
    try:
        signed = unpack_order(pid, interval, packed, r, vs)
        signer = recover_signer(domain, signed.order, signed.signature)
    except GridLedgerError as exc:
        return [f"participant {pid}: order is not a valid signed order ({exc})"]
    o = signed.order
    if owner is None or signer.lower() != owner.lower():
        return [f"participant {pid}: order signed by {signer}, not the owner {owner}"]
    reasons = []
    if timestamp > o.expiry:
        reasons.append(f"participant {pid}: order expired at {o.expiry}, settled at {timestamp}")
    quantity = net if o.side == BUY else -net
    if quantity < 0:
        reasons.append(f"participant {pid}: {'buy' if o.side == BUY else 'sell'} order settled as net {net} Wh")
    elif quantity > o.energy_wh:
        reasons.append(f"participant {pid}: {quantity} Wh settled, order signed for {o.energy_wh} Wh")
    reasons += _price_reasons(f"participant {pid}: order", net, amount, o.limit_price if o.side == BUY else None,
                              o.limit_price if o.side == SELL else None)
    return reasons


def _mandate_reasons(mandate: Mandate | None, pid: int, net: int, amount: int, clock: Clock, interval: int) -> list[str]:
    if mandate is None:
        return [f"participant {pid}: settled without an order or a mandate in force"]
    if not mandate.covers(clock.start(interval), clock.end(interval)):
        return [f"participant {pid}: mandate {mandate.nonce} (valid {mandate.valid_from}..{mandate.valid_until}) "
                f"does not cover interval {interval}"]
    return _price_reasons(f"participant {pid}: mandate {mandate.nonce}", net, amount, mandate.max_buy_price,
                          mandate.min_sell_price)


def _price_reasons(label: str, net: int, amount: int, max_buy: int | None, min_sell: int | None) -> list[str]:
    """The contract's limits in thousandths of a unit, with its 999 of rounding slack."""
    if net >= 0 and max_buy is not None and -amount * 1000 > net * max_buy + 999:
        return [f"{label} allows paying {net * max_buy / 1000:.0f} units for {net} Wh, charged {-amount}"]
    if net <= 0 and min_sell is not None and amount * 1000 < -net * min_sell - 999:
        return [f"{label} requires at least {-net * min_sell / 1000:.0f} units for {-net} Wh, paid {amount}"]
    return []


def terms_reasons(inputs: IntervalInputs, settled: set[int], mandates: MandateHistory, block: int, log_index: int) -> list[str]:
    """Where the committed inputs misstate the participants' mandates on chain: a
    mandate the inputs claim that was not the one in force, and batteries of settled
    participants given state-of-charge bounds wider than their owners' mandates allow
    (node.clearing.mandate_soc_bounds, 1 Wh of rounding allowed). Each interval's end
    state is the next one's start, so checking every interval's bounds covers every state."""
    reasons = []
    claimed = {m["participant"]: m for m in inputs.mandates or []}
    for pid, m in sorted(claimed.items()):
        in_force = mandates.in_force(pid, block, log_index)
        if in_force is None or in_force["nonce"] != m["nonce"]:
            chain = "none" if in_force is None else f"nonce {in_force['nonce']}"
            reasons.append(f"participant {pid}: inputs use mandate nonce {m['nonce']}, the chain had {chain} in force")
    # An auction schedules no battery (each home's order is its own decision): its
    # inputs list batteries only as the homes' state.
    for b in inputs.batteries if inputs.mechanism != "auction" else ():
        if b.participant not in settled:
            continue  # not scheduled: the clearing left its home out
        mandate = mandates.in_force(b.participant, block, log_index)
        if mandate is None:
            reasons.append(f"participant {b.participant}: battery scheduled without a mandate")
            continue
        terms = mandates.parsed(mandate)
        # The widest range the mandate allows, whatever the battery's physical minimum.
        low, high = mandate_soc_bounds(replace(b, min_soc_wh=0), terms, b.soc_wh)
        bounds = f"{mandate['minSocPpm'] / 1e4:g}-{mandate['maxSocPpm'] / 1e4:g}%"
        if b.min_soc_wh < low - 1 or b.upper_wh > high + 1:
            reasons.append(f"participant {b.participant}: inputs let the battery range over {b.min_soc_wh}-{b.upper_wh} Wh, "
                           f"wider than the mandate's {bounds} ({low}-{high} Wh from {b.soc_wh} Wh)")
    return reasons


# Re-runs audit_interval (the clearing again, the costly part) for settled intervals with
# their capacities, an inputs source and the owners, yielding the verdicts in order.
Reruns = Callable[[list[SettledInterval], list[IntervalChain], InputsSource, dict[int, str]], Iterator[Verdict]]


def rerun_here(settled: list[SettledInterval], chains: list[IntervalChain], inputs_source: InputsSource,
               owners: dict[int, str]) -> Iterator[Verdict]:
    """audit_interval for each interval, in this process, one after another."""
    return map(audit_interval, settled, repeat(inputs_source), chains, repeat(owners))


def audit(market: Market, inputs_source: InputsSource, progress: bool = True, reruns: Reruns = rerun_here) -> list[Verdict]:
    """Verdicts for every settled interval, plus one for any gap in the sequence.
    `reruns` may fan the re-clearing out over workers (node.audit.parallel); the checks
    against the chain stay here."""
    history = read_history(market)
    settled, owners, mandates = history.settled, history.owners, history.mandates
    clock = market.clock()
    domain = market.domain()
    calldata = SettlementCalldata(market.abi)
    verdicts = []
    expected_next = settled[0].header.args["interval"] if settled else None
    from tqdm import tqdm

    chains = [history.at(s, clock, domain) for s in settled]
    block_time = history.capacities.block_time
    job_starts = JobStarts()
    rerun = reruns(settled, chains, inputs_source, owners.current)
    checks = zip(settled, rerun, prefetch(market, settled))
    for s, verdict, read in tqdm(checks, total=len(settled), unit="interval", disable=not progress, desc="auditing"):
        k = s.header.args["interval"]
        calls = read.calls
        at = (calls[0].block, calls[0].log_index)
        verdict.reasons += audit_authorisation(s, calls, calldata, domain, mandates, owners, clock)
        inputs = _committed_inputs(s, inputs_source)
        if inputs is not None:
            settled_ids = {e.participant for e in s.entries}
            verdict.reasons += terms_reasons(inputs, settled_ids, mandates, *at)
            verdict.reasons += job_window_reasons(inputs, domain, lambda pid: owners.at(pid, at), clock)
            verdict.reasons += job_starts.reasons(inputs)
            verdict.reasons += share_reasons(inputs, s.entries, history.shares)
        verdict.reasons += chain_terms_reasons(read.terms, k, s.header.args, inputs)
        verdict.reasons += time_reasons(clock, k, calls[0].timestamp)
        verdict.reasons += late_limit_reasons(clock, k, history.capacities.set_points(k, s.checked_at, clock.start(k)),
                                              block_time)
        if k != expected_next:
            verdict.reasons.insert(0, f"out of sequence: expected interval {expected_next}")
        expected_next = k + 1
        verdicts.append(verdict)
    return verdicts


def _committed_inputs(settled: SettledInterval, inputs_source: InputsSource) -> IntervalInputs | None:
    """The interval's inputs if available and matching the hash (audit_interval reports otherwise)."""
    digest = "0x" + settled.header.args["inputsHash"].hex()
    if (inputs := _verified.pop(digest, None)) is not None:
        return inputs
    try:
        inputs = IntervalInputs.from_json(inputs_source.fetch(digest))
    except GridLedgerError:
        return None
    return inputs if "0x" + inputs.hash().hex() == digest else None


def report(verdicts: Iterable[Verdict]) -> str:
    lines = []
    for v in verdicts:
        lines.append(f"interval {v.interval}: {'OK' if v.ok else 'FAIL'}" + ("" if v.ok else " - " + "; ".join(v.reasons)))
    return "\n".join(lines)


def to_json(verdicts: Iterable[Verdict]) -> str:
    return json.dumps([{"interval": v.interval, "tx_hash": v.tx_hash, "ok": v.ok, "reasons": v.reasons} for v in verdicts], indent=1)
