"""Rebuild the local index from the chain alone, and prove an index equals the chain.

The index is a cache; the chain is the truth. `rebuild_index` replays the market's
event logs, in narrow block ranges from the deployment block, into a fresh index. Each
range is committed in one SQLite transaction together with the index's ``last_block``,
so a rebuild that is interrupted (Ctrl+C, a crash, ``max_chunks``) resumes from where
it stopped and never applies a range twice. Gas used is read from each settlement's
receipt, which is chain data too.

What the chain does not hold: the clearing inputs (only their keccak hashes are on
chain), the no-trading baseline (computed locally from the dataset) and the market's
description (currency, epoch). The inputs come from the inputs store beside the index
(node.clearing.store), which outlives it; what the pages show of them is recorded as
each settled interval is indexed. The baseline and the description are copied from an
old index when one is given (a description can also be passed in; the baseline is
computed again by the next `simulate`). An input is only taken if it hashes to what
the chain committed, so a damaged source cannot smuggle wrong inputs in.

`check_index` compares every row of an index with the chain's events and with the
contracts' current state (participant accounts, wallet balances, next interval), and
also checks that each settlement's committed inputs are present and hash right.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from node.errors import InputError
from node.chain.events import Event
from node.chain.settlement import decode_entry
from node.index.store import Index
from node.clearing.inputs import IntervalInputs
from node.chain.market import LOG_CHUNK_BLOCKS, Market

__all__ = ["rebuild_index", "check_index", "chain_rows", "settlement_gas", "record_settled_inputs", "DEFAULT_CHUNK_BLOCKS"]

DEFAULT_CHUNK_BLOCKS = LOG_CHUNK_BLOCKS

_MARKET_META = ("chain_id", "market", "token", "deploy_block")


def rebuild_index(
    market: Market,
    index_path: str | Path,
    inputs_from: Index | None = None,
    progress: bool = True,
    chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
    max_chunks: int | None = None,
    description: dict[str, str] | None = None,
) -> Index:
    """Builds (or resumes building) the index at `index_path` from `market`'s logs and
    the inputs store beside it.

    `inputs_from` is an old index whose baseline and descriptive meta are copied over
    (and any committed inputs the store lacks, from an index older than the store);
    `description` is descriptive meta to use when there is no old index. `max_chunks`
    stops after that many block ranges (the rebuild resumes on the next call), so a
    long rebuild can be done in slices. Returns the open index; it covers the chain up
    to the head seen at the start.
    """
    if chunk_blocks < 1:
        raise InputError(f"chunk_blocks must be at least 1, got {chunk_blocks}")
    index = Index(index_path)
    try:
        _claim(index, market, inputs_from, description or {})
        head = market.chain.w3.eth.block_number
        start = max(index.last_block + 1, market.deployment.block)
        # Inputs of intervals indexed before an interruption may not have been recorded yet.
        record_settled_inputs(index, inputs_from, None)
        bar = _progress(max(0, head - start + 1), progress)
        for done, (low, high, events) in enumerate(market.log_chunks(start, head, chunk_blocks)):
            if max_chunks is not None and done >= max_chunks:
                break
            index.apply(events, settlement_gas(market, events), up_to_block=high)
            record_settled_inputs(index, inputs_from, [e.args["interval"] for e in events if e.name == "IntervalSettled"])
            bar.update(high - low + 1)
        bar.close()
    except BaseException:
        index.close()
        raise
    return index


def _claim(index: Index, market: Market, inputs_from: Index | None, description: dict[str, str]) -> None:
    """Stamps the index with its market, refusing one that belongs to another market."""
    d = market.deployment
    ours = {"chain_id": str(d.chain_id), "market": d.market, "token": d.token, "deploy_block": str(d.block),
            "chain": market.chain.description}
    meta = index.meta()
    if meta.get("market") not in (None, d.market):
        raise InputError(
            f"{index.path} indexes market {meta['market']}, not {d.market}: rebuild into a new file"
        )
    copied = {k: v for k, v in description.items() if k not in _MARKET_META}
    if inputs_from is not None:
        copied |= {k: v for k, v in inputs_from.meta().items()
                   if k not in _MARKET_META and k not in ("last_block", "inputs_in_store", "roles_from_block")}
    # Descriptive meta (currency, epoch, names) is not on chain; an old index or the
    # state directory's market.json is the only source.
    index.set_meta(**(copied | ours))
    if inputs_from is not None:
        rows = inputs_from.db.execute("SELECT * FROM baseline").fetchall()
        index.store_baseline(tuple(row) for row in rows)
        rows = inputs_from.db.execute("SELECT * FROM baseline_battery").fetchall()
        index.store_baseline_battery(tuple(row) for row in rows)
        if (kpis := inputs_from.kpis()) is not None:
            index.store_kpis(kpis)


SETTLEMENT_EVENTS = ("IntervalSettled", "ChunkVerified", "ChunkApplied", "PendingAbandoned")


def settlement_gas(market: Market, events: list[Event]) -> dict[str, int]:
    """Gas used by each transaction that settled (part of) an interval, from its receipt."""
    hashes = {e.tx_hash for e in events if e.name in SETTLEMENT_EVENTS}
    return {h: int(market.chain.w3.eth.get_transaction_receipt(h)["gasUsed"]) for h in hashes}


def record_settled_inputs(index: Index, source: Index | None = None, intervals: Iterable[int] | None = None) -> None:
    """Records what the pages show of the committed inputs of the given intervals (None:
    every interval still without them), read from the inputs store; inputs the store
    lacks are taken from `source` (an index elsewhere, with its own store, or from
    before the store), if they hash to the on-chain commitment."""
    sql = """SELECT i.interval, i.inputs_hash FROM intervals i
             LEFT JOIN interval_inputs ii USING (interval) WHERE ii.interval IS NULL"""
    rows = index.db.execute(sql).fetchall()
    wanted = None if intervals is None else set(intervals)
    for row in rows:
        if wanted is not None and row["interval"] not in wanted:
            continue
        digest = row["inputs_hash"]
        if not index.inputs_store.has(digest) and source is not None:
            try:
                index.inputs_store.put(source.inputs(digest), digest)
            except InputError:
                pass  # reported by check_index as missing inputs
        try:
            body = index.inputs(digest)
        except InputError:
            continue  # reported by check_index as missing inputs
        index.record_inputs(IntervalInputs.from_json(body), digest)


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="block", desc="indexing", disable=not enabled, dynamic_ncols=True)


# -- checking -----------------------------------------------------------------------

_TABLES = {
    # table: (key columns, compared columns)
    "participants": (("id",), ("owner", "zone", "active", "name")),
    "intervals": (
        ("interval",),
        ("block", "tx_hash", "inputs_hash", "buy_price", "sell_price", "p2p_price", "grid_import_wh",
         "grid_export_wh", "grid_amount", "participants", "gas_used", "pay_as_bid"),
    ),
    "entries": (("interval", "participant"), ("grid_wh", "p2p_wh", "amount")),
    "zone_prices": (("interval", "zone"), ("price",)),
    "congestion_rents": (("interval",), ("rent_milli",)),
    "wallet_events": (("tx_hash", "log_index"), ("block", "participant", "kind", "account", "amount")),
    "capacity_events": (("tx_hash", "log_index"), ("block", "interval", "import_wh", "export_wh")),
    "role_events": (("tx_hash", "log_index"), ("block", "role", "account", "kind", "sender")),
    "settlement_chunks": (("tx_hash", "log_index"), ("block", "interval", "kind", "chunk", "entries", "gas_used")),
    "reversals": (("tx_hash", "log_index"), ("block", "interval", "participant", "disputer", "kind", "reward")),
    "reversal_steps": (("tx_hash", "log_index"), ("block", "interval", "kind", "chunk", "entries", "amount")),
    "reversed_entries": (("tx_hash", "log_index", "participant"), ("interval", "grid_wh", "p2p_wh", "amount")),
}
_REVERSAL_STEPS = {"ReversalOpened": "open", "ChunkReversed": "chunk", "ReversalClosed": "close"}


def chain_rows(market: Market, chunk_blocks: int = DEFAULT_CHUNK_BLOCKS) -> dict[str, dict[tuple, dict]]:
    """What each index table must hold, computed from the chain's logs and receipts alone
    (independently of the index's own event handlers, so a bug there shows up here)."""
    events = market.events(chunk_blocks=chunk_blocks)
    rows: dict[str, dict[tuple, dict]] = {table: {} for table in _TABLES}
    gas = settlement_gas(market, events)
    # An interval settled in chunks cost the gas of every transaction that carried its
    # chunks (abandoned attempts included) and of the one that closed it.
    # Each IntervalSettled is priced when it is seen: a dispute may reverse the interval
    # later, and its next settlement costs its own transactions only.
    interval_txs: dict[int, set[str]] = {}
    settled_gas: dict[tuple[str, int], int] = {}
    for e in events:
        if e.name in SETTLEMENT_EVENTS:
            txs = interval_txs.setdefault(e.args["interval"], set())
            txs.add(e.tx_hash)
            if e.name == "IntervalSettled":
                settled_gas[(e.tx_hash, e.log_index)] = sum(gas[h] for h in txs)
        elif e.name == "IntervalReversed":
            interval_txs.pop(e.args["interval"], None)
    for e in events:
        a = e.args
        if e.name == "ParticipantRegistered":
            rows["participants"][(a["participant"],)] = {"owner": a["owner"], "zone": a["zone"], "active": 1, "name": a["name"]}
        elif e.name == "ParticipantUpdated":
            row = rows["participants"].get((a["participant"],))
            if row is not None:
                row.update(zone=a["zone"], active=int(a["active"]))
        elif e.name == "IntervalSettled":
            rows["intervals"][(a["interval"],)] = {
                "block": e.block, "tx_hash": e.tx_hash, "inputs_hash": "0x" + a["inputsHash"].hex(),
                "buy_price": a["importPrice"], "sell_price": a["exportPrice"], "p2p_price": a["p2pPrice"],
                "grid_import_wh": a["gridImportWh"], "grid_export_wh": a["gridExportWh"],
                "grid_amount": a["gridAmount"], "participants": a["participants"],
                "gas_used": settled_gas[(e.tx_hash, e.log_index)], "pay_as_bid": int(a["payAsBid"]),
            }
        elif e.name in ("ChunkVerified", "ChunkApplied", "PendingAbandoned"):
            kind = {"ChunkVerified": "verify", "ChunkApplied": "apply", "PendingAbandoned": "abandon"}[e.name]
            rows["settlement_chunks"][(e.tx_hash, e.log_index)] = {
                "block": e.block, "interval": a["interval"], "kind": kind,
                "chunk": a.get("chunk", a.get("verifiedChunks")), "entries": a.get("entries", 0), "gas_used": gas[e.tx_hash],
            }
        elif e.name == "EntriesSettled":
            for entry in map(decode_entry, a["entries"]):
                if not entry.excluded:
                    rows["entries"][(a["interval"], entry.participant)] = {
                        "grid_wh": entry.grid_wh, "p2p_wh": entry.p2p_wh, "amount": entry.amount}
        elif e.name == "ZonePricesSettled":
            for zone, price in enumerate(a["zonePrices"]):
                rows["zone_prices"][(a["interval"], zone)] = {"price": price}
            rows["congestion_rents"][(a["interval"],)] = {"rent_milli": a["congestionRentMilli"]}
        elif e.name == "IntervalReversed":
            rows["reversals"][(e.tx_hash, e.log_index)] = {
                "block": e.block, "interval": a["interval"], "participant": a["participant"],
                "disputer": a["disputer"].lower(), "kind": a["kind"], "reward": a["reward"]}
            for (k, pid), entry in rows["entries"].items():
                if k == a["interval"]:
                    rows["reversed_entries"][(e.tx_hash, e.log_index, pid)] = entry | {"interval": k}
            rows["intervals"].pop((a["interval"],), None)
            rows["congestion_rents"].pop((a["interval"],), None)
            for table in ("entries", "zone_prices"):
                for key in [key for key in rows[table] if key[0] == a["interval"]]:
                    del rows[table][key]
        elif e.name == "OwnerRotated":
            row = rows["participants"].get((a["participant"],))
            if row is not None:
                row["owner"] = a["newOwner"]
        elif e.name in ("Deposited", "Withdrawn"):
            deposit = e.name == "Deposited"
            rows["wallet_events"][(e.tx_hash, e.log_index)] = {
                "block": e.block, "participant": a["participant"], "kind": "deposit" if deposit else "withdraw",
                "account": a["from" if deposit else "to"], "amount": a["amount"],
            }
        elif e.name in ("RoleGranted", "RoleRevoked"):
            rows["role_events"][(e.tx_hash, e.log_index)] = {
                "block": e.block, "role": "0x" + bytes(a["role"]).hex(), "account": a["account"].lower(),
                "kind": "grant" if e.name == "RoleGranted" else "revoke", "sender": a["sender"].lower(),
            }
        elif e.name in _REVERSAL_STEPS:
            rows["reversal_steps"][(e.tx_hash, e.log_index)] = {
                "block": e.block, "interval": a["interval"], "kind": _REVERSAL_STEPS[e.name],
                "chunk": a.get("chunks", a.get("chunk")), "entries": a.get("entries"),
                "amount": a.get("sum", a.get("gridAmount"))}
        elif e.name in ("CapacitySet", "DefaultCapacitySet"):
            rows["capacity_events"][(e.tx_hash, e.log_index)] = {
                "block": e.block, "interval": a.get("interval"), "import_wh": a["importWh"], "export_wh": a["exportWh"],
            }
    return rows


def check_index(market: Market, index: Index, chunk_blocks: int = DEFAULT_CHUNK_BLOCKS, inputs: bool = True) -> list[str]:
    """Every difference between `index` and the chain, one line each; empty means equal.

    Compares each indexed table row by row with the chain's events, the index's
    participants and balances with the contracts' current state (balances not while a
    dispute's reversal is open: the index already leaves it out), and (with `inputs`)
    that each settled interval's committed inputs are stored and hash to the on-chain
    commitment. Only blocks up to the index's ``last_block`` are expected to be indexed.
    """
    differences: list[str] = []
    meta = index.meta()
    if meta.get("market", market.deployment.market).lower() != market.deployment.market.lower():
        return [f"meta: the index is of market {meta['market']}, the chain's is {market.deployment.market}"]
    head = market.chain.w3.eth.block_number
    if index.last_block < head:
        differences.append(f"meta: the index covers blocks up to {index.last_block}, the chain is at {head}")
    expected = chain_rows(market, chunk_blocks)
    for table, (keys, columns) in _TABLES.items():
        differences += _compare(table, keys, columns, expected[table], _index_rows(index.db, table, keys, columns))
    differences += _check_state(market, index)
    if inputs:
        differences += _check_inputs(index)
    return differences


def _index_rows(db: sqlite3.Connection, table: str, keys: tuple, columns: tuple) -> dict[tuple, dict]:
    rows = db.execute(f"SELECT {', '.join(keys + columns)} FROM {table}").fetchall()
    return {tuple(row[k] for k in keys): {c: row[c] for c in columns} for row in rows}


def _compare(table: str, keys: tuple, columns: tuple, chain: dict, indexed: dict) -> list[str]:
    out = []

    def where(key: tuple) -> str:
        return ", ".join(f"{k} {v}" for k, v in zip(keys, key))

    for key in sorted(chain.keys() - indexed.keys(), key=repr):
        out.append(f"{table}: {where(key)} is on chain but missing from the index")
    for key in sorted(indexed.keys() - chain.keys(), key=repr):
        out.append(f"{table}: {where(key)} is in the index but not on chain")
    for key in sorted(chain.keys() & indexed.keys(), key=repr):
        for column in columns:
            want, have = chain[key][column], indexed[key][column]
            if isinstance(want, str) and isinstance(have, str):
                same = want.lower() == have.lower()
            else:
                same = want == have
            if not same:
                out.append(f"{table}: {where(key)}: {column} is {have!r} in the index, {want!r} on chain")
    return out


def _check_state(market: Market, index: Index) -> list[str]:
    """The index against the contracts' state now, not just their events."""
    out = []
    count = market.participant_count()
    indexed = {p["id"]: p for p in index.participants()}
    for pid in range(count):
        owner, zone, active, *_ = market.market.functions.accountOf(pid).call()
        row = indexed.get(pid)
        if row is None:
            continue  # already reported as a missing participants row
        if (row["owner"].lower(), row["zone"], bool(row["active"])) != (owner.lower(), zone, bool(active)):
            out.append(
                f"accounts: participant {pid} is (owner {row['owner']}, zone {row['zone']}, active {bool(row['active'])}) "
                f"in the index, (owner {owner}, zone {zone}, active {bool(active)}) on chain"
            )
    # The index shows balances after a reversal from its dispute on, the chain only once
    # its last chunk is reversed: while one is open they differ by design.
    reversing = market.reversal().open
    balances = index.balances()
    for pid in () if reversing else sorted(set(range(count)) | set(balances)):
        have = balances.get(pid, 0)
        want = market.balance(pid) if pid < count else None
        if have != want:
            out.append(f"balances: participant {pid} sums to {have} in the index, the chain's balance is {want}")
    last = index.last_interval()
    settled_up_to = market.next_interval() - 1
    if (last if last is not None else -1) > settled_up_to:
        out.append(f"intervals: the index's last interval is {last}, the chain has settled up to {settled_up_to}")
    return out


def _check_inputs(index: Index) -> list[str]:
    out = []
    for row in index.db.execute("SELECT interval, inputs_hash FROM intervals ORDER BY interval").fetchall():
        digest = row["inputs_hash"]
        if not index.inputs_store.has(digest):
            out.append(
                f"inputs: interval {row['interval']}: committed inputs {digest} are not in the inputs store "
                f"{index.inputs_store.root} (the chain holds only their hash): import them with `gridledger inputs "
                "import` from a mirror or a GridLedger server"
            )
            continue
        try:
            index.inputs(digest)
        except InputError as exc:
            out.append(f"inputs: interval {row['interval']}: {exc}")
    return out
