"""Setting up a community's market: deploy, register the homes, fund their wallets."""

from __future__ import annotations

import logging

import numpy as np
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from node.chain import Chain
from node.community import Community
from node.config import CommunityConfig
from node.errors import InputError
from node.index import Index
from node.market import Market
from node.settlement import UNITS_PER_TOKEN

log = logging.getLogger("gridledger.deploy")


def demo_key(seed: int, name: str) -> LocalAccount:
    """A deterministic key for a demo home. Demo keys are derived from public data and
    protect nothing; real participants bring their own keystore."""
    return Account.from_key(keccak(text=f"gridledger-demo/{seed}/{name}"))


def deploy_community(chain: Chain, community: Community, config: CommunityConfig, index: Index) -> tuple[Market, np.ndarray]:
    """Deploys a market for `community`, registers its homes (ids 1..N in data order),
    funds every wallet with the configured deposit and indexes all of it.
    Returns the market and the homes' participant ids."""
    minutes = config.market.interval_minutes
    first_interval = int(config.market.interval_index(community.timestamps[:1])[0])
    if first_interval < 0:
        raise InputError(
            f"the data starts at {community.timestamps[0]}, before the market's epoch market.start = "
            f"{config.market.start}: set market.start in the config to the first timestamp or earlier"
        )
    market = Market.deploy(
        chain,
        import_capacity_wh=int(round(config.grid.import_capacity_kwh(minutes) * 1000)),
        export_capacity_wh=int(round(config.grid.export_capacity_kwh(minutes) * 1000)),
        first_interval=first_interval,
    )
    log.info("deployed market %s and token %s on %s", market.deployment.market, market.deployment.token, chain.description)
    seed = config.community.seed
    owners = [demo_key(seed, home.name).address for home in community.homes]
    receipts = [market.creation]
    receipts += market.register(owners, [home.zone for home in community.homes], [home.name for home in community.homes])
    ids = np.arange(1, len(owners) + 1, dtype=np.int64)
    deposit = int(round(config.wallets.initial_deposit * UNITS_PER_TOKEN))
    if deposit:
        receipts += market.fund_wallets({int(pid): deposit for pid in ids})
    index.set_meta(
        chain_id=chain.chain_id,
        chain=chain.description,
        market=market.deployment.market,
        token=market.deployment.token,
        deploy_block=market.deployment.block,
        currency=config.market.currency,
        interval_minutes=minutes,
        start=config.market.start.isoformat(),
        first_interval=first_interval,
        description=f"{len(community.homes)}-home energy community",
        timezone=config.tariffs.timezone,
    )
    for receipt in receipts:
        index.apply(receipt.events, {receipt.tx_hash: receipt.gas_used}, up_to_block=receipt.block)
    log.info("registered %d homes and funded each wallet with %s %s", len(ids), config.wallets.initial_deposit, config.market.currency)
    return market, ids
