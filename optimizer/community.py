r"""Community clearing: one linear programme over a rolling horizon.

Homes :math:`i = 1..N`, steps :math:`t = 0..T-1`, batteries :math:`b = 1..B`,
battery :math:`b` sits at home :math:`h(b)`. Only the community and the
batteries get decision variables; a home without a battery is pure data, so the
problem size grows with ``B`` and ``T`` but not with ``N``.

Variables::

    G⁺[t] ≥ 0, G⁻[t] ≥ 0        community grid import / export
    c[b,t] ≥ 0                  battery charge (at the terminals)
    s[b,t], t = 1..T            battery state of charge at the end of step t-1
    u[m,t] ≥ 0                  positive part of n[m,t], m a home with battery(ies)
    k[t] ≥ 0                    community PV curtailment
    z[t] ≥ 0                    community unserved load (shed)

Discharge is not a variable of its own: the battery dynamics define it, which
removes ``B T`` variables and equalities (about 15 % of the solve time at
1000 x 96) without changing the feasible set::

    s[b,0] = soc0[b]                                   (data)
    s[b,t+1] = s[b,t] + η_c c[b,t] - d[b,t] / η_d
    ⇔  d[b,t] = η_d (s[b,t] - s[b,t+1] + η_c c[b,t])

Net demand of home i::

    n[i,t] = load[i,t] - pv[i,t] + Σ_{b: h(b)=i} (c[b,t] - d[b,t])

Minimise::

    Σ_t  buy[t] G⁺[t] - sell[t] G⁻[t]
       + p2p_cost (Σ_i pos(n[i,t]) - G⁺[t])       P2P volume: demand not met by the grid
       + VoLL z[t] + ε k[t]
    - Σ_b v[b] s[b,T]                             terminal value of stored energy

where ``pos(n)`` is data for a home without battery and ``u`` for a battery
home, ``v[b] = max(mean_t sell[t], 0) η_d[b]`` (what the stored energy is worth
when it is eventually exported, so the horizon end neither drains nor hoards),
``VoLL = 10 max(max|buy|, max|sell|, p2p_cost, 0.1)`` (shedding is strictly a
last resort, well above any tariff) and ``ε = 1e-4`` (curtail only when
exporting is not possible or not worth it).

Subject to::

    community balance      Σ_i n[i,t] + k[t] - z[t] == G⁺[t] - G⁻[t]   (dual → price)
    P2P epigraph           u[m,t] ≥ n[m,t]
    battery limits         min_soc ≤ s ≤ capacity
                           c ≤ max_charge
                           0 ≤ d ≤ max_discharge
    grid capacity          G⁺ ≤ import_cap - margin
                           G⁻ ≤ export_cap - margin
    slack bounds           k ≤ Σ_i pv[i,t]
                           z ≤ Σ_i load[i,t]

The P2P term equals the true P2P volume ``min(D, S)`` as long as the LP does
not import and export in the same step, which holds whenever
``buy - sell > p2p_cost`` (otherwise routing through the grid is no dearer than
trading, and post-processing clips the volume to ``[0, min(D, S)]``).

Everything that changes per interval is a ``cp.Parameter``: the inflexible
homes' net aggregated per step (their ``pos(n)`` is a constant of the
objective, added after the solve), the battery homes' own ``load - pv``,
totals of load and PV, tariffs, capacities, P2P cost, VoLL, terminal values and
the initial state of charge. Battery specs are constants of the model (they
change when the fleet changes, not per interval). The problem is DPP, so a
re-solve only re-applies parameters to the cached canonical form.

Post-processing keeps step 0 only: community curtailment is allocated to homes
pro rata to their PV, shedding pro rata to their load; buyers share the P2P
volume ``M`` pro rata to their demand, sellers pro rata to their surplus; the
rest goes to/from the grid. The price is the dual of the step-0 balance
(marginal cost of one more kWh consumed), clipped to ``[sell[0], buy[0]]``.
"""

from __future__ import annotations

import logging
import warnings

from collections import OrderedDict
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from node.errors import InputError, SolverError
from optimizer.types import Batteries, ClearingInputs, Clearing

# Clarabel (interior point) re-solved 1000 homes x 96 steps in about 2 s of CPU
# where HiGHS took 5-12 s (IPM) and 15-23 s (dual simplex); see
# bench/bench_clearing.py --solvers. QDLDL is single-threaded, so the same data
# always gives the same bits. Iterative refinement polishes each linear solve
# and costs ~40 % of the time; convergence is still judged on the true
# residuals, so dropping it cannot make a bad answer look optimal. When the
# fast attempt does not reach "optimal", the default (refined) settings get a
# second go, which is equally deterministic.
SOLVER_ATTEMPTS: tuple[tuple[str, dict[str, object]], ...] = (
    (cp.CLARABEL, {"direct_solve_method": "qdldl", "iterative_refinement_enable": False}),
    (cp.CLARABEL, {"direct_solve_method": "qdldl"}),
)
CURTAIL_COST_PER_KWH = 1e-4
SNAP_KWH = 1e-9  # a millionth of a Wh: far below the chain's integer Wh
SOC_SLACK_KWH = 1e-6  # initial SoC this far outside its bounds is tolerance, not an error
VOLL_FACTOR = 10.0
VOLL_FLOOR_PER_KWH = 0.1
_CACHE_SIZE = 8

log = logging.getLogger("gridledger.optimizer")


@dataclass(frozen=True)
class _Step0:
    """Solver values needed to post-process the interval being cleared."""

    grid_import: float
    grid_export: float
    curtail: float
    shed: float
    dual_balance: float


class CommunityModel:
    """The community LP for a fixed shape, built once and re-solved per interval.

    ``homes`` and ``horizon`` fix ``N`` and ``T``; ``batteries`` fixes which
    homes have batteries and their specs (its ``soc_kwh`` is ignored here: the
    initial state of charge comes with each :class:`ClearingInputs`).
    """

    def __init__(self, homes: int, horizon: int, batteries: Batteries) -> None:
        if homes < 1 or horizon < 1:
            raise InputError(f"need at least one home and one step, got {homes} x {horizon}")
        _check_battery_specs(batteries, homes)
        self.homes = homes
        self.horizon = horizon
        self.specs = batteries
        self.battery_homes = np.unique(batteries.home).astype(np.int64)
        self._is_flexible = np.zeros(homes, dtype=bool)
        self._is_flexible[self.battery_homes] = True
        self._build()
        assert self.problem.is_dpp(), "community model must be DPP to re-solve cheaply"

    # ------------------------------------------------------------------ build
    def _build(self) -> None:
        T, B, M = self.horizon, self.specs.count, self.battery_homes.size
        # Parameters: everything that changes per interval.
        self.fixed_net = cp.Parameter(T, name="fixed_net")
        self.load_total = cp.Parameter(T, nonneg=True, name="load_total")
        self.pv_total = cp.Parameter(T, nonneg=True, name="pv_total")
        self.buy = cp.Parameter(T, name="buy")
        self.sell = cp.Parameter(T, name="sell")
        self.import_cap = cp.Parameter(T, nonneg=True, name="import_cap")
        self.export_cap = cp.Parameter(T, nonneg=True, name="export_cap")
        self.p2p_cost = cp.Parameter(nonneg=True, name="p2p_cost")
        self.voll = cp.Parameter(nonneg=True, name="voll")

        # Variables: the community's.
        G_imp = cp.Variable(T, nonneg=True, name="G_imp")
        G_exp = cp.Variable(T, nonneg=True, name="G_exp")
        k = cp.Variable(T, nonneg=True, name="k")
        z = cp.Variable(T, nonneg=True, name="z")
        self.G_imp, self.G_exp, self.k, self.z = G_imp, G_exp, k, z

        net_total = self.fixed_net + k - z
        objective = (
            self.buy @ G_imp
            - self.sell @ G_exp
            - self.p2p_cost * cp.sum(G_imp)
            + self.voll * cp.sum(z)
            + CURTAIL_COST_PER_KWH * cp.sum(k)
        )
        constraints: list[cp.Constraint] = []
        if B:
            battery_net, battery_cost, battery_constraints = self._battery_block(T, B, M)
            net_total = net_total + cp.sum(battery_net, axis=0)
            objective = objective + battery_cost
            constraints += battery_constraints

        self.balance = net_total == G_imp - G_exp
        constraints += [
            # community balance
            self.balance,
            # grid capacity
            G_imp <= self.import_cap,
            G_exp <= self.export_cap,
            # slack bounds
            k <= self.pv_total,
            z <= self.load_total,
        ]
        self.problem = cp.Problem(cp.Minimize(objective), constraints)

    def _battery_block(
        self, T: int, B: int, M: int
    ) -> tuple[cp.Expression, cp.Expression, list[cp.Constraint]]:
        """Battery variables, the battery homes' net and their P2P epigraph."""
        spec = self.specs
        self.flex_net = cp.Parameter((M, T), name="flex_net")
        self.soc0 = cp.Parameter(B, name="soc0")
        self.terminal_value = cp.Parameter(B, nonneg=True, name="terminal_value")

        c = cp.Variable((B, T), nonneg=True, name="c")
        s = cp.Variable((B, T), name="s")  # column j holds s[:, j+1], the state after step j
        u = cp.Variable((M, T), nonneg=True, name="u")
        s_start = cp.hstack([cp.reshape(self.soc0, (B, 1), order="F"), s[:, :-1]])
        eta_c = spec.charge_efficiency[:, None]
        eta_d = spec.discharge_efficiency[:, None]
        d = cp.multiply(eta_d, s_start - s + cp.multiply(eta_c, c))
        self.c, self.d, self.s, self.u = c, d, s, u

        row = np.searchsorted(self.battery_homes, spec.home)
        A = sp.csr_matrix((np.ones(B), (row, np.arange(B))), shape=(M, B))
        n = self.flex_net + A @ (c - d)
        cost = self.p2p_cost * cp.sum(u) - self.terminal_value @ s[:, T - 1]
        constraints = [
            # P2P epigraph
            u >= n,
            # battery limits
            s >= spec.min_soc_kwh[:, None],
            s <= spec.capacity_kwh[:, None],
            c <= spec.max_charge_kwh[:, None],
            d >= 0,
            d <= spec.max_discharge_kwh[:, None],
        ]
        return n, cost, constraints

    # ------------------------------------------------------------------ solve
    def clear(self, inputs: ClearingInputs, *, capacity_margin_kwh: float = 0.0) -> Clearing:
        """Clear one interval: set parameters, re-solve, post-process step 0.

        ``capacity_margin_kwh`` is subtracted from both grid capacities so that
        rounding per-home flows to integer Wh later cannot exceed the limit.
        """
        self._validate(inputs, capacity_margin_kwh)
        constant_cost = self._set_parameters(inputs, capacity_margin_kwh)
        self._solve()
        return self._post_process(inputs, constant_cost)

    def _validate(self, inputs: ClearingInputs, margin: float) -> None:
        _check_inputs(inputs)
        if not (np.isfinite(margin) and margin >= 0):
            raise InputError(f"capacity_margin_kwh must be a finite value >= 0, got {margin!r}")
        if (inputs.homes, inputs.horizon) != (self.homes, self.horizon):
            raise InputError(
                f"model built for {self.homes} homes x {self.horizon} steps, "
                f"inputs have {inputs.homes} x {inputs.horizon}; use optimizer.clear()"
            )
        if _battery_key(inputs.batteries) != _battery_key(self.specs):
            raise InputError("inputs' batteries differ from the model's; use optimizer.clear()")

    def _set_parameters(self, inputs: ClearingInputs, margin: float) -> float:
        """Load the interval's data into the parameters; return the constant cost."""
        net = inputs.load_kwh - inputs.pv_kwh
        fixed = ~self._is_flexible
        buy, sell = inputs.buy_price_per_kwh, inputs.sell_price_per_kwh
        p2p_cost = float(inputs.p2p_cost_per_kwh)

        self.fixed_net.value = net[fixed].sum(axis=0)
        self.load_total.value = inputs.load_kwh.sum(axis=0)
        self.pv_total.value = inputs.pv_kwh.sum(axis=0)
        self.buy.value = buy
        self.sell.value = sell
        self.import_cap.value = np.maximum(inputs.import_capacity_kwh - margin, 0.0)
        self.export_cap.value = np.maximum(inputs.export_capacity_kwh - margin, 0.0)
        self.p2p_cost.value = p2p_cost
        self.voll.value = VOLL_FACTOR * max(
            np.abs(buy).max(), np.abs(sell).max(), p2p_cost, VOLL_FLOOR_PER_KWH
        )
        if self.specs.count:
            self.flex_net.value = net[self.battery_homes]
            # A state fed back from the previous clearing may sit a hair outside
            # its bounds (solver tolerance); clip so the LP stays feasible.
            self.soc0.value = np.clip(
                inputs.batteries.soc_kwh, self.specs.min_soc_kwh, self.specs.capacity_kwh
            )
            self.terminal_value.value = max(sell.mean(), 0.0) * self.specs.discharge_efficiency
        # Inflexible homes' positive part is data, so its P2P cost sits outside the LP.
        return p2p_cost * float(np.maximum(net[fixed], 0.0).sum())

    def _solve(self) -> None:
        """Solve with the fast settings, then the robust ones; raise if neither works.

        "optimal_inaccurate" is accepted from the last attempt only and shows in
        ``Clearing.status``, so the caller can decide whether to settle on it.
        """
        failures = []
        for attempt, (solver, options) in enumerate(SOLVER_ATTEMPTS, start=1):
            last = attempt == len(SOLVER_ATTEMPTS)
            try:
                # cvxpy warns on an inaccurate solution; that case is handled (and logged) here.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    # warm_start=False: a solve must not depend on the previous one.
                    self.problem.solve(solver=solver, warm_start=False, **options)
            except cp.error.SolverError as exc:
                failures.append(f"{solver} {options}: {exc}")
                continue
            if self.problem.status == cp.OPTIMAL or (
                last and self.problem.status == cp.OPTIMAL_INACCURATE
            ):
                return
            failures.append(f"{solver} {options}: status '{self.problem.status}'")
            if not last:
                log.info("clearing %d homes x %d steps: %s; retrying with robust settings", self.homes, self.horizon, failures[-1])
        raise SolverError(
            f"no optimal clearing for {self.homes} homes x {self.horizon} steps "
            f"({'; '.join(failures)}); the model is always feasible, so look for "
            "extreme values (e.g. capacities or prices of 1e9) in the inputs"
        )

    def _step0(self) -> _Step0:
        return _Step0(
            grid_import=float(_snap(self.G_imp.value[0])),
            grid_export=float(_snap(self.G_exp.value[0])),
            curtail=float(_snap(self.k.value[0])),
            shed=float(_snap(self.z.value[0])),
            # The balance reads ``demand == G⁺ - G⁻``; cvxpy's dual of it is the
            # objective's increase per extra kWh of demand, i.e. the price.
            dual_balance=float(self.balance.dual_value[0]),
        )

    def _battery_values(self) -> tuple[np.ndarray, np.ndarray]:
        B, T = self.specs.count, self.horizon
        if not B:
            return np.zeros((0, T)), np.zeros((0, T))
        return _snap(self.c.value), _snap(self.d.value)

    def _post_process(self, inputs: ClearingInputs, constant_cost: float) -> Clearing:
        step = self._step0()
        charge, discharge = self._battery_values()
        soc_path = _soc_path(self.specs, inputs.batteries.soc_kwh, charge, discharge)
        flows = _allocate_step0(inputs, self.specs.home, charge[:, 0], discharge[:, 0], step)
        buy0 = float(inputs.buy_price_per_kwh[0])
        sell0 = float(inputs.sell_price_per_kwh[0])
        return Clearing(
            **flows,
            battery_charge_kwh=charge[:, 0].copy(),
            battery_discharge_kwh=discharge[:, 0].copy(),
            soc_path_kwh=soc_path,
            p2p_price_per_kwh=float(min(max(step.dual_balance, sell0), buy0)),
            objective=float(self.problem.value) + constant_cost,
            status=str(self.problem.status),
        )


# ---------------------------------------------------------------- post-processing
def _snap(x: np.ndarray | float) -> np.ndarray:
    """Zero out interior-point residue below ``SNAP_KWH`` (and any negative sign).

    An interior-point solution sits a hair inside its bounds (1e-11 kWh of
    curtailment, say); reporting that as a flow would only confuse audits.
    """
    x = np.asarray(x, dtype=np.float64)
    return np.where(x < SNAP_KWH, 0.0, x)


def _soc_path(
    spec: Batteries, soc0: np.ndarray, charge: np.ndarray, discharge: np.ndarray
) -> np.ndarray:
    """State of charge implied by the reported flows, so the two always agree."""
    delta = spec.charge_efficiency[:, None] * charge - discharge / spec.discharge_efficiency[:, None]
    return np.concatenate([soc0[:, None], soc0[:, None] + np.cumsum(delta, axis=1)], axis=1)


def _pro_rata(total: float, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` over ``weights``; zero everywhere when there is no weight."""
    weight = weights.sum()
    if weight <= 0.0 or total <= 0.0:
        return np.zeros_like(weights)
    return weights * (min(total, weight) / weight)


def _allocate_step0(
    inputs: ClearingInputs,
    battery_home: np.ndarray,
    charge0: np.ndarray,
    discharge0: np.ndarray,
    step: _Step0,
) -> dict[str, np.ndarray]:
    """Per-home flows of step 0 that satisfy the Clearing identity exactly."""
    N = inputs.homes
    load0, pv0 = inputs.load_kwh[:, 0], inputs.pv_kwh[:, 0]
    curtailed = _pro_rata(step.curtail, pv0)
    shed = _pro_rata(step.shed, load0)
    battery = np.bincount(battery_home, weights=charge0 - discharge0, minlength=N)
    n = load0 - pv0 + curtailed - shed + battery

    demand, surplus = np.maximum(n, 0.0), np.maximum(-n, 0.0)
    D, S = demand.sum(), surplus.sum()
    M = min(max(D - step.grid_import, 0.0), D, S)
    p2p_buy = demand * (M / D) if D > 0 else np.zeros(N)
    p2p_sell = surplus * (M / S) if S > 0 else np.zeros(N)
    return {
        "grid_import_kwh": demand - p2p_buy,
        "grid_export_kwh": surplus - p2p_sell,
        "p2p_buy_kwh": p2p_buy,
        "p2p_sell_kwh": p2p_sell,
        "curtailed_kwh": curtailed,
        "shed_kwh": shed,
    }


# ---------------------------------------------------------------- validation
def _check_battery_specs(batteries: Batteries, homes: int) -> None:
    b = batteries
    if b.count and (b.home.min() < 0 or b.home.max() >= homes):
        raise InputError(f"battery home index out of range 0..{homes - 1}: {b.home.tolist()}")
    for name in ("charge_efficiency", "discharge_efficiency"):
        eff = getattr(b, name)
        if np.any((eff <= 0) | (eff > 1)):
            raise InputError(f"battery {name} must be in (0, 1], got {eff.tolist()}")
    if np.any(b.min_soc_kwh < 0) or np.any(b.min_soc_kwh > b.capacity_kwh):
        raise InputError("battery min_soc_kwh must be within [0, capacity_kwh]")
    if np.any(b.max_charge_kwh < 0) or np.any(b.max_discharge_kwh < 0):
        raise InputError("battery max_charge_kwh and max_discharge_kwh must be >= 0")


def _check_inputs(inputs: ClearingInputs) -> None:
    N, T = inputs.load_kwh.shape
    shapes = {
        "pv_kwh": (inputs.pv_kwh, (N, T)),
        "buy_price_per_kwh": (inputs.buy_price_per_kwh, (T,)),
        "sell_price_per_kwh": (inputs.sell_price_per_kwh, (T,)),
        "import_capacity_kwh": (inputs.import_capacity_kwh, (T,)),
        "export_capacity_kwh": (inputs.export_capacity_kwh, (T,)),
    }
    for name, (array, shape) in shapes.items():
        if np.shape(array) != shape:
            raise InputError(f"{name} has shape {np.shape(array)}, expected {shape}")
    arrays = [inputs.load_kwh] + [a for a, _ in shapes.values()]
    if not all(np.all(np.isfinite(a)) for a in arrays) or not np.isfinite(inputs.p2p_cost_per_kwh):
        raise InputError("clearing inputs contain NaN or infinite values")
    for name in ("load_kwh", "pv_kwh", "import_capacity_kwh", "export_capacity_kwh"):
        if np.any(getattr(inputs, name) < 0):
            raise InputError(f"{name} must be non-negative")
    if inputs.p2p_cost_per_kwh < 0:
        raise InputError(f"p2p_cost_per_kwh must be >= 0, got {inputs.p2p_cost_per_kwh}")
    b = inputs.batteries
    low, high = b.soc_kwh < b.min_soc_kwh - SOC_SLACK_KWH, b.soc_kwh > b.capacity_kwh + SOC_SLACK_KWH
    if np.any(low | high):
        bad = int(np.flatnonzero(low | high)[0])
        raise InputError(
            f"battery {bad} (home {int(b.home[bad])}) has soc_kwh {b.soc_kwh[bad]!r} outside "
            f"[{b.min_soc_kwh[bad]!r}, {b.capacity_kwh[bad]!r}]"
        )


# ---------------------------------------------------------------- cached entry point
def _battery_key(b: Batteries) -> tuple[bytes, ...]:
    """Identity of a battery fleet's constant specs (the initial SoC is excluded)."""
    return tuple(
        np.ascontiguousarray(a, dtype=dt).tobytes()
        for a, dt in (
            (b.home, np.int64),
            (b.capacity_kwh, np.float64),
            (b.max_charge_kwh, np.float64),
            (b.max_discharge_kwh, np.float64),
            (b.charge_efficiency, np.float64),
            (b.discharge_efficiency, np.float64),
            (b.min_soc_kwh, np.float64),
        )
    )


_models: OrderedDict[tuple, CommunityModel] = OrderedDict()


def model_for(inputs: ClearingInputs) -> CommunityModel:
    """The cached model for this shape and battery fleet, built on first use."""
    key = (inputs.homes, inputs.horizon, _battery_key(inputs.batteries))
    model = _models.get(key)
    if model is None:
        model = CommunityModel(inputs.homes, inputs.horizon, inputs.batteries)
        _models[key] = model
        if len(_models) > _CACHE_SIZE:
            _models.popitem(last=False)
    _models.move_to_end(key)
    return model


def clear(inputs: ClearingInputs, *, capacity_margin_kwh: float = 0.0) -> Clearing:
    """Clear step 0 of ``inputs``, reusing the model built for the same shape."""
    return model_for(inputs).clear(inputs, capacity_margin_kwh=capacity_margin_kwh)
