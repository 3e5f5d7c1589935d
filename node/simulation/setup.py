"""Setting up a community's market: deploy, register the homes, fund their wallets."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from node.chain.connection import Chain
from node.data.assets import battery_spec_of
from node.data.community import Community
from node.data.shared_batteries import shared_batteries_of
from node.data.config import CommunityConfig
from node.errors import InputError
from node.index.store import Index
from node.oracle.network import CommunityNetwork
from node.chain.deploy import MarketSetup, Tariffs
from node.chain.market import Deployment, Market
from node.units import UNITS_PER_TOKEN
from node.units import round_price_units
from node.intent.signing import PPM, Mandate, SignedMandate, sign_mandate

log = logging.getLogger("gridledger.deploy")

MANDATE_YEARS = 10
DISPUTE_WINDOW_S = 3_600  # settlements disputable for one to two hours of chain time
NOTICE_S = 86_400  # terms change only for intervals starting a day later
DISPUTE_REWARD = 1_000_000  # one token per successful dispute, from the oracle's bond
BOND_DISPUTES = 10  # the oracle's bond covers this many disputes


def demo_key(seed: int, name: str) -> LocalAccount:
    """A deterministic key for a demo home. Demo keys are derived from public data and
    protect nothing; real participants bring their own keystore."""
    return Account.from_key(keccak(text=f"gridledger-demo/{seed}/{name}"))


def home_accounts(community: Community, config: CommunityConfig) -> list[LocalAccount]:
    """The keys the homes of a replay sign with (their demo keys, which registered them)."""
    return [demo_key(config.community.seed, home.name) for home in community.homes]


def demo_mandates(market: Market, community: Community, config: CommunityConfig, ids: np.ndarray) -> list[SignedMandate]:
    """Standing mandates the demo homes sign at deployment: buy at up to the highest
    import tariff (peak or dynamic included), sell at no less than the lowest export
    tariff, keep any battery within the configured state-of-charge range, for ten years. They let the
    community optimiser trade for every home exactly as it would at the tariffs, and
    nothing beyond that."""
    tariffs, batteries = config.tariffs, config.batteries
    shared = shared_batteries_of(config)
    # A share participant also pays the storage fee on what it takes in; its owner signs for that.
    shares = set() if shared is None else set(shared.share_names())
    storage_fee = 0 if shared is None else round_price_units(shared.storage_fee_per_kwh)
    start = max(int(config.market.start.timestamp()), market.chain.w3.eth.get_block("latest")["timestamp"])
    domain = market.domain()
    signed = []
    for pid, home in zip(ids, community.homes):
        mandate = Mandate(
            participant=int(pid),
            max_buy_price=round_price_units(tariffs.highest_buy_price()) + (storage_fee if home.name in shares else 0),
            min_sell_price=round_price_units(tariffs.lowest_sell_price()),
            min_soc_ppm=int(round((battery_spec_of(home, config) or batteries).min_soc * PPM)),
            max_soc_ppm=PPM,
            valid_until=start + MANDATE_YEARS * 365 * 24 * 3600,
            nonce=1,
        )
        signed.append(sign_mandate(demo_key(config.community.seed, home.name), domain, mandate))
    return signed


def market_setup(community: Community, config: CommunityConfig) -> MarketSetup:
    """What the market fixes at deployment, from the config: its clock (the config's
    epoch and interval length), the tariffs as the first terms version, the capacity.
    The peak hours are local; on chain they are UTC hours, as the config's time zone
    had them on the epoch's day (a change of daylight saving time is a new version,
    scheduled with notice)."""
    minutes = config.market.interval_minutes
    epoch = int(config.market.start.timestamp())
    day = pd.Timestamp(epoch - epoch % 86_400, unit="s", tz="UTC")
    peak = config.tariffs.is_peak([day + pd.Timedelta(hours=h) for h in range(24)])
    tariffs = Tariffs(
        import_price=round_price_units(config.tariffs.buy_per_kwh),
        peak_import_price=round_price_units(config.tariffs.peak_buy_per_kwh),
        export_price=round_price_units(config.tariffs.sell_per_kwh),
        peak_hours=Tariffs.of_peak_hours([h for h in range(24) if peak[h]]),
        pay_as_bid=config.market.pricing == "pay_as_bid",
    )
    import_wh = int(round(config.grid.import_capacity_kwh(minutes) * 1000))
    export_wh = int(round(config.grid.export_capacity_kwh(minutes) * 1000))
    fee, operator = storage_terms_of(community, config)
    return MarketSetup(import_wh, export_wh, epoch, tariffs, interval_s=minutes * 60,
                       first_interval=first_interval_of(community, config), dispute_window=DISPUTE_WINDOW_S,
                       notice_s=NOTICE_S, dispute_reward=DISPUTE_REWARD, storage_fee=fee, storage_operator=operator)


def storage_terms_of(community: Community, config: CommunityConfig) -> tuple[int, int]:
    """(storage fee per kWh in price units, operator's participant id) of the config's
    shared batteries; (0, 0) without. Ids are the rows of `community` plus one."""
    shared = shared_batteries_of(config)
    if shared is None:
        return 0, 0
    names = community.names
    if shared.operator not in names:
        raise InputError(f"the storage operator {shared.operator!r} is not a participant of the community: "
                         "add the shared batteries to it first (node.data.shared_batteries.with_shared_batteries)")
    return round_price_units(shared.storage_fee_per_kwh), names.index(shared.operator) + 1


def deploy_market(chain: Chain, community: Community, config: CommunityConfig) -> Market:
    """Deploys the token and an empty market for `community`'s data, grid and tariffs."""
    setup = market_setup(community, config)
    market = Market.deploy(chain, setup.import_capacity_wh, setup.export_capacity_wh, setup=setup)
    log.info("deployed market %s and token %s on %s", market.deployment.market, market.deployment.token, chain.description)
    return market


def first_interval_of(community: Community, config: CommunityConfig) -> int:
    first_interval = int(config.market.interval_index(community.timestamps[:1])[0])
    if first_interval < 0:
        raise InputError(
            f"the data starts at {community.timestamps[0]}, before the market's epoch market.start = "
            f"{config.market.start}: set market.start in the config to the first timestamp or earlier"
        )
    return first_interval


def set_up_community(
    market: Market,
    community: Community,
    config: CommunityConfig,
    index: Index,
    meters: dict[int, LocalAccount] | None = None,
) -> np.ndarray:
    """Brings the market up to `community`: registers its homes (ids 1..N in data order)
    with their meters' keys (`meters` by id; default derived from the seed), submits
    their standing mandates (community markets: an auction's homes trade by orders),
    funds their wallets and the grid's (which pays for exports), and posts the
    oracle's bond, and indexes all of it.

    Every step first asks the chain what is already done, so after a crash at any
    point running this again finishes the job without doing anything twice. The index
    learns of it all from the chain's logs when the oracle catches up (applying these
    receipts here would move the index past events a crashed run never recorded).
    Returns the homes' participant ids."""
    from node.simulation.meters import meter_keys

    seed = config.community.seed
    owners = [demo_key(seed, home.name).address for home in community.homes]
    ids = np.arange(1, len(owners) + 1, dtype=np.int64)
    meters = meter_keys(None, community, ids, seed) if meters is None else meters
    receipts = []
    registered = _check_registered(market, owners)
    network = CommunityNetwork.of(community, config)
    # On a network every home registers in its zone's index there (its price's index in
    # a zonal settlement); the grid operator sets each grid-connected zone's default
    # capacity, `post_zone_capacities` the intervals' own (the limits file's rows).
    zones = [h.zone for h in community.homes] if network is None else network.chain_zones()
    receipts += _register(market, community, config, owners, [meters[int(pid)].address for pid in ids], registered,
                          zones)
    for zone, (import_wh, export_wh) in ({} if network is None else network.zone_capacities()).items():
        if market.zone_capacity(market.next_interval(), zone) != (import_wh, export_wh):
            receipts.append(market.set_zone_capacity(zone, import_wh, export_wh))
    community_market = config.market.mechanism == "community"
    unsigned = [pid for pid in ids if community_market and market.mandate(int(pid))[5] == 0]
    if unsigned:
        mandates = demo_mandates(market, community, config, ids)
        receipts += market.submit_mandates([mandates[int(pid) - 1] for pid in unsigned])
    deposit = int(round(config.wallets.initial_deposit * UNITS_PER_TOKEN))
    if deposit and market.next_interval() == first_interval_of(community, config):
        # Before the first settlement a zero balance means "not funded yet". A crash
        # between minting and the deposits leaves minted tokens with the admin; they
        # back no wallet, so no invariant notices, and the next run mints afresh.
        unfunded = {int(pid): deposit for pid in ids if market.balance(int(pid)) == 0}
        if market.balance(0) == 0:
            unfunded[0] = deposit * len(ids)  # the grid operator prefunds the grid's wallet
        if unfunded:
            receipts += market.fund_wallets(unfunded)
    bond, reward, _ = market.bond()
    if bond < reward:
        receipts.append(market.deposit_bond(reward * BOND_DISPUTES))
    index.set_meta(
        chain_id=market.chain.chain_id,
        chain=market.chain.description,
        market=market.deployment.market,
        token=market.deployment.token,
        deploy_block=market.deployment.block,
        currency=config.market.currency,
        interval_minutes=config.market.interval_minutes,
        start=config.market.start.isoformat(),
        first_interval=first_interval_of(community, config),
        description=f"{len(community.homes)}-home energy community",
        timezone=config.tariffs.timezone,
    )
    if receipts:
        log.info("%d homes registered with standing mandates and funded wallets (%s %s each)", len(ids),
                 config.wallets.initial_deposit, config.market.currency)
    return ids


def _register(market: Market, community: Community, config: CommunityConfig, owners: list[str], meters: list[str],
              registered: int, zones: list[int]) -> list:
    """Registers the homes from row `registered` on, in order, in `zones` (one per home):
    share participants (the config's shared batteries) as shares of their battery, runs
    of the others in batches."""
    from node.chain.shares import ShareRegistration, register_shares
    from node.data.assets import battery_spec_of
    from node.oracle.inputs_builder import battery_inputs_spec

    shared = shared_batteries_of(config)
    shares = {} if shared is None else shared.share_names()
    receipts: list = []
    row = registered
    homes = community.homes
    while row < len(homes):
        if homes[row].name in shares:
            battery, _, kwh = shares[homes[row].name]
            # The energy and efficiencies the oracle starts from (InputsBuilder.initial_soc).
            spec = battery_inputs_spec(homes[row], config)
            stored = int(round(battery_spec_of(homes[row], config).initial_soc * spec["capacity_wh"]))
            receipts += register_shares(market, [ShareRegistration(
                owners[row], meters[row], zones[row], homes[row].name, battery, int(round(kwh * 1000)), stored,
                spec["charge_efficiency_ppm"], spec["discharge_efficiency_ppm"])])
            row += 1
            continue
        end = row
        while end < len(homes) and homes[end].name not in shares:
            end += 1
        part = homes[row:end]
        receipts += market.register(owners[row:end], zones[row:end], [h.name for h in part], meters[row:end])
        row = end
    return receipts


def _check_registered(market: Market, owners: list[str]) -> int:
    """How many of `owners` are registered already, in order; a different owner in
    their place means this market belongs to another community."""
    registered = market.participant_count() - 1  # the grid is participant 0
    if registered > len(owners):
        raise InputError(
            f"the market has {registered} participants but the data has {len(owners)} homes: "
            "this state directory belongs to another community; use another --state or --fresh"
        )
    for pid in range(1, registered + 1):
        owner = market.market.functions.accountOf(pid).call()[0]
        if owner.lower() != owners[pid - 1].lower():
            raise InputError(
                f"participant {pid} of the market is {owner}, not the data's home {pid}: this state directory "
                "belongs to another community (or the homes changed order); use another --state or --fresh"
            )
    return registered


def deploy_community(chain: Chain, community: Community, config: CommunityConfig, index: Index) -> tuple[Market, np.ndarray]:
    """A new market set up for `community`: deploy_market, then set_up_community."""
    market = deploy_market(chain, community, config)
    return market, set_up_community(market, community, config, index)


def find_community_market(chain: Chain, community: Community, config: CommunityConfig) -> Deployment | None:
    """This community's market on `chain`, found from the chain alone (for a lost
    deployment record): among the markets the admin key deployed (node.chain.discovery),
    the one whose registered participants are this community's homes, in order (or,
    not set up yet, that opens at the data's first interval). None if there is none;
    InputError if there are several, naming them."""
    from node.chain.discovery import markets_deployed_by

    owners = [demo_key(config.community.seed, home.name).address.lower() for home in community.homes]
    first = first_interval_of(community, config)
    ours = []
    for deployment in markets_deployed_by(chain, chain.operators.admin.address):
        market = Market(chain, deployment)
        registered = market.participant_count() - 1
        if registered == 0:
            matches = market.next_interval() == first
        else:
            matches = registered <= len(owners) and all(
                market.market.functions.accountOf(pid).call()[0].lower() == owners[pid - 1]
                for pid in range(1, registered + 1))
        if matches:
            ours.append(deployment)
    if len(ours) > 1:
        raise InputError(
            f"{chain.description} holds {len(ours)} markets of this community ("
            + ", ".join(f"{d.market} from block {d.block}" for d in ours)
            + "): GridLedger cannot tell which one this state directory settled; restore its deployment.json")
    return ours[0] if ours else None


def post_zone_capacities(market: Market, network: "CommunityNetwork | None", intervals: range) -> int:
    """Posts, as the grid operator, the own zone capacity of every interval of
    `intervals` not yet settled whose limits file row differs from the zone's default,
    where the chain does not hold it already (so a rerun after a crash posts only what is
    missing); the contract then checks every interval against its own limit. Capacity is
    a physical limit and needs no notice (TermsModule.setZoneCapacity), but it must be on
    chain before the interval settles: the replay posts a run's intervals before the
    oracle clears the first. Returns how many it posted."""
    if network is None:
        return 0
    first = market.next_interval()
    posted = 0
    for k, zones in network.interval_capacities(range(max(intervals.start, first), intervals.stop)).items():
        for zone, (import_wh, export_wh) in zones.items():
            if market.zone_capacity(k, zone) != (import_wh, export_wh):
                market.set_zone_capacity(zone, import_wh, export_wh, interval=k)
                posted += 1
    if posted:
        log.info("posted %d interval zone capacities from the network's limits file as the grid operator", posted)
    return posted

