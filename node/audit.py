"""Independent verification of every settlement, from the chain and the committed inputs.

The auditor trusts neither the oracle nor its index. It reads the market's events
from the chain in narrow block ranges, fetches each interval's inputs by the hash the
settlement committed to (from any store: an index file or a GridLedger server), checks
the hash, re-runs the clearing, and checks conservation, capacity, prices and that the
settled numbers are exactly the re-run's.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Protocol

from node.errors import GridLedgerError, InputError
from node.events import Event
from node.index import Index
from node.inputs import IntervalInputs
from node.market import Market
from node.oracle import run_clearing, settlement_for

log = logging.getLogger("gridledger.audit")

LOG_CHUNK_BLOCKS = 500


class InputsSource(Protocol):
    def fetch(self, digest: str) -> bytes: ...


@dataclass
class IndexInputs:
    """Inputs kept in a GridLedger index file."""

    index: Index

    def fetch(self, digest: str) -> bytes:
        return self.index.inputs(digest)


@dataclass
class HttpInputs:
    """Inputs served by a GridLedger web UI at ``/api/inputs/<hash>``."""

    base_url: str

    def fetch(self, digest: str) -> bytes:
        url = f"{self.base_url.rstrip('/')}/api/inputs/{digest}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            raise InputError(f"{url} answered {exc.code}") from exc
        except urllib.error.URLError as exc:
            raise InputError(f"cannot fetch {url}: {exc.reason}") from exc


@dataclass
class Verdict:
    interval: int
    tx_hash: str
    reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.reasons


@dataclass
class SettledInterval:
    """One interval as the chain recorded it."""

    header: Event
    entries: list[Event]


def read_settlements(market: Market, from_block: int | None = None) -> tuple[list[SettledInterval], dict[int, str]]:
    """Every settled interval (and the registered participants' owners) from the chain's logs."""
    chain = market.chain
    head = chain.w3.eth.block_number
    start = market.deployment.block if from_block is None else from_block
    events: list[Event] = []
    for low in range(start, head + 1, LOG_CHUNK_BLOCKS):
        events += market.logs(low, min(head, low + LOG_CHUNK_BLOCKS - 1))
    owners = {e.args["participant"]: e.args["owner"] for e in events if e.name == "ParticipantRegistered"}
    by_tx: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        if e.name in ("IntervalSettled", "ParticipantSettled"):
            by_tx[e.tx_hash].append(e)
    settled = []
    for tx_events in by_tx.values():
        header = next(e for e in tx_events if e.name == "IntervalSettled")
        settled.append(SettledInterval(header, [e for e in tx_events if e.name == "ParticipantSettled"]))
    settled.sort(key=lambda s: (s.header.block, s.header.log_index))
    return settled, owners


def audit_interval(settled: SettledInterval, inputs_source: InputsSource, capacity: tuple[int, int], owners: dict[int, str]) -> Verdict:
    h = settled.header.args
    verdict = Verdict(h["interval"], settled.header.tx_hash)
    reasons = verdict.reasons
    entries = [(e.args["participant"], e.args["gridWh"], e.args["p2pWh"], e.args["amount"]) for e in settled.entries]

    # What the contract promises, re-checked from the events alone.
    if sum(p2p for _, _, p2p, _ in entries) != 0:
        reasons.append("P2P energy bought and sold differ")
    imported = sum(g for _, g, _, _ in entries if g > 0)
    exported = -sum(g for _, g, _, _ in entries if g < 0)
    if (imported, exported) != (h["gridImportWh"], h["gridExportWh"]):
        reasons.append(f"grid import/export {imported}/{exported} Wh differ from the declared {h['gridImportWh']}/{h['gridExportWh']}")
    if sum(a for *_, a in entries) + h["gridAmount"] != 0:
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
        return verdict
    inputs = IntervalInputs.from_json(body)
    if "0x" + inputs.hash().hex() != digest or inputs.canonical_json() != body:
        reasons.append(f"inputs do not match the committed hash {digest[:12]}… (tampered or not canonical)")
        return verdict
    if inputs.interval != h["interval"]:
        reasons.append(f"inputs are for interval {inputs.interval}, settled as {h['interval']}")
    if (inputs.buy_price[0], inputs.sell_price[0]) != (h["buyPrice"], h["sellPrice"]):
        reasons.append(f"tariffs {h['buyPrice']}/{h['sellPrice']} differ from the inputs' {inputs.buy_price[0]}/{inputs.sell_price[0]}")
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
    return verdict


def audit(market: Market, inputs_source: InputsSource, progress: bool = True) -> list[Verdict]:
    """Verdicts for every settled interval, plus one for any gap in the sequence."""
    settled, owners = read_settlements(market)
    verdicts = []
    expected_next = settled[0].header.args["interval"] if settled else None
    from tqdm import tqdm

    for s in tqdm(settled, unit="interval", disable=not progress, desc="auditing"):
        k = s.header.args["interval"]
        capacity = market.market.functions.capacityOf(k).call(block_identifier=s.header.block)
        verdict = audit_interval(s, inputs_source, tuple(capacity), owners)
        if k != expected_next:
            verdict.reasons.insert(0, f"out of sequence: expected interval {expected_next}")
        expected_next = k + 1
        verdicts.append(verdict)
    return verdicts


def report(verdicts: Iterable[Verdict]) -> str:
    lines = []
    for v in verdicts:
        lines.append(f"interval {v.interval}: {'OK' if v.ok else 'FAIL'}" + ("" if v.ok else " - " + "; ".join(v.reasons)))
    return "\n".join(lines)


def to_json(verdicts: Iterable[Verdict]) -> str:
    return json.dumps([{"interval": v.interval, "tx_hash": v.tx_hash, "ok": v.ok, "reasons": v.reasons} for v in verdicts], indent=1)
