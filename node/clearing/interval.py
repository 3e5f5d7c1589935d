"""One interval's clearing from its committed inputs, within what participants signed.

`run_clearing` is a pure function of an `IntervalInputs`: the oracle calls it to
settle, the auditor calls it again to check, and both get the same settlement to the
Wh and the unit. Two mechanisms, one settlement format:

* ``community``: the cvxpy optimiser schedules the batteries and the community trades
  as one at the dual price. Only participants with a mandate in force take part, and
  each one's energy is split between peers and the grid so that the average price it
  pays (or gets) stays within its mandate; a participant whose mandate cannot be met
  at the clearing's price is left out and the interval cleared again without it.
  Left-out homes are settled by their supplier outside the community; their forecast
  net flow still loads the feeder, so it comes off the community's grid capacity.
  On a network (``inputs.network``) each home's P2P energy is priced at its zone's
  price instead (node.clearing.zonal), and the settlement carries the zone prices.
* ``auction``: a double auction of the interval's signed orders (one per participant,
  see optimizer/auction.py), at a uniform price or pay-as-bid. Entries are exactly the
  orders' fills; each is authorised by its order in the settlement's calldata.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from node.errors import InputError
from node.clearing.inputs import BatteryInputs, IntervalInputs
from node.clearing.shares import auction_order_bounds, clamp_shares, shares_after
from node.clearing.left_out import forced_starts, left_out_draw_kwh, left_out_draw_wh, left_out_indoor_mc
from node.chain.settlement import Settlement
from node.clearing.pricing import priced_settlement, step0_integers
from node.clearing.zonal import check_zone_count, subset_network, zonal_step
from node.intent.signing import BUY, Mandate, SignedOrder
from optimizer import clear
from optimizer.auction import AuctionOrder, AuctionResult, Side, clear_auction
from optimizer.rounding import largest_remainder
from optimizer.types import Batteries, Clearing, ClearingInputs, Jobs, Thermal


@dataclass(frozen=True)
class IntervalClearing:
    """What an interval settles: per-participant integer energies (ascending ids) at
    `p2p_price` (or each entry's own price under pay-as-bid), the orders authorising
    entries, and who was left out and why."""

    participants: np.ndarray
    grid_wh: np.ndarray  # + imported, - exported
    p2p_wh: np.ndarray  # + bought from peers, - sold
    p2p_price: int  # units per kWh; informational under pay-as-bid
    p2p_prices: np.ndarray | None = None  # pay-as-bid: each entry's own P2P price
    orders: tuple[SignedOrder, ...] = ()
    excluded: dict[int, str] = field(default_factory=dict)
    optimiser: Clearing | None = None  # the community optimiser's result, if it ran
    scheduled: tuple[int, ...] = ()  # participants whose batteries it scheduled, in its order
    scheduled_jobs: tuple[tuple[int, int], ...] = ()  # (participant, job) of the jobs it placed, in its order
    scheduled_hvacs: tuple[int, ...] = ()  # participants whose HVACs it ran, in its order
    auction: AuctionResult | None = None
    zone_prices: tuple[int, ...] = ()  # on a network: each zone's P2P price (p2p_prices: each entry's)


def run_clearing(inputs: IntervalInputs) -> IntervalClearing:
    """The clearing of committed inputs; the oracle and the auditor both call this."""
    if inputs.network is not None:
        if inputs.mechanism != "community":
            raise InputError(
                f"interval {inputs.interval}'s inputs clear an auction on a network; zonal prices settle for the "
                "community mechanism only (the classroom auction clears zonal offers: gridledger classroom)"
            )
        if inputs.pricing != "uniform":
            raise InputError(
                f"interval {inputs.interval}'s terms price P2P energy pay-as-bid; zone prices settle under uniform "
                "pricing only (the contract refuses them otherwise): schedule uniform terms for a network"
            )
        check_zone_count(inputs.network, inputs.interval)
    if inputs.mechanism == "auction":
        return clamp_shares(inputs, _clear_auction(inputs))
    return clamp_shares(inputs, _clear_community(inputs))


def settlement_for(inputs: IntervalInputs, result: IntervalClearing) -> Settlement:
    """The settlement of `result` at the chain's terms the inputs carry, the participants
    it leaves out declared with their metered energy."""
    extra = {} if result.p2p_prices is None else {"p2p_prices": result.p2p_prices}
    if result.zone_prices:
        extra["zone_prices"] = result.zone_prices
    return priced_settlement(
        inputs.interval,
        inputs.hash(),
        result.participants,
        result.grid_wh,
        result.p2p_wh,
        inputs.buy_price[0],
        inputs.sell_price[0],
        result.p2p_price,
        **extra,
        p2p_fee=inputs.p2p_fee,
        terms_index=inputs.terms_index,
        excluded=declared_exclusions(inputs, result),
        storage_fee=inputs.storage_fee,
        storage_operator=inputs.storage_operator,
        shares=frozenset(s.participant for s in inputs.shares),
    )


def left_out_of(inputs: IntervalInputs, result: IntervalClearing) -> set[int]:
    """The participants of the inputs that the clearing did not settle."""
    return {int(p) for p in inputs.participants} - {int(p) for p in result.participants}


def declared_exclusions(inputs: IntervalInputs, result: IntervalClearing) -> tuple[tuple[int, int], ...]:
    """(participant, net Wh) of every participant left out although its mandate covers
    the interval and its meter reads energy: the settlement declares them, so that the
    contract checks why (its mandate or credit rules out the grid's price) and a dispute
    cannot call it an omission. A left-out home's battery stays idle, so its metered net
    energy is its load less its PV, plus its jobs' and HVAC's draw (node.clearing.left_out)."""
    if inputs.mechanism != "community" or inputs.mandates is None:
        return ()
    covered = {m["participant"] for m in inputs.mandates}
    row = {pid: i for i, pid in enumerate(inputs.participants)}
    draw = left_out_draw_wh(inputs, left_out_of(inputs, result))
    declared = []
    for pid in sorted(result.excluded):
        if pid in covered and pid in row:
            net = inputs.load_wh[row[pid]][0] - inputs.pv_wh[row[pid]][0] + draw.get(pid, 0)
            if net:
                declared.append((pid, int(net)))
    return tuple(declared)


class CarriedState(dict):
    """What one interval hands the next: battery states by participant (the mapping, Wh);
    in `job_starts`, the interval each started job started in, by (participant, job); in
    `indoor_mc`, each HVAC home's indoor temperature, milli-degrees C."""

    def __init__(self, soc=(), job_starts: dict[tuple[int, int], int] | None = None,
                 indoor_mc: dict[int, int] | None = None, share_pwh: dict[int, int] | None = None) -> None:
        super().__init__(soc)
        self.job_starts = dict(job_starts or {})
        self.indoor_mc = dict(indoor_mc or {})
        # Each account in a shared battery: what it can deliver, pWh (node.clearing.shares).
        self.share_pwh = dict(share_pwh or {})


def soc_after(inputs: IntervalInputs, result: IntervalClearing) -> CarriedState:
    """Battery states after the interval, in whole Wh, and the jobs started so far.
    Batteries the optimiser did not schedule (auction intervals, homes left out) are
    carried over unchanged; a job starts when the interval that starts it is settled (a
    left-out home's job at its latest start, its HVAC as a thermostat: node.clearing.left_out)."""
    soc = {b.participant: b.soc_wh for b in inputs.batteries}
    starts = {(j.participant, j.job): j.started_interval for j in inputs.jobs if j.started_interval is not None}
    indoor = {h.participant: h.indoor_mc for h in inputs.hvacs}
    if inputs.mechanism == "community":
        left_out = left_out_of(inputs, result)
        starts.update({(j.participant, j.job): inputs.interval for j in forced_starts(inputs, left_out)})
        indoor.update(left_out_indoor_mc(inputs, left_out))
    shares = shares_after(inputs, result)
    if result.optimiser is None:
        return CarriedState(soc, starts, indoor, shares)
    scheduled_ids = set(result.scheduled)
    scheduled = [b for b in inputs.batteries if b.participant in scheduled_ids]
    for battery, planned_kwh in zip(scheduled, result.optimiser.soc_path_kwh[:, 1]):
        soc[battery.participant] = int(np.clip(round(planned_kwh * 1000), battery.min_soc_wh, battery.upper_wh))
    if result.optimiser.job_starts_now is not None:
        for key, now in zip(result.scheduled_jobs, result.optimiser.job_starts_now):
            if now:
                starts[key] = inputs.interval
    if result.optimiser.indoor_after_c is not None:
        for pid, after_c in zip(result.scheduled_hvacs, result.optimiser.indoor_after_c):
            indoor[pid] = int(round(after_c * 1000))
    # An account's state of charge is what the contract keeps, not the optimiser's plan
    # (they differ by the rounding of its entry): whole Wh stored, rounded down.
    by_pid = {b.participant: b for b in inputs.batteries}
    for pid, pwh in shares.items():
        b = by_pid[pid]
        soc[pid] = int(np.clip(max(pwh, 0) // (b.discharge_efficiency_ppm * 1_000_000), 0, b.capacity_wh))
    return CarriedState(soc, starts, indoor, shares)


def mandate_soc_bounds(battery: BatteryInputs, mandate: Mandate | None, soc_wh: int) -> tuple[int, int]:
    """The optimiser's (min, max) state of charge for a battery: its physical range
    narrowed to the owner's mandate, but never excluding where it is now (a battery
    outside a newly signed band is brought no further out, not asked the impossible)."""
    low, high = battery.min_soc_wh, battery.capacity_wh
    if mandate is not None:
        low = max(low, -(-mandate.min_soc_ppm * battery.capacity_wh // 1_000_000))
        high = min(high, mandate.max_soc_ppm * battery.capacity_wh // 1_000_000)
    high = max(high, low)
    return min(low, soc_wh), max(high, soc_wh)


# -- community ----------------------------------------------------------------------


def _clear_community(inputs: IntervalInputs) -> IntervalClearing:
    mandates = None if inputs.mandates is None else {m["participant"]: Mandate.from_values(m) for m in inputs.mandates}
    pids = np.asarray(inputs.participants, dtype=np.int64)
    excluded: dict[int, str] = {}
    if mandates is not None:
        excluded = {int(p): "no mandate in force" for p in pids if int(p) not in mandates}
    for p in inputs.credit_excluded:
        excluded[int(p)] = "its wallet and credit limit cannot pay its energy at the import tariff"
    full = inputs.to_clearing_inputs()
    # A P2P buyer pays the price plus the chain's P2P fee, never more than the grid.
    buy, sell = inputs.buy_price[0] - inputs.p2p_fee, inputs.sell_price[0]
    # Each pass leaves out at least one more participant, so this ends.
    while True:
        rows = np.array([i for i, p in enumerate(pids) if int(p) not in excluded], dtype=np.int64)
        if rows.size == 0:
            return IntervalClearing(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), sell,
                                    excluded=excluded)
        sub, scheduled, scheduled_jobs = _subset(full, rows, pids, [j.job for j in inputs.jobs])
        if full.network is not None and sub is not full:
            sub = replace(sub, network=subset_network(full, rows))
        # Rounding every home's flow to whole Wh can add under 1 Wh each to the
        # community total, so the optimiser keeps that much below the capacity.
        optimiser = clear(sub, capacity_margin_kwh=rows.size / 1000)
        ids = pids[rows]
        terms = [None if mandates is None else mandates[int(p)] for p in ids]
        zone_prices, prices = (), None
        if sub.network is None:
            net_wh, price = step0_integers(optimiser, buy, sell)
            p2p_wh, refused = _split_p2p(ids, net_wh, float(optimiser.p2p_buy_kwh.sum()) * 1000, price, buy, sell, terms)
        else:
            step = zonal_step(optimiser, sub.network, ids, inputs.buy_price[0], sell, inputs.p2p_fee, terms)
            net_wh, p2p_wh, refused, zone_prices = step.net_wh, step.p2p_wh, step.refused, step.zone_prices
            # The community's reference price (the header's): the lowest zone price.
            price, prices = min(zone_prices), step.prices
        if not refused:
            order = np.argsort(ids, kind="stable")
            return IntervalClearing(
                participants=ids[order],
                grid_wh=(net_wh - p2p_wh)[order],
                p2p_wh=p2p_wh[order],
                p2p_price=price,
                p2p_prices=None if prices is None else prices[order],
                zone_prices=zone_prices,
                excluded=excluded,
                optimiser=optimiser,
                scheduled=scheduled,
                scheduled_jobs=scheduled_jobs,
                scheduled_hvacs=tuple(int(pids[rows[h]]) for h in sub.thermal.home),
            )
        excluded.update(refused)


def _subset(full: ClearingInputs, rows: np.ndarray, pids: np.ndarray, job_ids: list[int] | None = None
            ) -> tuple[ClearingInputs, tuple[int, ...], tuple[tuple[int, int], ...]]:
    """The clearing inputs of homes `rows` only, the participants of their batteries and
    the (participant, job) of their jobs. The others' forecast net flow comes off the grid
    capacity in the direction it loads the feeder, their jobs' and HVACs' draw included
    (nobody places them: node.clearing.left_out)."""
    jobs = full.jobs
    job_ids = job_ids or [0] * jobs.count
    th = full.thermal
    if rows.size == full.homes:
        return (full, tuple(int(pids[h]) for h in full.batteries.home),
                tuple((int(pids[h]), job) for h, job in zip(jobs.home, job_ids)))
    left_out = np.setdiff1d(np.arange(full.homes), rows)
    background = ((full.load_kwh[left_out] - full.pv_kwh[left_out]).sum(axis=0)
                  + left_out_draw_kwh(jobs, full.thermal, left_out, full.homes, full.load_kwh.shape[1]))
    new_row = {int(r): i for i, r in enumerate(rows)}
    b = full.batteries
    keep = np.array([int(h) in new_row for h in b.home], dtype=bool)
    kept = np.array([int(h) in new_row for h in jobs.home], dtype=bool)
    warm = np.array([int(h) in new_row for h in th.home], dtype=bool)
    batteries = Batteries(
        home=np.array([new_row[int(h)] for h in b.home[keep]], dtype=int),
        capacity_kwh=b.capacity_kwh[keep],
        max_charge_kwh=b.max_charge_kwh[keep],
        max_discharge_kwh=b.max_discharge_kwh[keep],
        charge_efficiency=b.charge_efficiency[keep],
        discharge_efficiency=b.discharge_efficiency[keep],
        soc_kwh=b.soc_kwh[keep],
        min_soc_kwh=b.min_soc_kwh[keep],
        charge_cost_per_kwh=None if b.charge_cost_per_kwh is None else b.charge_cost_per_kwh[keep],
    )
    sub = ClearingInputs(
        load_kwh=full.load_kwh[rows],
        pv_kwh=full.pv_kwh[rows],
        buy_price_per_kwh=full.buy_price_per_kwh,
        sell_price_per_kwh=full.sell_price_per_kwh,
        import_capacity_kwh=np.maximum(full.import_capacity_kwh - np.maximum(background, 0), 0),
        export_capacity_kwh=np.maximum(full.export_capacity_kwh - np.maximum(-background, 0), 0),
        p2p_cost_per_kwh=full.p2p_cost_per_kwh,
        batteries=batteries,
        jobs=Jobs(home=np.array([new_row[int(h)] for h in jobs.home[kept]], dtype=int), energy_kwh=jobs.energy_kwh[kept],
                  earliest=jobs.earliest[kept], latest=jobs.latest[kept], started=jobs.started[kept], start=jobs.start[kept]),
        thermal=Thermal(np.array([new_row[int(h)] for h in th.home[warm]], dtype=int), th.max_kwh[warm], th.cop[warm],
                        th.sign[warm], th.resistance_k_per_kw[warm], th.capacitance_kwh_per_k[warm], th.step_hours,
                        th.indoor_c[warm], th.outdoor_c[warm], th.comfort_low_c[warm], th.comfort_high_c[warm]),
    )
    return (sub, tuple(int(pids[h]) for h in b.home[keep]),
            tuple((int(pids[h]), job_ids[i]) for i, h in enumerate(jobs.home) if kept[i]))


def _split_p2p(
    ids: np.ndarray,
    net_wh: np.ndarray,
    planned_p2p_wh: float,
    price: int,
    buy: int,
    sell: int,
    terms: list[Mandate | None],
) -> tuple[np.ndarray, dict[int, str]]:
    """Each home's P2P energy (whole Wh, bought == sold) and the participants whose
    mandates no split can satisfy.

    A buyer of D Wh whose mandate caps the price at m pays (D - q) * buy + q * price for
    q Wh from peers, so it needs q >= D (buy - m) / (buy - price); a seller of S Wh with
    floor n needs r >= S (n - sell) / (price - sell) sold to peers. Those minimums come
    first; the rest of the P2P volume goes pro rata to what each can still take (with
    no binding mandate, exactly the plain pro-rata split)."""
    demand = np.maximum(net_wh, 0)
    supply = np.maximum(-net_wh, 0)
    volume = int(min(round(planned_p2p_wh), demand.sum(), supply.sum()))
    need_buy = np.zeros_like(net_wh)
    need_sell = np.zeros_like(net_wh)
    refused: dict[int, str] = {}
    for i, m in enumerate(terms):
        if m is None or net_wh[i] == 0:
            continue
        pid = int(ids[i])
        if net_wh[i] > 0 and m.max_buy_price < buy:
            if m.max_buy_price < price or price == buy:
                refused[pid] = (f"mandate {m.nonce} pays at most {m.max_buy_price}/kWh; the interval's P2P price is "
                                f"{price} and the grid's {buy}")
                continue
            need_buy[i] = -(-int(demand[i]) * (buy - m.max_buy_price) // (buy - price))
        elif net_wh[i] < 0 and m.min_sell_price > sell:
            if m.min_sell_price > price or price == sell:
                refused[pid] = (f"mandate {m.nonce} sells at no less than {m.min_sell_price}/kWh; the interval's P2P "
                                f"price is {price} and the grid's {sell}")
                continue
            need_sell[i] = -(-int(supply[i]) * (m.min_sell_price - sell) // (price - sell))
    refused.update(_over_volume(ids, need_buy, volume, "buy from"))
    refused.update(_over_volume(ids, need_sell, volume, "sell to"))
    if refused or volume <= 0:
        return np.zeros_like(net_wh), refused
    bought = need_buy + _share(demand - need_buy, volume - int(need_buy.sum()))
    sold = need_sell + _share(supply - need_sell, volume - int(need_sell.sum()))
    return (bought - sold).astype(np.int64), {}


def _over_volume(ids: np.ndarray, need: np.ndarray, volume: int, verb: str) -> dict[int, str]:
    """The largest needs, until the rest fit in the P2P volume (ties: lower id kept)."""
    refused = {}
    total = int(need.sum())
    for i in sorted(np.flatnonzero(need), key=lambda i: (-int(need[i]), int(ids[i]))):
        if total <= volume:
            break
        refused[int(ids[i])] = (f"its mandate needs {int(need[i])} Wh {verb} peers to stay within its price, but "
                                f"the interval trades {volume} Wh P2P in all")
        total -= int(need[i])
    return refused


def _share(room: np.ndarray, total: int) -> np.ndarray:
    if total <= 0 or room.sum() <= 0:
        return np.zeros_like(room)
    return largest_remainder(room * (total / room.sum()), total).astype(np.int64)


# -- auction ------------------------------------------------------------------------


def _clear_auction(inputs: IntervalInputs) -> IntervalClearing:
    signed = [SignedOrder.from_json(o) for o in inputs.orders]
    by_participant = {s.order.participant: s for s in signed}
    if len(by_participant) != len(signed):
        raise InputError(f"interval {inputs.interval}: the inputs hold more than one order for a participant")
    buy, sell = inputs.buy_price[0], inputs.sell_price[0]
    # Accounts in shared batteries bid within what their account holds or has room for,
    # and buy with the storage fee on top of the price (node.clearing.shares).
    bounds = {s.order.participant: auction_order_bounds(inputs, s.order.participant, s.order.side == BUY,
                                                        s.order.energy_wh, s.order.limit_price) for s in signed}
    result = clear_auction(
        [
            AuctionOrder(
                order_id=f"{s.order.participant}:{s.order.nonce}",
                participant=s.order.participant,
                side=Side.BUY if s.order.side == BUY else Side.SELL,
                energy_wh=bounds[s.order.participant][0],
                limit_price=bounds[s.order.participant][1],
            )
            for s in signed if bounds[s.order.participant] is not None
        ],
        buy,
        sell,
        inputs.pricing,
    )
    p2p = {p.participant: p.p2p_wh for p in result.participants}
    grid = _within_capacity(result, inputs.import_capacity_wh[0], inputs.export_capacity_wh[0])
    ids = np.array(sorted(p for p in by_participant if p2p.get(p, 0) or grid.get(p, 0)), dtype=np.int64)
    excluded = {p: "its order was not filled" if bounds[p] is not None else
                "its account in a shared battery cannot settle its order (no energy or room, or a buy under "
                "pay-as-bid, which leaves no room for the storage fee)"
                for p in sorted(set(by_participant) - set(ids.tolist()))}
    limits = {f.participant: f.effective_limit for f in result.orders}
    p2p_wh = np.array([p2p.get(int(p), 0) for p in ids], dtype=np.int64)
    if inputs.pricing == "pay_as_bid":
        prices = np.array([limits[int(p)] for p in ids], dtype=np.int64)
        bought = p2p_wh > 0
        # Informational in pay-as-bid: the volume-weighted price buyers paid.
        average = int((p2p_wh[bought] * prices[bought]).sum() // max(int(p2p_wh[bought].sum()), 1))
        price, per_entry = min(max(average, sell), buy) if bought.any() else sell, prices
    else:
        price, per_entry = sell if result.clearing_price is None else result.clearing_price, None
    return IntervalClearing(
        participants=ids,
        grid_wh=np.array([grid.get(int(p), 0) for p in ids], dtype=np.int64),
        p2p_wh=p2p_wh,
        p2p_price=price,
        p2p_prices=per_entry,
        orders=tuple(by_participant[int(p)] for p in ids),
        excluded=excluded,
        auction=result,
    )


def _within_capacity(result: AuctionResult, import_wh: int, export_wh: int) -> dict[int, int]:
    """The auction's grid legs, cut to the community's capacity: imports go to the
    highest bids first, exports to the lowest asks (ties: lower participant id)."""
    fills = [f for f in result.orders if f.grid_wh]
    room = {Side.BUY: import_wh, Side.SELL: export_wh}
    grid: dict[int, int] = {}
    for f in sorted(fills, key=lambda f: (f.side is Side.SELL, -f.effective_limit if f.side is Side.BUY else f.effective_limit, f.participant)):
        wh = min(f.grid_wh, room[f.side])
        room[f.side] -= wh
        if wh:
            grid[f.participant] = wh if f.side is Side.BUY else -wh
    return grid
