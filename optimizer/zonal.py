r"""Single-period zonal clearing of generator offers over a DC power-flow network
(Mini-ISO's market): locational marginal prices, flows, dispatch and congestion rent.

Formulation
-----------
Zones ``z``, lines ``l`` from zone ``a(l)`` to zone ``b(l)``, offer tranches ``k`` in
zone ``z(k)`` of at most ``q_k`` MW at ``c_k`` per MWh; optional bids ``j`` (demand
that is served only at a price of at most ``v_j``, up to ``d_j`` MW) and, with a value
of lost load ``V``, load shedding ``s_z``:

    minimise    sum_k c_k p_k  -  sum_j v_j x_j  +  V sum_z s_z
    over        p (MW per tranche), x (MW per bid), theta (rad per zone), s (MW per zone)

    subject to  0 <= p_k <= q_k,   0 <= x_j <= d_j,   0 <= s_z <= L_z
                f_l = S b_l (theta_a(l) - theta_b(l))                  (DC power flow)
                -F'_l <= f_l <= F_l                                    (line limits)
                sum_{k in z} p_k + sum_{l: b(l)=z} f_l - sum_{l: a(l)=z} f_l
                    = L_z - s_z + sum_{j in z} x_j                     (balance of zone z)
                theta_ref = 0

``S`` is the base power (MVA; 1000 by default, as in Mini-ISO), ``b_l`` the line's
susceptance in per unit of it, ``F_l`` its limit from ``a`` to ``b`` and ``F'_l`` (default
``F_l``) the reverse. ``f_l > 0`` flows from ``zone_from`` to ``zone_to``.

Prices and their sign
---------------------
``lmp[z]`` is the derivative of the optimal cost with respect to zone ``z``'s load: what
one more MW consumed in ``z`` costs the system, per MWh. It is the dual of ``z``'s
balance; cvxpy reports that dual with the opposite sign for a balance written
``supply == load`` (checked in tests/test_zonal.py by bumping a load and re-solving),
so ``lmp = -dual``. Where no line is at its limit every zone has the same price; where
one binds prices differ, and in a loop a zone's price can lie above every offer (one
more MW there must be met by backing the cheap generator down and the dear one up
twice over). With a value of lost load ``V``, a zone whose load is all shed can be
priced above ``V``: serving one more MW there would cost that much, so it is shed too.

Money
-----
Every MW is paid for at its own zone's price: loads pay ``lmp_z (L_z - s_z)``, bids
``lmp_z x_j``, generators receive ``lmp_z p_k``. The congestion rent is what buyers pay
minus what sellers receive, ``sum_z lmp_z (withdrawal_z - injection_z)``, which equals
``sum_l f_l (lmp_b(l) - lmp_a(l))`` and also ``sum_l mu_l |f_l|`` with ``mu_l >= 0`` the
value of one more MW of line ``l``'s limit (its shadow price), so it is never negative.
The per-line ``f_l (lmp_b - lmp_a)`` can be negative on a line of a loop that is not at
its limit; ``line_rent`` is therefore the shadow price times the flow, which is never
negative and sums to the same total.

HiGHS (simplex) solves it: a vertex solution, so a tranche is either fully dispatched,
not at all, or marginal (its zone's price equals its offer), and the same inputs give
the same clearing.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from node.errors import InputError, SolverError

BASE_POWER_MVA = 1000.0
SOLVER = "HIGHS"
# A line whose flow is within this many MW of its limit counts as binding in reports.
BINDING_TOLERANCE_MW = 1e-6


@dataclass(frozen=True)
class ZonalClearing:
    """The result of `clear_zonal`; powers in MW, prices and money per MWh (one hour)."""

    lmp: dict[str, float]  # zone -> price; see "Prices and their sign"
    objective: float  # sum of price x MW over dispatched tranches (minus bids' value, plus shedding at V)
    flow_mw: dict[str, float]  # line -> MW, + from zone_from to zone_to
    angle_rad: dict[str, float]  # zone -> voltage angle, 0 at the reference zone
    dispatch_mw: dict[tuple[str, str], float]  # (generator, tranche) -> MW
    served_mw: dict[tuple[str, str], float]  # (bidder, tranche) -> MW of a bid served
    shed_mw: dict[str, float]  # zone -> load not served (only with a value of lost load)
    load_payment: dict[str, float]  # zone -> lmp x load served (fixed load only)
    bid_payment: dict[str, float]  # bidder -> sum of lmp x MW served
    generator_mw: dict[str, float]  # generator -> MW over its tranches
    generator_revenue: dict[str, float]  # generator -> sum of lmp x MW
    line_shadow_price: dict[str, float]  # line -> value of 1 MW more limit, >= 0
    line_rent: dict[str, float]  # line -> shadow price x |flow|, >= 0
    congestion_rent: float  # payments by loads and bids minus generators' revenue, >= 0
    reference_zone: str

    @property
    def binding_lines(self) -> tuple[str, ...]:
        """Lines whose limit has a positive shadow price (they set the price differences)."""
        return tuple(name for name, mu in self.line_shadow_price.items() if mu > 0)


def clear_zonal(
    zones: Sequence[Mapping[str, Any]],
    lines: Sequence[Mapping[str, Any]],
    offers: Sequence[Mapping[str, Any]],
    base_power_mva: float = BASE_POWER_MVA,
    reference_zone: str | None = None,
    *,
    bids: Sequence[Mapping[str, Any]] = (),
    value_of_lost_load: float | None = None,
) -> ZonalClearing:
    """Clear one period; see the module docstring for the formulation.

    ``zones``: [{name, load_mw}]; ``lines``: [{name, zone_from, zone_to, susceptance,
    capacity_mw}] (optional ``capacity_back_mw``, the limit from ``zone_to`` to
    ``zone_from``, default ``capacity_mw``); ``offers``: [{generator, zone, tranche,
    quantity_mw, price_per_mwh}]; ``bids``: [{bidder, zone, tranche, quantity_mw,
    price_per_mwh}] (demand served only at or below its price). The reference angle is
    ``reference_zone``'s (default the first zone). Every zone must be connected to it.

    Raises ``InputError`` for malformed input and ``SolverError`` when no dispatch can
    serve the load (with ``value_of_lost_load`` the load is shed at that price instead).
    """
    import cvxpy as cp

    _silence_highs_banner()
    m = _Market.build(zones, lines, offers, bids, base_power_mva, reference_zone, value_of_lost_load)
    Z, L = len(m.zone_names), len(m.line_names)
    p = cp.Variable(len(m.offer_keys), name="p")
    x = cp.Variable(len(m.bid_keys), name="x")
    theta = cp.Variable(Z, name="theta")
    shed = cp.Variable(Z, name="shed")
    flow = cp.multiply(base_power_mva * m.susceptance, m.incidence @ theta) if L else cp.Constant(np.zeros(0))

    balance = m.offer_zone @ p + m.bid_zone_neg @ x - m.incidence.T @ flow == m.load - shed
    constraints = [
        balance,
        p >= 0, p <= m.offer_quantity,
        x >= 0, x <= m.bid_quantity,
        shed >= 0, shed <= (m.load if value_of_lost_load is not None else 0),
        theta[m.reference] == 0,
    ]
    limit_forward = limit_back = None
    if L:
        limit_forward = flow <= m.capacity
        limit_back = -flow <= m.capacity_back
        constraints += [limit_forward, limit_back]
    cost = m.offer_price @ p - m.bid_price @ x + (value_of_lost_load or 0.0) * cp.sum(shed)
    problem = cp.Problem(cp.Minimize(cost), constraints)
    try:
        problem.solve(solver=SOLVER)
    except cp.SolverError as error:
        raise SolverError(f"the zonal clearing failed in {SOLVER}: {error}") from None
    except ValueError as error:
        # cvxpy cannot unpack HiGHS's answer when HiGHS stops undecided, which it does for
        # some infeasible models instead of saying "infeasible".
        if "invalid solution" not in str(error):
            raise
        raise SolverError(m.infeasibility("unknown")) from None
    if problem.status != cp.OPTIMAL:
        raise SolverError(m.infeasibility(problem.status))

    lmp = -np.asarray(balance.dual_value, dtype=float).reshape(Z)
    f = np.asarray(flow.value, dtype=float).reshape(L) if L else np.zeros(0)
    mu = (np.asarray(limit_forward.dual_value) + np.asarray(limit_back.dual_value)) if L else np.zeros(0)
    return m.result(lmp, f, np.asarray(theta.value), _vec(p, len(m.offer_keys)), _vec(x, len(m.bid_keys)),
                    _vec(shed, Z), mu, float(problem.value))


_banner_shown = False


def _silence_highs_banner() -> None:
    """HiGHS prints its banner on stdout (from C++) when the first solver object of the
    process is made; make that first one here with stdout pointed at /dev/null, so that
    a command's output is its own."""
    global _banner_shown
    if _banner_shown:
        return
    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        _banner_shown = True


def _vec(variable, n: int) -> np.ndarray:
    return np.zeros(n) if n == 0 else np.asarray(variable.value, dtype=float).reshape(n)


@dataclass(frozen=True, eq=False)
class _Market:
    """The inputs checked and as arrays, in input order."""

    zone_names: list[str]
    line_names: list[str]
    offer_keys: list[tuple[str, str]]
    bid_keys: list[tuple[str, str]]
    offer_owner: list[str]
    bid_owner: list[str]
    load: np.ndarray
    incidence: np.ndarray  # lines x zones: +1 at zone_from, -1 at zone_to
    susceptance: np.ndarray
    capacity: np.ndarray
    capacity_back: np.ndarray
    offer_zone: np.ndarray  # zones x offers, 1 where the offer is
    offer_quantity: np.ndarray
    offer_price: np.ndarray
    bid_zone_neg: np.ndarray  # zones x bids, -1 where the bid is (a bid withdraws)
    bid_quantity: np.ndarray
    bid_price: np.ndarray
    reference: int

    @classmethod
    def build(cls, zones, lines, offers, bids, base_power_mva, reference_zone, voll) -> _Market:
        _positive("base_power_mva", base_power_mva)
        if voll is not None:
            _finite("value_of_lost_load", voll)
        if not zones:
            raise InputError("a zonal market needs at least one zone")
        names = [_text(z, "name", "zone") for z in zones]
        _unique(names, "zone name")
        index = {name: i for i, name in enumerate(names)}
        load = np.array([_number(z, "load_mw", f"zone {z['name']}", minimum=0.0) for z in zones])

        line_names = [_text(l, "name", "line") for l in lines]
        _unique(line_names, "line name")
        incidence = np.zeros((len(lines), len(zones)))
        susceptance, capacity, back = (np.zeros(len(lines)) for _ in range(3))
        for i, line in enumerate(lines):
            what = f"line {line['name']}"
            a, b = (_zone_of(line, key, index, what) for key in ("zone_from", "zone_to"))
            if a == b:
                raise InputError(f"{what} connects zone {names[a]} to itself; a line joins two different zones")
            incidence[i, a], incidence[i, b] = 1.0, -1.0
            susceptance[i] = _number(line, "susceptance", what, minimum=0.0, strict=True)
            capacity[i] = _number(line, "capacity_mw", what, minimum=0.0, infinite_ok=True)
            back[i] = _number(line, "capacity_back_mw", what, minimum=0.0, infinite_ok=True) \
                if line.get("capacity_back_mw") is not None else capacity[i]

        reference = 0 if reference_zone is None else index.get(reference_zone, -1)
        if reference < 0:
            raise InputError(f"reference zone {reference_zone!r} is not one of the zones ({', '.join(names)})")
        _check_connected(names, incidence, reference)

        offer = _Tranches.build(offers, "generator", "offer", index)
        bid = _Tranches.build(bids, "bidder", "bid", index)
        return cls(names, line_names, offer.keys, bid.keys, offer.owner, bid.owner, load, incidence, susceptance,
                   capacity, back, offer.zone_matrix(len(zones)), offer.quantity, offer.price,
                   -bid.zone_matrix(len(zones)), bid.quantity, bid.price, reference)

    def infeasibility(self, status: str) -> str:
        offered, load = float(self.offer_quantity.sum()), float(self.load.sum())
        if offered < load:
            return (f"the offers ({offered:g} MW) cannot cover the load ({load:g} MW): offer at least "
                    f"{load - offered:g} MW more, lower the load, or set a value of lost load")
        return (f"no dispatch serves every zone's load within the line limits (solver status {status}): the offers "
                "are in the wrong zones for the lines to carry; raise line limits, offer more where the load is, or set "
                "a value of lost load")

    def result(self, lmp, flow, theta, p, x, shed, mu, objective) -> ZonalClearing:
        # Clean the solver's -0.0 and 1e-13 noise so that reports and equality checks read naturally.
        lmp, flow, p, x, shed, mu = (_clean(v) for v in (lmp, flow, p, x, shed, mu))
        theta = np.asarray(theta, dtype=float) + 0.0  # angles are tiny: no rounding, only no -0.0
        zone_of_offer = self.offer_zone.argmax(axis=0) if p.size else np.zeros(0, dtype=int)
        zone_of_bid = (-self.bid_zone_neg).argmax(axis=0) if x.size else np.zeros(0, dtype=int)
        served_load = self.load - shed
        generator_mw: dict[str, float] = {}
        revenue: dict[str, float] = {}
        for k, owner in enumerate(self.offer_owner):
            generator_mw[owner] = generator_mw.get(owner, 0.0) + float(p[k])
            revenue[owner] = revenue.get(owner, 0.0) + float(lmp[zone_of_offer[k]] * p[k])
        bid_payment: dict[str, float] = {}
        for j, owner in enumerate(self.bid_owner):
            bid_payment[owner] = bid_payment.get(owner, 0.0) + float(lmp[zone_of_bid[j]] * x[j])
        load_payment = {z: float(lmp[i] * served_load[i]) for i, z in enumerate(self.zone_names)}
        rent = sum(load_payment.values()) + sum(bid_payment.values()) - sum(revenue.values())
        return ZonalClearing(
            lmp=dict(zip(self.zone_names, map(float, lmp))),
            objective=objective,
            flow_mw=dict(zip(self.line_names, map(float, flow))),
            angle_rad=dict(zip(self.zone_names, map(float, theta))),
            dispatch_mw=dict(zip(self.offer_keys, map(float, p))),
            served_mw=dict(zip(self.bid_keys, map(float, x))),
            shed_mw={z: float(s) for z, s in zip(self.zone_names, shed) if s > 0},
            load_payment=load_payment,
            bid_payment=bid_payment,
            generator_mw=generator_mw,
            generator_revenue=revenue,
            line_shadow_price=dict(zip(self.line_names, map(float, mu))),
            line_rent={name: float(mu[i] * abs(flow[i])) for i, name in enumerate(self.line_names)},
            congestion_rent=float(_clean(np.array([rent]))[0]),
            reference_zone=self.zone_names[self.reference],
        )


@dataclass(frozen=True)
class _Tranches:
    keys: list[tuple[str, str]]
    owner: list[str]
    zone: np.ndarray
    quantity: np.ndarray
    price: np.ndarray

    @classmethod
    def build(cls, rows, owner_key: str, what: str, index: Mapping[str, int]) -> _Tranches:
        keys, owner, zone, quantity, price = [], [], [], [], []
        for row in rows:
            name = _text(row, owner_key, what)
            tranche = str(_field(row, "tranche", f"{what} of {name}"))
            label = f"{what} {name}/{tranche}"
            keys.append((name, tranche))
            owner.append(name)
            zone.append(_zone_of(row, "zone", index, label))
            quantity.append(_number(row, "quantity_mw", label, minimum=0.0))
            price.append(_number(row, "price_per_mwh", label))
        _unique([f"{o}/{t}" for o, t in keys], f"{what} (owner/tranche)")
        return cls(keys, owner, np.array(zone, dtype=int), np.array(quantity, dtype=float), np.array(price, dtype=float))

    def zone_matrix(self, zones: int) -> np.ndarray:
        matrix = np.zeros((zones, len(self.keys)))
        matrix[self.zone, np.arange(len(self.keys))] = 1.0
        return matrix


# ---------------------------------------------------------------- checks
def _field(row: Mapping[str, Any], key: str, what: str) -> Any:
    if not isinstance(row, Mapping):
        raise InputError(f"{what} must be a mapping of field names to values, got {type(row).__name__}")
    if key not in row or row[key] is None:
        raise InputError(f"{what} has no {key}")
    return row[key]


def _text(row: Mapping[str, Any], key: str, what: str) -> str:
    value = _field(row, key, what)
    if isinstance(value, bool) or not isinstance(value, (str, numbers.Integral)) or str(value).strip() == "":
        raise InputError(f"{what} {key} must be a non-empty name, got {value!r}")
    return str(value)


def _number(row, key: str, what: str, minimum: float | None = None, strict: bool = False,
            infinite_ok: bool = False) -> float:
    value = _field(row, key, what)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{what}: {key} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not (infinite_ok and value > 0)):
        raise InputError(f"{what}: {key} must be a finite number, got {value!r}")
    if minimum is not None and (value < minimum or (strict and value == minimum)):
        raise InputError(f"{what}: {key} must be {'>' if strict else '>='} {minimum:g}, got {value:g}")
    return value


def _positive(key: str, value: Any) -> None:
    _number({key: value}, key, "the market", minimum=0.0, strict=True)


def _finite(key: str, value: Any) -> None:
    _number({key: value}, key, "the market")


def _zone_of(row, key: str, index: Mapping[str, int], what: str) -> int:
    name = str(_field(row, key, what))
    if name not in index:
        raise InputError(f"{what}: {key} {name!r} is not one of the zones ({', '.join(index)})")
    return index[name]


def _unique(names: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(f"{what} {name!r} appears twice; each must be unique")
        seen.add(name)


def _check_connected(names: Sequence[str], incidence: np.ndarray, reference: int) -> None:
    """Every zone must reach the reference zone over lines: an island has no angle reference
    and no price of its own in this formulation."""
    neighbours: list[set[int]] = [set() for _ in names]
    for row in incidence:
        a, b = int(np.argmax(row)), int(np.argmin(row))
        neighbours[a].add(b)
        neighbours[b].add(a)
    seen, stack = {reference}, [reference]
    while stack:
        for other in neighbours[stack.pop()] - seen:
            seen.add(other)
            stack.append(other)
    cut = [names[i] for i in range(len(names)) if i not in seen]
    if cut:
        raise InputError(f"zone(s) {', '.join(cut)} have no path of lines to the reference zone "
                         f"{names[reference]}; connect them or clear them as a market of their own")


def _clean(values: np.ndarray, digits: int = 9) -> np.ndarray:
    return np.round(np.asarray(values, dtype=float), digits) + 0.0
