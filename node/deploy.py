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
from node.settlement import UNITS_PER_TOKEN, price_units
from node.signing import PPM, Mandate, SignedMandate, sign_mandate

log = logging.getLogger("gridledger.deploy")

MANDATE_YEARS = 10


def demo_key(seed: int, name: str) -> LocalAccount:
    """A deterministic key for a demo home. Demo keys are derived from public data and
    protect nothing; real participants bring their own keystore."""
    return Account.from_key(keccak(text=f"gridledger-demo/{seed}/{name}"))


def demo_mandates(market: Market, community: Community, config: CommunityConfig, ids: np.ndarray) -> list[SignedMandate]:
    """Standing mandates the demo homes sign at deployment: buy at up to the highest
    import tariff (peak included), sell at no less than the export tariff, keep any
    battery within the configured state-of-charge range, for ten years. They let the
    community optimiser trade for every home exactly as it would at the tariffs, and
    nothing beyond that."""
    tariffs, batteries = config.tariffs, config.batteries
    start = max(int(config.market.start.timestamp()), market.chain.w3.eth.get_block("latest")["timestamp"])
    domain = market.domain()
    signed = []
    for pid, home in zip(ids, community.homes):
        mandate = Mandate(
            participant=int(pid),
            max_buy_price=price_units(max(tariffs.buy_per_kwh, tariffs.peak_buy_per_kwh)),
            min_sell_price=price_units(tariffs.sell_per_kwh),
            min_soc_ppm=int(round(batteries.min_soc * PPM)),
            max_soc_ppm=PPM,
            valid_until=start + MANDATE_YEARS * 365 * 24 * 3600,
            nonce=1,
        )
        signed.append(sign_mandate(demo_key(config.community.seed, home.name), domain, mandate))
    return signed


def deploy_community(chain: Chain, community: Community, config: CommunityConfig, index: Index) -> tuple[Market, np.ndarray]:
    """Deploys a market for `community`, registers its homes (ids 1..N in data order),
    submits their standing mandates, funds every wallet with the configured deposit
    and indexes all of it.
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
    receipts += market.submit_mandates(demo_mandates(market, community, config, ids))
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
    log.info("registered %d homes with standing mandates and funded each wallet with %s %s", len(ids), config.wallets.initial_deposit, config.market.currency)
    return market, ids
