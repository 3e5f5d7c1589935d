r"""Community clearing: one linear programme over a rolling horizon, exact per home.

Homes :math:`i`, steps :math:`t = 0..T-1`, batteries :math:`b` at home
:math:`h(b)`; homes with a battery are :math:`m \in \mathcal M`, the others form
the pool :math:`\mathcal F`. The LP is the naive per-home community LP
(``optimizer.reference``: per-home grid, P2P, battery, curtailment and shedding
variables) with the pool's per-home variables aggregated away *exactly*: for
data-only homes, the cheapest way to move the pool's net position is known in
closed form (sort the per-home segments by cost), so four variables per step
replace ``4 |F|`` of them. The size grows with batteries and steps, not homes.

Per-interval data: ``e = load - pv`` and the pool's totals
``D_F = Σ_F pos(e)`` (deficit), ``S_F = Σ_F pos(-e)`` (surplus),
``W_F = Σ_F min(load, pv)`` (self-consumed PV), ``E = Σ_i e`` (all homes).

Variables (all per step ``t``)::

    c[b] ∈ [0, c̄_b]                 battery charge at the terminals
    s[b] ∈ [s_min_b, cap_b]         state of charge after step t (s[b,-1] = soc0, data)
    u[m] ≥ 0                        buy-side position of battery home m
    z[m] ∈ [0, load_m]              shedding at battery home m
    k[m] ∈ [0, pv_m]                curtailment at battery home m
    G⁺ ∈ [0, import_cap - margin]   community grid import
    G⁻ ∈ [0, export_cap - margin]   community grid export
    zd ∈ [0, D_F]   zs ∈ [0, W_F]   pool shedding: of deficit / of self-supplied load
    ks ∈ [0, S_F]   kd ∈ [0, W_F]   pool curtailment: of surplus / of self-consumed PV
    V ≥ 0                           P2P volume (only in the "volume row" form, below)

Discharge is not a variable: ``d[b] = η_d (s[b,t-1] - s[b,t] + η_c c[b])``.
A battery home's position is ``x_m = e_m + Σ_{h(b)=m} (c - d) + k_m - z_m``.

Minimise::

    Σ_t  buy G⁺ - sell G⁻ + p2p_cost V + VoLL (zd + zs + Σ_m z) + ε (ks + kd + Σ_m k)
    - Σ_b v_b s[b,T-1]

Subject to::

    discharge      0 ≤ d[b] ≤ d̄_b
    epigraph       u[m] ≥ x_m
    balance        G⁺ - G⁻ - Σ_b (c - d) - Σ_m (k - z) - (ks + kd - zd - zs) == E    (dual → price)
    volume         V ≥ (D_F - zd + kd + Σ_m u) - G⁺

``V = max(0, D' - G⁺)`` with ``D' = Σ_i pos(x_i)`` is the least P2P volume the
naive LP needs when the community imports ``G⁺``: shedding a home in deficit
removes traded demand, curtailing beyond a home's surplus adds some. (The
previous model priced ``Σ pos(n) - G⁺`` with ``n`` before shedding, so a shed
kWh was charged as traded, and it could go negative; both are gone.)

**Objective form.** When ``buy - sell ≥ p2p_cost`` at every step, importing
beyond ``D'`` never pays, so ``V = D' - G⁺`` at an optimum and the volume row
is folded into the costs: ``p2p_cost (D_F - zd + kd + Σ u - G⁺)``, the
constant ``p2p_cost Σ D_F`` added after the solve. This removes ``T`` rows
that couple every battery home, about 30 % of the solve time. With a narrower
spread (equal tariffs, say) the model keeps ``V`` and its row.

``v_b = max(mean sell, 0) η_d,b`` values energy left at the horizon's end at
what exporting it would earn; ``VoLL = 10 max(|buy|, |sell|, p2p_cost, 0.1)``
makes shedding a last resort; ``ε = 1e-4`` curtails only when nothing better is
possible.

**Exactness.** Each naive solution maps to one of this LP with no higher cost
(a home never sheds and curtails at once in an optimum; the pool's segments
account for every home's shedding and curtailment), and each solution of this
LP maps back to a naive one at no higher cost (``optimizer.allocation``), so
both optima are equal. ``tests/test_clearing_exact.py`` checks it against the
naive LP on random communities in every regime.

**Restricted first.** ``z[m]`` and ``k[m]`` matter only once the pool's
deficit or surplus is used up. Each interval is first solved without them,
with the battery homes' shedding and curtailment in aggregate (``zb``, ``kb``
per step, priced as if shedding never relieved a buyer and curtailing always
made one: a feasible restriction); if any ``z[m]`` or ``k[m]`` has a negative
reduced cost at that solution's row prices, the LP with them is solved. This
keeps two of a battery home's five columns per step out of the usual solve.
The battery block itself is a device (:class:`optimizer.devices.BatteryFleet`):
its columns and rows, and a net consumption the model adds to its home's
epigraph and to the balance.

**Price.** The balance row reads ``supply - flexible demand == fixed
demand``; its dual (``LPSolution.row_price``) is the optimal cost's increase per
extra kWh of demand at step 0: the P2P price, clipped to ``[sell, buy]``. On a network
(``ClearingInputs.network``, :mod:`optimizer.zones`) the pool and the grid are per
zone, each line adds a row, and each zone has its own price.

Battery specs are fixed per model (they change when the fleet changes), so the
matrix is assembled once per fleet and horizon; each interval only refills
costs and bounds, and the solver's workspace is reused
(:mod:`optimizer.solvers`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from node.errors import InputError, SolverError
from optimizer import solvers
from optimizer.allocation import Step0, allocate_step0, pro_rata, snap, soc_path
from optimizer.devices import BatteryFleet, JobFleet, ThermalFleet
from optimizer.lp import LinearProgram, LPData, LPSolution
from optimizer.types import Batteries, Clearing, ClearingInputs, Jobs, Thermal, ZoneNetwork
from optimizer.validation import check_battery_specs, check_inputs, check_jobs, check_thermal
from optimizer.zones import NetworkBlock, check_network, grid_zones, network_key, zone_pro_rata, zone_sum

# PIQP first (about twice as fast here); Clarabel with its default, refined
# settings if PIQP does not report success. Accepting "optimal_inaccurate"
# only from the last attempt keeps a dubious answer visible in Clearing.status.
# The clearing LP is always feasible and bounded (shed everything, curtail
# everything, leave the batteries idle), so PIQP's infeasibility tests can only
# give false alarms: at their default 1e-4 they called a feasible 1000-home
# clearing infeasible. At 1e-8 they no longer stop a solve early.
SOLVER_ATTEMPTS: tuple[tuple[str, dict[str, object]], ...] = (
    (solvers.PIQP, {"eps_primal_inf": 1e-8, "eps_dual_inf": 1e-8}),
    (solvers.CLARABEL, {"direct_solve_method": "qdldl"}),
)
# PIQP orders its KKT system with Eigen's AMD, which slows down sharply once the
# balance rows couple thousands of batteries: its setup took 1 s of CPU at 900
# batteries x 96 steps, 4.6 s at 1,800 and did not finish in minutes at 3,000,
# where Clarabel's AMD copes. On a network larger fleets go straight to the next solver;
# on a copper plate they enter the balance in groups (BATTERY_GROUP_SIZE).
PIQP_MAX_BATTERY_STEPS = 2000 * 96
# The dense balance rows are what defeats it. On a copper plate a larger fleet enters the
# balance through one column per group of batteries and step, each defined by a row
# (y_g = Σ_{b∈g} (c - d)), and PIQP solves it: 10,000 homes (3,000 batteries) x 96 steps
# re-solve in groups of 1,000 in 33 s and 1.1 GB against Clarabel's 116 s and 2.2 GB on the
# same machine (bench_clearing). The group size matters and
# not monotonically (10,000 homes: one group did not set up in 400 s, groups of 300 took
# 40 s, of 100 142 s); below PIQP_MAX_BATTERY_STEPS the LP is left as it was (and as
# earlier intervals were cleared: an auditor re-runs them bit for bit).
BATTERY_GROUP_SIZE = 1000
# With a network, what decides PIQP's speed is how many zones have a grid connection
# (grid columns in their lines' rows and in one total-import row per step): the rows
# joining those columns tie the feeders together at every step in its ordering. 1,000
# homes on 20 feeders, re-solve (bench_clearing --feeders 20; Clarabel
# 9-11 s in every case): connected zones 1 -> PIQP 2.1 s, 2 -> 2.4 s, 5 -> 2.9 s,
# 10 -> 5.7 s, 20 -> 25.7 s. Beyond PIQP_MAX_GRID_ZONES Clarabel goes first. (Before
# unconnected zones' grid columns were left out of every row, a radial grid with one
# substation took PIQP 16-22 s.) Two other ideas that do not work (1,000 homes on 20
# feeders): in force only the line rows that bind (PIQP takes 1.5 s with the 282 of
# 1,920 that do) - the LP is degenerate, so the solver moves flows freely onto the rows
# left out, and adding back those it overloads took six rounds to settle on ~900 rows
# (17 s); and rows per group of batteries with one aggregate column each - PIQP's
# ordering goes astray on those too (17.7 s on the copper plate in groups of 10, 1.1 s
# without; on the 20 feeders, a group per feeder changed nothing).
PIQP_MAX_GRID_ZONES = 10
# PIQP tests its duality gap on the scaled problem; at its defaults (1e-8 absolute, 1e-9
# relative) it stopped a 2-home network whose line was pinned to 0 in one direction at a
# cost 1.35e-5 above the optimum (Clarabel 8e-9). A hundred times tighter costs one
# iteration and leaves 1.3e-7. Networks only: the copper plate's results stay as they were.
NETWORK_PIQP_GAP = {"eps_duality_gap_abs": 1e-10, "eps_duality_gap_rel": 1e-11}
CURTAIL_COST_PER_KWH = 1e-4
VOLL_FACTOR = 10.0
VOLL_FLOOR_PER_KWH = 0.1
# Reduced costs above -1e-7 per kWh are solver tolerance: at most a few kWh
# could move, for far less than the 1e-6 relative the clearing promises.
REDUCED_COST_TOL = 1e-7
# A job's start-now further than this from 0 or 1 is a split job: step 0 is fixed and re-solved.
# Interior-point residue leaves whole starts a few 1e-6 off (up to 7e-6 seen).
JOB_FRACTION_TOL = 1e-4
# ... and the starts within it are only taken as whole while what rounding them could cost
# (each kWh of a job at most VoLL: a bound far above what residue costs) stays within the
# clearing's promise, 1e-6 of the objective; else step 0 is fixed and re-solved too. A
# relaxation that genuinely started a job 0.99995 (a feeder that could not carry it whole)
# otherwise reported its cost, 3.5e-5 relative below any clearing that runs the job
# (tests/test_clearing_thermal.py). A flat 1e-6 tolerance instead re-solved 5 of 9 intervals
# of bench_devices.py for residue alone (400 jobs up to 3.5e-6 off: a bound of 2.2e-4 x VoLL).
JOB_ROUNDING_REL = 1e-6
_CACHE_SIZE = 8

log = logging.getLogger("gridledger.optimizer")


def needs_volume_row(inputs: ClearingInputs) -> bool:
    """True when some step's tariff spread is below the P2P cost (see the docstring)."""
    spread = inputs.buy_price_per_kwh - inputs.sell_price_per_kwh
    return bool(np.any(spread < inputs.p2p_cost_per_kwh))


class CommunityModel:
    """The community LP for a fixed shape, built once and re-solved per interval.

    ``homes`` and ``horizon`` fix ``N`` and ``T``; ``batteries`` fixes which
    homes have batteries and their specs (its ``soc_kwh`` is ignored here: the
    initial state of charge comes with each :class:`ClearingInputs`).
    ``volume_row`` chooses the form of the P2P volume term (see the docstring);
    :func:`clear` picks it from the tariffs. ``network`` (its structure; limits come
    with each interval's inputs) splits the pool and the grid connection by zone and
    adds a row per line and step (:mod:`optimizer.zones`); None is the copper plate.
    """

    def __init__(
        self, homes: int, horizon: int, batteries: Batteries, *, volume_row: bool = False,
        network: ZoneNetwork | None = None, jobs: Jobs | None = None, thermal: Thermal | None = None,
    ) -> None:
        if homes < 1 or horizon < 1:
            raise InputError(f"need at least one home and one step, got {homes} x {horizon}")
        check_battery_specs(batteries, homes)
        if network is not None:
            check_network(network, homes, horizon)
        self.network = network
        self._network_block = None if network is None else NetworkBlock(network, horizon)
        self._bus_shape: int | tuple[int, int] = horizon if network is None else (network.zones, horizon)
        self.homes = homes
        self.horizon = horizon
        self.specs = batteries
        self.volume_row = volume_row
        # Homes with a device (a battery, a deferrable job, an HVAC) get their own rows; the
        # name stays battery_homes for the battery-only formulation's sake.
        jobs = Jobs.none() if jobs is None else jobs
        thermal = Thermal.none() if thermal is None else thermal
        check_jobs(jobs, homes)
        check_thermal(thermal, homes, horizon)
        self.battery_homes = np.unique(np.concatenate([batteries.home, jobs.home, thermal.home])).astype(np.int64)
        self.batteries = BatteryFleet(batteries, horizon)
        self._battery_row = np.searchsorted(self.battery_homes, batteries.home)
        self.jobs = JobFleet(jobs, horizon) if jobs.count else None
        self._job_row = np.searchsorted(self.battery_homes, jobs.home)
        self.thermal = ThermalFleet(thermal, horizon) if thermal.count else None
        self._thermal_row = np.searchsorted(self.battery_homes, thermal.home)
        self.lp = self._build(home_slack=False)
        self._full_lp: LinearProgram | None = None
        self._workspaces: dict[tuple[bool, str], solvers.PiqpWorkspace] = {}
        self.last_solution: LPSolution | None = None

    # ------------------------------------------------------------------ build
    def _build(self, home_slack: bool) -> LinearProgram:
        """The LP's structure; ``home_slack`` adds the battery homes' shedding and curtailment."""
        T, B, M = self.horizon, self.specs.count, self.battery_homes.size
        lp = LinearProgram()
        self.batteries.build(lp)
        u = lp.columns("buy_side", (M, T))
        net = self._network_block  # None on a copper plate
        bus = self._bus_shape  # (T,) on a copper plate, (Z, T) with a network: one per zone
        g_imp, g_exp = lp.columns("grid_import", bus), lp.columns("grid_export", bus)
        zd, zs = lp.columns("shed_deficit", bus), lp.columns("shed_self", bus)
        ks, kd = lp.columns("curtail_surplus", bus), lp.columns("curtail_self", bus)
        epigraph = lp.rows("epigraph", (M, T))
        balance = lp.rows("balance", T, equality=True)
        if net is not None:
            # Only zones with a grid connection get grid columns in any row (the others' are
            # left isolated at 0). A row per step joining the grid columns of every zone, all
            # but one fixed at 0 on a radial grid, tied the feeders' line rows together at
            # each step in PIQP's ordering: 1,000 homes on 20 feeders factorised in 0.6 s an
            # iteration instead of 0.03 s (bench_clearing --feeders 20).
            connected = grid_zones(self.network)
            net.build(lp, g_imp[connected], g_exp[connected])  # lines: what enters the balance, by zone

        # epigraph: u - Σ(c - d) - k + z >= e_m; a device's terminal is its home's row
        self.batteries.add_net_consumption(lp, epigraph[self._battery_row], -1.0)
        lp.add(epigraph, u, 1.0)
        if self.jobs is not None:
            self.jobs.build(lp)
            self.jobs.add_net_consumption(lp, epigraph[self._job_row], -1.0)
            self.jobs.add_net_consumption(lp, np.broadcast_to(balance, (self.jobs.specs.count, T)), -1.0)
        if self.thermal is not None:
            self.thermal.build(lp)
            self.thermal.add_net_consumption(lp, epigraph[self._thermal_row], -1.0)
            self.thermal.add_net_consumption(lp, np.broadcast_to(balance, (self.thermal.specs.count, T)), -1.0)

        # balance: G⁺ - G⁻ - Σ(c - d) - Σ(k - z) - (ks + kd - zd - zs) == E
        groups = self._battery_groups()
        if groups is None:
            self.batteries.add_net_consumption(lp, np.broadcast_to(balance, (B, T)), -1.0)
        else:
            # A large fleet's Σ(c - d) goes through one column per group and step, y_g = Σ_{b∈g} (c - d),
            # defined by its own row (see BATTERY_GROUP_SIZE)
            y = lp.columns("battery_group_net", (groups.max() + 1, T))
            define = lp.rows("battery_group", y.shape, equality=True)
            lp.add(define, y, 1.0)
            self.batteries.add_net_consumption(lp, define[groups], -1.0)
            lp.add(np.broadcast_to(balance, y.shape), y, -1.0)
        if net is not None:
            net.add_device(lp, self.batteries, self.specs.home, -1.0)
            for device in (self.jobs, self.thermal):
                if device is not None:
                    net.add_device(lp, device, device.specs.home, -1.0)
        for cols, coef in ((ks, -1.0), (kd, -1.0), (zd, 1.0), (zs, 1.0)):
            self._add_to_balance(lp, balance, cols, coef)
        for cols, coef in ((g_imp, 1.0), (g_exp, -1.0)):
            self._add_to_balance(lp, balance, cols, coef, zones=None if net is None else connected)

        if self.volume_row:
            V = lp.columns("p2p_volume", T)
            volume = lp.rows("volume", T)
            # V + G⁺ + zd - kd - Σ u >= D_F
            for cols, coef in ((V, 1.0), (g_imp, 1.0), (zd, 1.0), (kd, -1.0)):
                lp.add(np.broadcast_to(volume, cols.shape), cols, coef)
            lp.add(np.broadcast_to(volume, (M, T)), u, -1.0)
        if home_slack:
            z, k = lp.columns("home_shed", (M, T)), lp.columns("home_curtail", (M, T))
            for rows in (epigraph, np.broadcast_to(balance, (M, T))):
                lp.add(rows, z, 1.0)
                lp.add(rows, k, -1.0)
            if net is not None:
                net.add_homes(lp, z, 1.0, self.battery_homes)
                net.add_homes(lp, k, -1.0, self.battery_homes)
        else:
            # The battery homes' shedding and curtailment in aggregate, priced as if
            # shedding never relieved a buyer and curtailing always made one: a
            # restriction of the LP above that keeps it feasible.
            zb, kb = lp.columns("shed_battery_homes", bus), lp.columns("curtail_battery_homes", bus)
            self._add_to_balance(lp, balance, zb, 1.0)
            self._add_to_balance(lp, balance, kb, -1.0)
            if self.volume_row:
                lp.add(np.broadcast_to(volume, kb.shape), kb, -1.0)
        lp.matrix  # assemble once
        return lp

    def _battery_groups(self) -> np.ndarray | None:
        """(B,) each battery's group on a copper plate whose fleet is too large for one
        balance row (see BATTERY_GROUP_SIZE); None: the batteries enter the balance directly."""
        B = self.specs.count
        if self.network is not None or B * self.horizon <= PIQP_MAX_BATTERY_STEPS:
            return None
        count = -(-B // BATTERY_GROUP_SIZE)
        return np.arange(B) * count // B

    def _add_to_balance(self, lp: LinearProgram, balance: np.ndarray, cols: np.ndarray, coef: float,
                        zones: np.ndarray | None = None) -> None:
        """Community columns (T,), or one per zone (Z, T) with a network, into the balance;
        with a network, only the zones where ``zones`` (Z,) is True if given."""
        if zones is None:
            lp.add(np.broadcast_to(balance, cols.shape), cols, coef)
        else:
            lp.add(np.broadcast_to(balance, cols[zones].shape), cols[zones], coef)
        if self._network_block is not None:
            self._network_block.add_zonal(lp, cols, coef if zones is None else coef * zones[:, None])

    def _per_bus(self, values: np.ndarray, homes: np.ndarray | None = None) -> np.ndarray:
        """Sum (n, T) values of ``homes`` (all homes if None): (T,), or per zone (Z, T) with a network."""
        if self.network is None:
            return values.sum(axis=0)
        zone = self.network.home_zone if homes is None else self.network.home_zone[homes]
        return zone_sum(values, zone, self.network.zones)

    # ------------------------------------------------------------------ solve
    def clear(self, inputs: ClearingInputs, *, capacity_margin_kwh: float = 0.0) -> Clearing:
        """Clear one interval: fill costs and bounds, re-solve, post-process step 0.

        ``capacity_margin_kwh`` is subtracted from both grid capacities so that
        rounding per-home flows to integer Wh later cannot exceed the limit.

        The LP is first solved without the battery homes' own shedding and
        curtailment (two of their five variables per step). Those only help once
        the pool's deficit or surplus is used up; the row prices say whether any
        would lower the cost (a negative reduced cost), and only then is the
        LP with them solved. Either way the result is an optimum of the full LP.
        """
        self._validate(inputs, capacity_margin_kwh)
        terms = self._interval_terms(inputs, capacity_margin_kwh)
        solution = self._solve_interval(terms)
        starts = None
        if self.jobs is not None:
            # A job starts now or not: split starts-now are rounded (JobFleet.round_step0)
            # and the LP solved again with them fixed (the plan beyond step 0 may stay fractional).
            now = self.jobs.starts_now(solution)
            starts, split = self.jobs.round_step0(now, JOB_FRACTION_TOL)
            rounded = split | (starts != now)
            worst = terms.voll * float(np.dot(np.abs(starts - now), self.jobs.specs.energy_kwh.sum(axis=1)))
            if np.any(split) or worst > JOB_ROUNDING_REL * max(abs(solution.objective), 1.0):
                try:
                    solution = self._solve_interval(terms, starts)
                except SolverError:
                    # Starting a split job whole may not fit the feeder; not starting it
                    # always does (it can start later, or be dropped at VoLL).
                    starts[rounded & (starts == 1.0)] = 0.0
                    solution = self._solve_interval(terms, starts)
        self.last_solution = solution
        return self._post_process(inputs, solution, terms, starts)

    def _solve_interval(self, terms: "_Terms", job_step0: np.ndarray | None = None) -> LPSolution:
        solution = self._solve(self.lp, self._fill(self.lp, terms, job_step0))
        if self._home_slack_would_help(solution, terms):
            if self._full_lp is None:
                self._full_lp = self._build(home_slack=True)
            solution = self._solve(self._full_lp, self._fill(self._full_lp, terms, job_step0))
        return solution

    def _validate(self, inputs: ClearingInputs, margin: float) -> None:
        check_inputs(inputs)
        if not (np.isfinite(margin) and margin >= 0):
            raise InputError(f"capacity_margin_kwh must be a finite value >= 0, got {margin!r}")
        if (inputs.homes, inputs.horizon) != (self.homes, self.horizon):
            raise InputError(
                f"model built for {self.homes} homes x {self.horizon} steps, "
                f"inputs have {inputs.homes} x {inputs.horizon}; use optimizer.clear()"
            )
        if _battery_key(inputs.batteries) != _battery_key(self.specs):
            raise InputError("inputs' batteries differ from the model's; use optimizer.clear()")
        if _jobs_key(inputs.jobs) != _jobs_key(Jobs.none() if self.jobs is None else self.jobs.specs):
            raise InputError("inputs' jobs differ from the model's; use optimizer.clear()")
        if _thermal_key(inputs.thermal) != _thermal_key(Thermal.none() if self.thermal is None else self.thermal.specs):
            raise InputError("inputs' HVACs differ from the model's; use optimizer.clear()")
        if network_key(inputs.network) != network_key(self.network):
            raise InputError("inputs' network differs from the model's; use optimizer.clear()")
        if inputs.network is not None:
            check_network(inputs.network, self.homes, self.horizon)
        if needs_volume_row(inputs) and not self.volume_row:
            raise InputError(
                "a step's tariff spread is below the P2P cost: this model needs volume_row=True; "
                "use optimizer.clear()"
            )

    def _interval_terms(self, inputs: ClearingInputs, margin: float) -> "_Terms":
        """Everything the LP's costs and bounds are made of, for one interval."""
        spec, T = self.specs, self.horizon
        load, pv = inputs.load_kwh, inputs.pv_kwh
        if self.jobs is not None:
            load = load + inputs.jobs.running_kwh(self.homes, T)  # a started job's draw is load
        net = load - pv
        pooled = np.ones(self.homes, dtype=bool)
        pooled[self.battery_homes] = False
        pool = np.flatnonzero(pooled)
        buy, sell = inputs.buy_price_per_kwh, inputs.sell_price_per_kwh
        p2p = float(inputs.p2p_cost_per_kwh)
        # A state fed back from the previous clearing may sit a hair outside
        # its bounds (solver tolerance); clip so the LP stays feasible.
        soc0 = np.clip(inputs.batteries.soc_kwh, spec.min_soc_kwh, spec.capacity_kwh)
        d0 = self.batteries.initial_discharge(soc0)
        home_d0 = np.zeros((self.battery_homes.size, T))
        home_d0[:, 0] = np.bincount(self._battery_row, d0[:, 0], self.battery_homes.size)
        return _Terms(
            load=load[self.battery_homes],
            pv=pv[self.battery_homes],
            net=net[self.battery_homes] - home_d0,
            deficit=self._per_bus(np.maximum(net[pool], 0.0), pool),
            surplus=self._per_bus(np.maximum(-net[pool], 0.0), pool),
            self_supplied=self._per_bus(np.minimum(load[pool], pv[pool]), pool),
            fixed_demand=self._per_bus(net) - self._per_bus(d0, spec.home),
            soc0=soc0,
            buy=buy,
            sell=sell,
            p2p=p2p,
            voll=VOLL_FACTOR * max(np.abs(buy).max(), np.abs(sell).max(), p2p, VOLL_FLOOR_PER_KWH),
            import_cap=np.maximum(inputs.import_capacity_kwh - margin, 0.0),
            export_cap=np.maximum(inputs.export_capacity_kwh - margin, 0.0),
            thermal=inputs.thermal,
            network=inputs.network,
            margin=margin,
        )

    def _fill(self, lp: LinearProgram, terms: "_Terms", job_step0: np.ndarray | None = None) -> LPData:
        """Costs and bounds of ``lp`` for the interval; see the module docstring."""
        spec = self.specs
        # In the objective form the volume's terms move into the costs.
        folded = 0.0 if self.volume_row else terms.p2p
        data = lp.data()
        self.batteries.fill(data, terms.soc0, stored_value_per_kwh=max(terms.sell.mean(), 0.0))
        # A battery home's buy side is at most its load plus all its batteries charging.
        most = terms.load + np.bincount(self._battery_row, spec.max_charge_kwh, self.battery_homes.size)[:, None]
        if self.jobs is not None:
            self.jobs.fill(data, terms.voll, job_step0)
            most = most + np.bincount(self._job_row, self.jobs.specs.energy_kwh.max(axis=1), self.battery_homes.size)[:, None]
        if self.thermal is not None:
            self.thermal.fill(data, terms.thermal, terms.voll)
            most = most + np.bincount(self._thermal_row, terms.thermal.max_kwh, self.battery_homes.size)[:, None]
        data.set_columns("buy_side", lo=0.0, hi=most + terms.pv, cost=folded)
        if self._network_block is None:
            data.set_columns("grid_import", hi=terms.import_cap, cost=terms.buy - folded)
            data.set_columns("grid_export", hi=terms.export_cap, cost=-terms.sell)
        else:
            net = terms.network
            data.set_columns("grid_import", hi=np.maximum(net.grid_import_kwh - terms.margin, 0.0), cost=terms.buy - folded)
            data.set_columns("grid_export", hi=np.maximum(net.grid_export_kwh - terms.margin, 0.0), cost=-terms.sell)
            self._network_block.fill(data, net, terms.fixed_demand, terms.import_cap, terms.export_cap)
        data.set_columns("shed_deficit", hi=terms.deficit, cost=terms.voll - folded)
        data.set_columns("shed_self", hi=terms.self_supplied, cost=terms.voll)
        data.set_columns("curtail_surplus", hi=terms.surplus, cost=CURTAIL_COST_PER_KWH)
        data.set_columns("curtail_self", hi=terms.self_supplied, cost=CURTAIL_COST_PER_KWH + folded)
        data.set_rows("epigraph", lo=terms.net)
        if "battery_group_net" in lp.column_blocks:
            data.set_columns("battery_group_net", lo=-np.inf, hi=np.inf)
            data.set_rows("battery_group", lo=0.0, hi=0.0)
        demand = terms.fixed_demand if self.network is None else terms.fixed_demand.sum(axis=0)
        data.set_rows("balance", lo=demand, hi=demand)
        if self.volume_row:
            data.set_columns("p2p_volume", hi=np.inf, cost=terms.p2p)
            data.set_rows("volume", lo=terms.deficit if self.network is None else terms.deficit.sum(axis=0))
        if "home_shed" in lp.column_blocks:
            data.set_columns("home_shed", lo=0.0, hi=terms.load, cost=terms.voll)
            data.set_columns("home_curtail", lo=0.0, hi=terms.pv, cost=CURTAIL_COST_PER_KWH)
        else:
            bh = self.battery_homes
            data.set_columns("shed_battery_homes", hi=self._per_bus(terms.load, bh), cost=terms.voll)
            data.set_columns("curtail_battery_homes", hi=self._per_bus(terms.pv, bh), cost=CURTAIL_COST_PER_KWH + folded)
        return data

    def _home_slack_would_help(self, solution: LPSolution, terms: "_Terms") -> bool:
        """True if shedding or curtailing at a battery home has a negative reduced cost.

        Reduced cost = cost - (column of the matrix)' row prices; shedding enters the
        home's epigraph and the balance with +1, curtailment with -1.
        """
        if not self.battery_homes.size:
            return False
        if self.network is None:
            zone_price = solution.price("balance")[None, :]
        else:
            zone_price = self._network_block.zone_prices(solution)[self.network.home_zone[self.battery_homes]]
        prices = solution.price("epigraph") + zone_price
        shed = terms.voll - prices
        curtail = CURTAIL_COST_PER_KWH + prices
        return bool(
            np.any((shed < -REDUCED_COST_TOL) & (terms.load > 0))
            or np.any((curtail < -REDUCED_COST_TOL) & (terms.pv > 0))
        )

    def _solve(self, lp: LinearProgram, data: LPData) -> LPSolution:
        """Try each of SOLVER_ATTEMPTS in turn; raise SolverError if none succeeds."""
        failures = []
        attempts = SOLVER_ATTEMPTS
        if self._battery_groups() is None and self.specs.count * self.horizon > PIQP_MAX_BATTERY_STEPS \
                and len(attempts) > 1:
            attempts = tuple(a for a in attempts if a[0] != solvers.PIQP) or attempts
        elif self.network is not None and grid_zones(self.network).sum() > PIQP_MAX_GRID_ZONES:
            attempts = tuple(sorted(attempts, key=lambda a: a[0] != solvers.CLARABEL))
        if self.network is not None:
            attempts = tuple((s, {**o, **NETWORK_PIQP_GAP} if s == solvers.PIQP else o) for s, o in attempts)
        for attempt, (solver, options) in enumerate(attempts, start=1):
            last = attempt == len(attempts)
            try:
                if solver == solvers.PIQP:
                    key = (lp is self._full_lp, repr(sorted(options.items())))
                    workspace = self._workspaces.get(key)
                    if workspace is None:
                        workspace = self._workspaces[key] = solvers.PiqpWorkspace(lp, options)
                    return workspace.solve(data, accept_inaccurate=last)
                if solver == solvers.CLARABEL:
                    return solvers.solve_clarabel(lp, data, options, accept_inaccurate=last)
                raise solvers.SolverFailure(f"unknown solver {solver!r}")
            except solvers.SolverFailure as exc:
                failures.append(str(exc))
                if not last:
                    log.info("clearing %d homes x %d steps: %s; trying the next solver", self.homes, self.horizon, exc)
        raise SolverError(
            f"no optimal clearing for {self.homes} homes x {self.horizon} steps "
            f"({'; '.join(failures)}); the model is always feasible, so look for "
            "extreme values (e.g. capacities or prices of 1e9) in the inputs"
        )

    # ------------------------------------------------------------------ results
    def _post_process(self, inputs: ClearingInputs, sol: LPSolution, terms: "_Terms",
                      job_starts: np.ndarray | None = None) -> Clearing:
        spec, network = self.specs, self.network
        jobs = None if self.jobs is None else {
            "job_kwh": self.jobs.step0_kwh(job_starts, self.homes), "job_starts_now": job_starts.astype(bool)}
        load0 = inputs.load_kwh[:, 0] + (0.0 if jobs is None else jobs["job_kwh"])
        if self.thermal is not None:
            hvac0, indoor = self.thermal.step0(sol, terms.thermal, self.homes)
            load0 = load0 + hvac0
            jobs = (jobs or {}) | {"hvac_kwh": hvac0, "indoor_after_c": indoor}
        charge, discharge = self.batteries.flows(sol, terms.soc0)

        def step0(name: str) -> float | np.ndarray:  # per zone with a network
            value = snap(sol.value(name)[..., 0])
            return float(value) if network is None else value

        if "home_shed" in sol.lp.column_blocks:
            home_shed, home_curtail = sol.value("home_shed")[:, 0], sol.value("home_curtail")[:, 0]
        elif network is None:
            home_shed = pro_rata(step0("shed_battery_homes"), terms.load[:, 0])
            home_curtail = pro_rata(step0("curtail_battery_homes"), terms.pv[:, 0])
        else:
            zone = network.home_zone[self.battery_homes]
            home_shed = zone_pro_rata(step0("shed_battery_homes"), terms.load[:, 0], zone, network.zones)
            home_curtail = zone_pro_rata(step0("curtail_battery_homes"), terms.pv[:, 0], zone, network.zones)
        step = Step0(
            grid_import=step0("grid_import"),
            shed_deficit=step0("shed_deficit"),
            shed_self=step0("shed_self"),
            curtail_surplus=step0("curtail_surplus"),
            curtail_self=step0("curtail_self"),
            battery_home_shed=snap(home_shed),
            battery_home_curtail=snap(home_curtail),
        )
        flows = allocate_step0(
            load0, inputs.pv_kwh[:, 0], self.battery_homes, spec.home,
            charge[:, 0], discharge[:, 0], step, None if network is None else network.home_zone,
        )
        buy0, sell0 = float(terms.buy[0]), float(terms.sell[0])
        constant = 0.0 if self.volume_row else terms.p2p * float(terms.deficit.sum())
        if network is not None:
            zone_price = np.clip(self._network_block.zone_prices(sol)[:, 0], sell0, buy0)
            home_price = zone_price[network.home_zone]
            return Clearing(
                **flows,
                battery_charge_kwh=charge[:, 0].copy(),
                battery_discharge_kwh=discharge[:, 0].copy(),
                soc_path_kwh=soc_path(spec, inputs.batteries.soc_kwh, charge, discharge),
                p2p_price_per_kwh=float(zone_price[network.reference_zone]),
                objective=sol.objective + constant,
                status=sol.status,
                zone_price_per_kwh=zone_price,
                line_flow_kwh=self._network_block.flows(sol, terms.fixed_demand)[:, 0].copy(),
                congestion_rent=float(home_price @ flows["p2p_buy_kwh"] - home_price @ flows["p2p_sell_kwh"]),
                **(jobs or {}),
            )
        price = float(sol.price("balance")[0])
        return Clearing(
            **flows,
            battery_charge_kwh=charge[:, 0].copy(),
            battery_discharge_kwh=discharge[:, 0].copy(),
            soc_path_kwh=soc_path(spec, inputs.batteries.soc_kwh, charge, discharge),
            p2p_price_per_kwh=float(min(max(price, sell0), buy0)),
            objective=sol.objective + constant,
            status=sol.status,
            **(jobs or {}),
        )


@dataclass(frozen=True)
class _Terms:
    """One interval's data in the LP's terms (battery-home rows, pool totals per step)."""

    load: np.ndarray  # (M, T) battery homes' load
    pv: np.ndarray  # (M, T) battery homes' PV
    net: np.ndarray  # (M, T) battery homes' load - pv, less their batteries' soc0 term
    deficit: np.ndarray  # (T,) D_F; (Z, T) per zone with a network, as the next three
    surplus: np.ndarray  # (T,) S_F
    self_supplied: np.ndarray  # (T,) W_F
    fixed_demand: np.ndarray  # (T,) E, less the batteries' soc0 term (per zone with a network)
    soc0: np.ndarray  # (B,)
    buy: np.ndarray
    sell: np.ndarray
    p2p: float
    voll: float
    import_cap: np.ndarray
    export_cap: np.ndarray
    thermal: Thermal  # this interval's indoor and outdoor temperatures and comfort bands
    network: ZoneNetwork | None = None  # the interval's limits, if the community has a network
    margin: float = 0.0


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


def _jobs_key(j: Jobs) -> tuple[bytes, ...]:
    """Identity of the jobs, windows included (the candidate starts are columns). No
    jobs are no jobs, whatever the width of their empty profile array (a clearing that
    leaves out the only homes with jobs has a (0, L) one)."""
    if j.count == 0:
        return ()
    parts = [np.ascontiguousarray(a, dtype=np.int64) for a in (j.home, j.earliest, j.latest, j.started, j.start)]
    parts.append(np.ascontiguousarray(j.energy_kwh, dtype=np.float64))
    return tuple(a.tobytes() for a in parts) + (bytes(str(j.energy_kwh.shape), "ascii"),)


def _thermal_key(t: Thermal) -> tuple[bytes, ...]:
    """Identity of the HVACs' fixed specs (what the matrix holds; temperatures are bounds).
    No HVACs are no HVACs, whatever their step length (see _jobs_key)."""
    if t.count == 0:
        return ()
    parts = [np.ascontiguousarray(t.home, dtype=np.int64)] + [
        np.ascontiguousarray(a, dtype=np.float64) for a in (t.max_kwh, t.cop, t.sign, t.resistance_k_per_kw,
                                                            t.capacitance_kwh_per_k, [t.step_hours])]
    return tuple(a.tobytes() for a in parts)


_models: OrderedDict[tuple, CommunityModel] = OrderedDict()
_NO_JOBS = _jobs_key(Jobs.none())


def model_for(inputs: ClearingInputs) -> CommunityModel:
    """The cached model for this shape, battery fleet and volume form, built on first use."""
    volume_row = needs_volume_row(inputs)
    key = (inputs.homes, inputs.horizon, _battery_key(inputs.batteries), volume_row, network_key(inputs.network),
           _thermal_key(inputs.thermal), _jobs_key(inputs.jobs))
    model = _models.get(key)
    if model is None:
        model = CommunityModel(inputs.homes, inputs.horizon, inputs.batteries, volume_row=volume_row,
                               network=inputs.network, jobs=inputs.jobs, thermal=inputs.thermal)
        if inputs.jobs.count:
            # A model with jobs serves its interval only (the windows move): keep the last
            # one (an auditor's or oracle's second look), not a cache full of them.
            for old in [k for k in _models if k[-1] != _NO_JOBS]:
                del _models[old]
        _models[key] = model
        if len(_models) > _CACHE_SIZE:
            _models.popitem(last=False)
    _models.move_to_end(key)
    return model


def clear(inputs: ClearingInputs, *, capacity_margin_kwh: float = 0.0) -> Clearing:
    """Clear step 0 of ``inputs``, reusing the model built for the same shape."""
    check_inputs(inputs)
    if inputs.network is not None:  # before its key is taken: a malformed one is named, not a numpy error
        check_network(inputs.network, inputs.homes, inputs.horizon)
    return model_for(inputs).clear(inputs, capacity_margin_kwh=capacity_margin_kwh)
