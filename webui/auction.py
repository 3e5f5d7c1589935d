"""How an auction-market interval's double auction cleared, for its page and its API.

The chain holds only the settled entries. The clearing type, the surpluses and what
became of each order follow from the committed inputs, so they are cleared again here
the way the auditor re-runs them (node.clearing is a pure function of the inputs).
"""

from __future__ import annotations

from node.errors import InputError
from node.clearing.inputs import IntervalInputs
from webui.context import get_index


def auction_view(interval: dict) -> dict | None:
    """The auction of a settled `interval` row, or None for a community interval (or
    one whose inputs this index does not hold). Money in minor units (surpluses are
    rounded down from thousandths), prices in minor units per kWh, energies in Wh."""
    try:
        body = get_index().inputs(interval["inputs_hash"])
    except InputError:
        return None
    # Canonical JSON (sorted keys, no spaces): a community interval's inputs are not parsed.
    if b'"mechanism":"auction"' not in body:
        return None
    # Imported here: the clearing loads cvxpy (a second at start-up), which only an
    # auction interval's page needs.
    from node.clearing.interval import run_clearing

    inputs = IntervalInputs.from_json(body)
    result = run_clearing(inputs).auction
    return {
        "pricing": result.pricing,
        "clearing_type": result.clearing_type.value,
        "clearing_price": result.clearing_price,
        "volume_wh": result.volume_wh,
        "surplus_units": {
            "buyers": result.buyer_surplus_milli // 1000,
            "sellers": result.seller_surplus_milli // 1000,
            "grid_operator": result.operator_surplus_milli // 1000,
        },
        "marginal_orders": {"buy": result.marginal_buy_order, "sell": result.marginal_sell_order},
        "orders": [
            {
                "order_id": f.order_id, "participant": f.participant, "side": f.side.value, "energy_wh": f.energy_wh,
                "effective_limit": f.effective_limit, "p2p_wh": f.p2p_wh, "p2p_price": f.p2p_price,
                # What the auction sent to the grid; settled grid legs are cut to capacity.
                "grid_wh": f.grid_wh, "netted_wh": f.netted_wh, "unfilled_wh": f.unfilled_wh,
            }
            for f in result.orders
        ],
    }
