"""The auditor's checks of shared batteries (issue 12): accounts and storage fees.

The contract checks that every share participant's entry paid the storage fee of the
terms in force and that the fees went to the terms' operator. What it cannot see, and
this checks against the committed inputs and the chain's events:

- the inputs name exactly the chain's share participants (their battery and share) and
  the chain's storage fee and operator for the interval;
- every account stays within its share (its battery in the inputs is no bigger than the
  share, its state of charge within it), and a battery's shares add up to no more than
  its capacity;
- what a battery's accounts together took in and gave out in the interval is within
  the battery's power (one Wh of rounding per account);
- the fees the operator got (StorageFeesPaid) are the per-entry fees of the settled
  share entries, to the unit.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from node.chain.events import Event
from node.chain.settlement import Entry, storage_fee_units
from node.clearing.inputs import IntervalInputs


@dataclass
class SharesHistory:
    """Share participants, storage terms and storage fees, from the market's events in order."""

    registered: dict[int, tuple[int, int]] = field(default_factory=dict)  # participant -> (battery, Wh)
    versions: list[tuple[int, int, int]] = field(default_factory=list)  # (from interval, fee, operator)
    paid: dict[int, tuple[int, int]] = field(default_factory=dict)  # interval -> (operator, amount)

    EVENTS = ("ShareRegistered", "TermsScheduled", "StorageFeeScheduled", "StorageFeesPaid", "StorageFeesReversed")

    def add(self, e: Event) -> None:
        a = e.args
        if e.name == "ShareRegistered":
            self.registered[a["participant"]] = (a["battery"], a["capacityWh"])
        elif e.name == "TermsScheduled":
            # A version replaces those from its index on and keeps the storage fee before it.
            del self.versions[a["index"]:]
            _, fee, operator = self.versions[-1] if self.versions else (0, 0, 0)
            self.versions.append((a["fromInterval"], fee, operator))
        elif e.name == "StorageFeeScheduled":
            self.versions[a["index"]] = (a["fromInterval"], a["storageFee"], a["storageOperator"])
        elif e.name == "StorageFeesPaid":
            self.paid[a["interval"]] = (a["operator"], a["amount"])
        elif e.name == "StorageFeesReversed":
            self.paid.pop(a["interval"], None)

    def terms_of(self, interval: int) -> tuple[int, int]:
        """(storage fee per kWh, operator) in force for `interval`."""
        in_force = [(fee, operator) for start, fee, operator in self.versions if start <= interval]
        return in_force[-1] if in_force else (0, 0)

    def fees_paid(self, interval: int) -> int:
        return self.paid.get(interval, (0, 0))[1]


def share_reasons(inputs: IntervalInputs, entries: list[Entry], history: SharesHistory) -> list[str]:
    """What is wrong with the interval's shared batteries (see the module docstring)."""
    k = inputs.interval
    reasons = []
    fee, operator = history.terms_of(k)
    if (inputs.storage_fee, inputs.storage_operator) != (fee, operator) and (inputs.shares or fee):
        reasons.append(f"inputs carry storage fee {inputs.storage_fee} to participant {inputs.storage_operator}, "
                       f"the chain's terms for interval {k} say {fee} to participant {operator}")
    claimed = {s.participant: (s.battery, s.share_wh) for s in inputs.shares}
    settled = {e.participant: e for e in entries}
    for pid in sorted(set(claimed) | (set(history.registered) & set(settled))):
        if claimed.get(pid) != history.registered.get(pid):
            reasons.append(f"participant {pid}: the inputs make it a share {claimed.get(pid)}, the chain "
                           f"{history.registered.get(pid)} (battery, Wh)")
    batteries = {b.battery: b for b in inputs.shared_batteries}
    accounts = {b.participant: b for b in inputs.batteries}
    held = defaultdict(int)
    into, out_of, count = defaultdict(int), defaultdict(int), defaultdict(int)
    for s in inputs.shares:
        held[s.battery] += s.share_wh
        count[s.battery] += 1
        account = accounts.get(s.participant)
        if (account is None or max(account.capacity_wh, account.upper_wh) > s.share_wh
                or not 0 <= account.soc_wh <= s.share_wh):
            reasons.append(f"share participant {s.participant}: its account in the inputs "
                           f"({'none' if account is None else f'{account.soc_wh}/{account.capacity_wh} Wh'}) "
                           f"is not within its share of {s.share_wh} Wh")
        if (e := settled.get(s.participant)) is not None:
            into[s.battery] += max(e.net_wh, 0)
            out_of[s.battery] += max(-e.net_wh, 0)
    for number, total in sorted(held.items()):
        b = batteries.get(number)
        if b is None:
            reasons.append(f"shared battery {number}: its shares are in the inputs, the battery is not")
            continue
        if total > b.capacity_wh:
            reasons.append(f"shared battery {number}: shares of {total} Wh in a battery of {b.capacity_wh} Wh")
        if into[number] > b.max_charge_wh + count[number] or out_of[number] > b.max_discharge_wh + count[number]:
            reasons.append(f"shared battery {number}: its accounts took in {into[number]} Wh and gave out "
                           f"{out_of[number]} Wh, beyond its {b.max_charge_wh}/{b.max_discharge_wh} Wh per interval")
    owed = sum(storage_fee_units(e.net_wh, fee) for pid, e in settled.items() if pid in history.registered)
    if owed != history.fees_paid(k):
        reasons.append(f"storage fees: the share entries owe {owed} units at {fee}/kWh, "
                       f"the operator got {history.fees_paid(k)}")
    elif owed and history.paid[k][0] != operator:
        reasons.append(f"storage fees went to participant {history.paid[k][0]}, the terms name {operator}")
    return reasons
