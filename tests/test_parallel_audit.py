"""The audit fanned out over workers gives the verdicts the auditor gives alone, tampered
inputs included, on local worker processes and on a Dask cluster."""

from __future__ import annotations

import contextlib
import io
import json
import gzip

import pytest

from node.audit.parallel import reruns_on
from node.audit.verify import IndexInputs, audit
from node.chain.connection import Chain
from node.chain.market import Deployment, Market
from node.cli.main import main
from node.index.store import Index
from node.parallel import workers
from node.simulation.state import StatePaths
from tests.helpers import settle_community, write_config

TINY = """
[market]
interval_minutes = 240
horizon_steps = 6
[community]
homes = 3
days = 1
pv_share = 0.67
battery_share = 0.34
"""


@pytest.fixture(scope="module")
def settled(tmp_path_factory):
    """A tiny community settled on an embedded chain kept in its state directory, with
    one interval's stored inputs tampered with after settling."""
    directory = tmp_path_factory.mktemp("audit")
    state = directory / "state"
    with Chain.embedded(state) as chain:
        result = settle_community(chain, write_config(directory, TINY), StatePaths(state))
        result.index.close()
    index = Index(state / "index.sqlite")
    digest = index.interval(3)["inputs_hash"]
    body = json.loads(index.inputs(digest))
    body["load_wh"][0][0] += 1000  # a kilowatt-hour the meter never read
    forged = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    # Into the inputs store under the committed hash's name (node.clearing.store).
    index.inputs_store.path(digest).write_bytes(gzip.compress(forged))
    index.close()
    return state


def verdicts_of(state, reruns=None):
    with Chain.embedded(state) as chain:
        index = Index(state / "index.sqlite")
        market = Market(chain, Deployment.load(state / "deployment.json"))
        found = audit(market, IndexInputs(index), progress=False, **({} if reruns is None else {"reruns": reruns}))
        index.close()
    return [(v.interval, v.tx_hash, v.ok, v.reasons) for v in found]


@pytest.fixture(scope="module")
def alone(settled):
    return verdicts_of(settled)


def test_the_lone_auditor_catches_the_tampered_inputs(alone):
    failed = [v for v in alone if not v[2]]
    assert [v[0] for v in failed] == [3]
    assert "does not hash to its name" in " ".join(failed[0][3])
    assert len(alone) == 6


def test_local_workers_give_the_same_verdicts_in_chain_order(settled, alone):
    with workers(2) as pool:
        assert verdicts_of(settled, reruns_on(pool, chunk=2, at_least=0)) == alone


def test_a_dask_cluster_gives_the_same_verdicts_through_the_cli(settled, alone, dask_cluster):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["-q", "audit", "--state", str(settled), "--cluster", dask_cluster, "--json", "--no-progress"])
    assert code == 1, "the tampered interval fails"
    found = [(v["interval"], v["tx_hash"], v["ok"], v["reasons"]) for v in json.loads(out.getvalue())]
    assert found == alone


def test_an_unreachable_cluster_is_one_clear_error(settled, capsys):
    code = main(["-q", "audit", "--state", str(settled), "--cluster", "tcp://127.0.0.1:9", "--no-progress"])
    assert code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in capsys.readouterr().err
