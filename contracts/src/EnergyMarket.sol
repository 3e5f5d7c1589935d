// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {PackedOrder} from "./PackedOrder.sol";
import {SettlementEntry} from "./SettlementEntry.sol";
import {ParticipantRegistry} from "./ParticipantRegistry.sol";
import {Wallets} from "./Wallets.sol";

/// @title EnergyMarket
/// @notice Accepts one settlement per market interval from the oracle, in order and
/// never twice, checks that it conserves energy and money, respects the grid capacity
/// and prices every participant's energy at the settlement's prices, then moves the
/// wallet balances. Its events are the audit log of the market.
///
/// The oracle is not trusted with participants' money: every participant in a
/// settlement must have authorised what it pays or receives, either by an EIP-712
/// order signed for that interval (carried in the settlement's calldata) or by a
/// standing signed mandate stored here. Limits are checked on the participant's net
/// energy and wallet change; what the contract cannot see (battery state-of-charge
/// bounds) is in the MandateSet event for auditors to check against the inputs.
contract EnergyMarket is Wallets, EIP712 {
    /// @notice The per-interval part of a settlement. Prices are minor units per kWh.
    /// With `payAsBid`, the P2P energy of an entry authorised by an order is priced at
    /// that order's effective limit: a buyer pays min(limitPrice, buyPrice), a seller
    /// receives max(limitPrice, sellPrice), as the grid is always the outside option.
    /// `p2pPrice` then prices only mandate-authorised entries; it must still lie between
    /// the tariffs and is otherwise informational (e.g. the volume-weighted average paid).
    /// Either way the grid's wallet takes the other side of every payment, so under
    /// pay-as-bid the spread between what buyers pay and sellers receive lands there:
    /// its owner, the grid operator, runs the market.
    struct Settlement {
        uint64 interval;
        bytes32 inputsHash; // keccak256 of the canonical clearing inputs
        uint64 buyPrice; // grid import tariff
        uint64 sellPrice; // grid export tariff
        uint64 p2pPrice; // price of energy traded between participants
        uint64 gridImportWh; // energy the community imported this interval
        uint64 gridExportWh; // energy the community exported this interval
        int128 gridAmount; // change of the grid's wallet (participant 0)
        bool payAsBid; // order entries' P2P energy at their own limits, not p2pPrice
    }

    /// @notice A participant's standing permission (EIP-712 `Mandate`, see node/signing.py).
    /// Prices are minor units per kWh; state of charge in parts per million of capacity.
    struct Mandate {
        uint32 participant;
        uint64 maxBuyPrice;
        uint64 minSellPrice;
        uint32 minSocPpm;
        uint32 maxSocPpm;
        uint64 validUntil;
        uint64 nonce;
    }

    /// @notice A signed order riding in a settlement: the PackedOrder word and an
    /// EIP-2098 compact signature. It belongs to the next entry flagged as authorised by
    /// an order (SettlementEntry.byOrder); that entry's participant and the settlement's
    /// interval complete the signed message.
    struct OrderAuth {
        uint256 packed;
        bytes32 r;
        bytes32 vs;
    }

    /// @dev What a settlement checks of a mandate, in one storage slot (4 x 64 bits) so
    /// that a mandate-authorised entry costs one extra cold read. validUntil = 0 means
    /// revoked (or never set, when nonce = 0).
    struct MandateLimits {
        uint64 maxBuyPrice;
        uint64 minSellPrice;
        uint64 validUntil;
        uint64 nonce;
    }

    /// @dev Capacity in Wh per interval; `set` tells an override from "use the default".
    struct Capacity {
        uint64 importWh;
        uint64 exportWh;
        bool set;
    }

    /// @notice The only interval the next settlement may be for.
    uint64 public nextInterval;
    /// @notice Capacity that applies to intervals without an override.
    Capacity public defaultCapacity;
    mapping(uint64 interval => Capacity) private _capacityOverride;
    mapping(uint32 participant => MandateLimits) private _mandates;

    /// @notice Where a chunked settlement stands: no interval pending, its chunks being
    /// verified (no money moved yet), or its verified chunks being applied.
    enum Phase {
        None,
        Verifying,
        Applying
    }

    /// @dev The interval being settled in chunks; at most one, always `nextInterval`.
    struct Pending {
        uint64 interval;
        Phase phase;
        uint32 verifiedChunks;
        uint32 appliedChunks;
        uint32 lastParticipant; // of the last verified chunk
        uint32 participants; // entries verified so far
        bytes32 headerHash; // keccak256(abi.encode(Settlement)) every chunk must match
        Totals totals; // running sums over the verified entries
    }

    Pending private _pending;
    /// @dev The pending interval's header, for the grid's amount and IntervalSettled at close.
    Settlement private _pendingHeader;
    /// @dev keccak256 of each verified chunk's packed entry words, by chunk index.
    mapping(uint256 chunk => bytes32) private _chunkHash;

    bytes32 private constant MANDATE_TYPEHASH = keccak256(
        "Mandate(uint32 participant,uint64 maxBuyPrice,uint64 minSellPrice,uint32 minSocPpm,uint32 maxSocPpm,uint64 validUntil,uint64 nonce)"
    );
    bytes32 private constant REVOCATION_TYPEHASH = keccak256("Revocation(uint32 participant,uint64 nonce)");
    uint32 private constant PPM = 1_000_000;

    /// @notice An interval was settled; one ParticipantSettled follows for each participant.
    event IntervalSettled(
        uint64 indexed interval,
        bytes32 inputsHash,
        uint256 buyPrice,
        uint256 sellPrice,
        uint256 p2pPrice,
        uint256 gridImportWh,
        uint256 gridExportWh,
        int256 gridAmount,
        uint256 participants,
        bool payAsBid
    );
    /// @notice One participant's energy and wallet change in a settled interval.
    event ParticipantSettled(
        uint64 indexed interval, uint32 indexed participant, int256 gridWh, int256 p2pWh, int256 amount
    );
    /// @notice Chunk `chunk` of the pending `interval` passed every per-entry check (no
    /// money moved); `last` marks the chunk after which the interval's totals were checked.
    event ChunkVerified(
        uint64 indexed interval, uint256 chunk, uint256 entries, uint32 lastParticipant, bytes32 entriesHash, bool last
    );
    /// @notice Verified chunk `chunk` of `interval` moved its `entries` wallets (one
    /// ParticipantSettled each, before this event). IntervalSettled follows the last one.
    event ChunkApplied(uint64 indexed interval, uint256 chunk, uint256 entries);
    /// @notice The oracle discarded pending `interval` before any chunk was applied.
    event PendingAbandoned(uint64 indexed interval, bytes32 headerHash, uint256 verifiedChunks);
    /// @notice The grid operator set the capacity of one interval.
    event CapacitySet(uint64 indexed interval, uint64 importWh, uint64 exportWh);
    /// @notice The grid operator set the default capacity.
    event DefaultCapacitySet(uint64 importWh, uint64 exportWh);
    /// @notice `participant`'s signed mandate is now the one in force. The SoC bounds
    /// are not enforced here; auditors check them against each interval's inputs.
    event MandateSet(
        uint32 indexed participant,
        uint64 nonce,
        uint64 maxBuyPrice,
        uint64 minSellPrice,
        uint32 minSocPpm,
        uint32 maxSocPpm,
        uint64 validUntil
    );
    /// @notice `participant`'s mandate `nonce` was revoked and authorises nothing more.
    event MandateRevoked(uint32 indexed participant, uint64 nonce);

    error IntervalOutOfOrder(uint64 expected, uint64 got);
    error EmptySettlement(uint64 interval);
    error ParticipantsNotAscending(uint32 previous, uint32 participant);
    error PriceOutOfRange(uint256 p2pPrice, uint256 sellPrice, uint256 buyPrice);
    error PaymentMismatch(uint32 participant, int256 amount, int256 expectedMilliUnits);
    error P2PEnergyNotConserved(uint64 interval, int256 imbalanceWh);
    error GridEnergyMismatch(uint64 interval, uint256 importWh, uint256 exportWh, uint256 declaredImportWh, uint256 declaredExportWh);
    error MoneyNotConserved(uint64 interval, int256 participantsTotal, int256 gridAmount);
    error NegativeSpread(uint64 interval, int256 spreadMilliUnits);
    error ImportCapacityExceeded(uint64 interval, uint256 importWh, uint256 capacityWh);
    error ExportCapacityExceeded(uint64 interval, uint256 exportWh, uint256 capacityWh);
    error CapacityForPastInterval(uint64 interval, uint64 nextInterval);
    error LengthMismatch(uint256 mandates, uint256 signatures);
    error BadMandateSignature(uint32 participant, address signer);
    error StaleMandateNonce(uint32 participant, uint64 currentNonce, uint64 nonce);
    error InvalidSocBounds(uint32 participant, uint32 minSocPpm, uint32 maxSocPpm);
    error NotParticipantOwner(uint32 participant, address caller);
    error NoMandate(uint32 participant);
    error RevokedMandate(uint32 participant, uint64 nonce);
    error MandateExpired(uint32 participant, uint64 validUntil, uint256 timestamp);
    error MandatePriceExceeded(uint32 participant, int256 costMilli, int256 limitMilli);
    error MandatePriceBelowMinimum(uint32 participant, int256 revenueMilli, int256 limitMilli);
    error BadOrderSignature(uint32 participant, address signer);
    error OrderExpired(uint32 participant, uint64 expiry, uint256 timestamp);
    error OrderSideMismatch(uint32 participant, uint8 side, int256 netWh);
    error OrderQuantityExceeded(uint32 participant, uint256 energyWh, uint64 signedWh);
    error OrderPriceExceeded(uint32 participant, int256 costMilli, int256 limitMilli);
    error OrderPriceBelowLimit(uint32 participant, int256 revenueMilli, int256 limitMilli);
    error MissingOrder(uint32 participant);
    error UnusedOrders(uint256 count);
    error PendingIntervalOpen(uint64 interval, Phase phase);
    error HeaderMismatch(uint64 interval, bytes32 expected, bytes32 got);
    error VerificationClosed(uint64 interval, uint32 verifiedChunks);
    error NotVerified(uint64 interval, Phase phase);
    error ChunkOutOfOrder(uint64 interval, uint256 expected, uint256 got);
    error ChunkHashMismatch(uint64 interval, uint256 chunk, bytes32 verified, bytes32 got);
    error NoPendingInterval();
    error PendingPartlyApplied(uint64 interval, uint32 appliedChunks, uint32 totalChunks);

    /// @dev A settlement's prices, copied out of its calldata header once per transaction
    /// rather than read (and range-checked) again for every entry.
    struct Prices {
        uint256 buy;
        uint256 sell;
        uint256 p2p;
        bool payAsBid;
    }

    /// @dev Running sums over a settlement's entries.
    struct Totals {
        int256 p2pWh;
        uint256 importWh;
        uint256 exportWh;
        int256 amount;
        int256 gridExpectedMilli;
    }

    /// @param admin Registers participants and grants roles.
    /// @param oracle Submits settlements.
    /// @param gridOperator Sets capacities and owns the grid's wallet (participant 0).
    /// @param token_ Settlement token backing the wallets.
    /// @param importCapacityWh Default community import limit per interval.
    /// @param exportCapacityWh Default community export limit per interval.
    /// @param firstInterval The interval the market's first settlement is for.
    constructor(
        address admin,
        address oracle,
        address gridOperator,
        IERC20 token_,
        uint64 importCapacityWh,
        uint64 exportCapacityWh,
        uint64 firstInterval
    ) Wallets(token_) ParticipantRegistry(admin, gridOperator) EIP712("GridLedger", "1") {
        _grantRole(ORACLE_ROLE, oracle);
        nextInterval = firstInterval;
        defaultCapacity = Capacity(importCapacityWh, exportCapacityWh, true);
        emit DefaultCapacitySet(importCapacityWh, exportCapacityWh);
    }

    /// @notice Sets the capacity used for intervals without their own.
    function setDefaultCapacity(uint64 importWh, uint64 exportWh) external onlyRole(GRID_OPERATOR_ROLE) {
        defaultCapacity = Capacity(importWh, exportWh, true);
        emit DefaultCapacitySet(importWh, exportWh);
    }

    /// @notice Sets the capacity of one interval that is not yet settled.
    function setCapacity(uint64 interval, uint64 importWh, uint64 exportWh) external onlyRole(GRID_OPERATOR_ROLE) {
        if (interval < nextInterval) revert CapacityForPastInterval(interval, nextInterval);
        _capacityOverride[interval] = Capacity(importWh, exportWh, true);
        emit CapacitySet(interval, importWh, exportWh);
    }

    /// @notice The import and export limits (Wh) in force for `interval`.
    function capacityOf(uint64 interval) public view returns (uint64 importWh, uint64 exportWh) {
        Capacity memory capacity = _capacityOverride[interval];
        if (!capacity.set) capacity = defaultCapacity;
        return (capacity.importWh, capacity.exportWh);
    }

    // -- mandates ---------------------------------------------------------------------

    /// @notice Stores a mandate signed by the participant's owner; anyone may relay it.
    /// It replaces the participant's current mandate, so its nonce must be higher: an
    /// old or revoked mandate can never be put back in force.
    function submitMandate(Mandate calldata m, bytes calldata signature) external {
        _setMandate(m, signature);
    }

    /// @notice `submitMandate` for many mandates in one transaction.
    function submitMandates(Mandate[] calldata mandates, bytes[] calldata signatures) external {
        if (mandates.length != signatures.length) revert LengthMismatch(mandates.length, signatures.length);
        for (uint256 i = 0; i < mandates.length; ++i) {
            _setMandate(mandates[i], signatures[i]);
        }
    }

    /// @notice Revokes `participant`'s mandate `nonce` (the one in force) with the
    /// owner's signed EIP-712 `Revocation`; anyone may relay it.
    function revokeMandate(uint32 participant, uint64 nonce, bytes calldata signature) external {
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(REVOCATION_TYPEHASH, participant, nonce)));
        address owner = _existing(participant).owner;
        // A bad signature recovers address(0), which is never an owner (register refuses it).
        // slither-disable-next-line unused-return
        (address signer,,) = ECDSA.tryRecover(digest, signature);
        if (signer != owner) revert BadMandateSignature(participant, signer);
        _revoke(participant, nonce);
    }

    /// @notice Revokes the caller's own mandate in force.
    function revokeMandate(uint32 participant) external {
        if (_existing(participant).owner != msg.sender) revert NotParticipantOwner(participant, msg.sender);
        _revoke(participant, _mandates[participant].nonce);
    }

    /// @notice The limits of `participant`'s mandate in force (validUntil 0: none).
    function mandateOf(uint32 participant)
        external
        view
        returns (uint64 maxBuyPrice, uint64 minSellPrice, uint64 validUntil, uint64 nonce)
    {
        MandateLimits memory m = _mandates[participant];
        return (m.maxBuyPrice, m.minSellPrice, m.validUntil, m.nonce);
    }

    function _setMandate(Mandate calldata m, bytes calldata signature) private {
        address owner = _existing(m.participant).owner;
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(MANDATE_TYPEHASH, m)));
        // A bad signature recovers address(0), which is never an owner (register refuses it).
        // slither-disable-next-line unused-return
        (address signer,,) = ECDSA.tryRecover(digest, signature);
        if (signer != owner) revert BadMandateSignature(m.participant, signer);
        uint64 current = _mandates[m.participant].nonce;
        if (m.nonce <= current) revert StaleMandateNonce(m.participant, current, m.nonce);
        if (m.minSocPpm > m.maxSocPpm || m.maxSocPpm > PPM) {
            revert InvalidSocBounds(m.participant, m.minSocPpm, m.maxSocPpm);
        }
        _mandates[m.participant] = MandateLimits(m.maxBuyPrice, m.minSellPrice, m.validUntil, m.nonce);
        emit MandateSet(
            m.participant, m.nonce, m.maxBuyPrice, m.minSellPrice, m.minSocPpm, m.maxSocPpm, m.validUntil
        );
    }

    function _revoke(uint32 participant, uint64 nonce) private {
        MandateLimits storage m = _mandates[participant];
        if (m.nonce == 0) revert NoMandate(participant);
        // Only the mandate in force can be revoked: a revocation of an older nonce must
        // not silently cancel a newer mandate the owner signed since.
        if (nonce != m.nonce) revert StaleMandateNonce(participant, m.nonce, nonce);
        m.validUntil = 0;
        emit MandateRevoked(participant, nonce);
    }

    // -- settlement --------------------------------------------------------------------

    /// @notice Settles interval `s.interval`: checks every entry, its authorisation and
    /// the totals, then moves the wallets. `entries` are SettlementEntry words in
    /// ascending participant order, the grid (participant 0) excluded: its side is
    /// `s.gridAmount`. An entry flagged as authorised by an order takes the next of
    /// `orders` (signed for this interval, in entry order); any other entry is
    /// authorised by the participant's mandate. Every order must be used. An interval
    /// in which nobody traded settles with no entries (and no grid flow or amount), so
    /// that the market still moves on to the next one. With `s.payAsBid`, each
    /// order-authorised entry's P2P energy is priced at its order's limit (see Settlement).
    function settle(Settlement calldata s, uint256[] calldata entries, OrderAuth[] calldata orders)
        external
        onlyRole(ORACLE_ROLE)
    {
        if (_pending.phase != Phase.None) revert PendingIntervalOpen(_pending.interval, _pending.phase);
        if (s.interval != nextInterval) revert IntervalOutOfOrder(nextInterval, s.interval);
        if (s.p2pPrice < s.sellPrice || s.p2pPrice > s.buyPrice) {
            revert PriceOutOfRange(s.p2pPrice, s.sellPrice, s.buyPrice);
        }
        nextInterval = s.interval + 1;
        _emitIntervalSettled(
            s.interval,
            s.inputsHash,
            s.buyPrice,
            s.sellPrice,
            s.p2pPrice,
            s.gridImportWh,
            s.gridExportWh,
            s.gridAmount,
            entries.length,
            s.payAsBid
        );

        // Memory structs start zeroed: the running sums begin at 0 on purpose.
        // slither-disable-next-line uninitialized-local
        Totals memory totals;
        // slither-disable-next-line unused-return
        _checkEntries(s, totals, entries, orders, GRID, true);
        _checkTotals(s, totals);
        _update(GRID, s.gridAmount);
    }

    /// @dev Checks `entries` (ascending after `previous`) against their authorisations
    /// and the prices, adding them to `totals`; with `move`, also moves each wallet and
    /// emits its ParticipantSettled. Every order must be used. Returns the last participant.
    /// An entry's authorisation is checked before its payment because under pay-as-bid
    /// its order sets the price its payment is checked against.
    function _checkEntries(
        Settlement calldata s,
        Totals memory totals,
        uint256[] calldata entries,
        OrderAuth[] calldata orders,
        uint32 previous,
        bool move
    ) internal returns (uint32) {
        bytes32 domainSeparator = orders.length == 0 ? bytes32(0) : _domainSeparatorV4();
        Prices memory prices = Prices(s.buyPrice, s.sellPrice, s.p2pPrice, s.payAsBid);
        uint256 nextOrder = 0;
        uint256 count = entries.length;
        for (uint256 i = 0; i < count;) {
            uint256 word = entries[i];
            (uint32 id, int256 gridWh, int256 p2pWh, int256 amount) = SettlementEntry.decode(word);
            if (id <= previous) revert ParticipantsNotAscending(previous, id);
            previous = id;
            if (move) {
                _update(id, amount);
                emit ParticipantSettled(s.interval, id, gridWh, p2pWh, amount);
            }
            address owner = _activeOwner(id);
            // int48 + int48 cannot overflow.
            int256 netWh;
            unchecked {
                netWh = gridWh + p2pWh;
            }
            uint256 p2pPrice = prices.p2p;
            if (SettlementEntry.byOrder(word)) {
                if (nextOrder == orders.length) revert MissingOrder(id);
                p2pPrice =
                    _checkOrder(domainSeparator, s.interval, id, owner, orders[nextOrder], netWh, amount, prices);
                unchecked {
                    ++nextOrder;
                }
            } else {
                _checkMandate(id, netWh, amount);
            }
            _checkPayment(totals, prices, id, gridWh, p2pWh, amount, p2pPrice);
            unchecked {
                ++i;
            }
        }
        if (nextOrder != orders.length) revert UnusedOrders(orders.length - nextOrder);
        return previous;
    }

    /// @dev The owner of participant `id`, who must be registered and active; its
    /// signature or mandate authorises the entry.
    function _activeOwner(uint32 id) internal view returns (address) {
        Account storage account = _accounts[id];
        if (!account.active) {
            if (account.owner == address(0)) revert UnknownParticipant(id);
            revert InactiveParticipant(id);
        }
        return account.owner;
    }

    /// @dev Checks one participant's wallet change against its grid energy at the tariff
    /// of its direction and its P2P energy at `p2pPrice` (the settlement's, or under
    /// pay-as-bid its order's), to within one unit, and adds the entry to `totals`.
    function _checkPayment(
        Totals memory totals,
        Prices memory prices,
        uint32 id,
        int256 gridWh,
        int256 p2pWh,
        int256 amount,
        uint256 p2pPrice
    ) internal pure {
        // Entries are int48 energies and int128 amounts and prices are uint64, so no
        // product or running sum below can overflow int256 (checked math costs ~1k gas
        // per participant here).
        unchecked {
            // Grid energy is paid at the tariff of its direction, P2P energy at the entry's price.
            int256 gridMilli = gridWh * int256(gridWh > 0 ? prices.buy : prices.sell);
            int256 expectedMilli = -gridMilli - p2pWh * int256(p2pPrice);
            int256 error_ = amount * 1000 - expectedMilli;
            if (error_ <= -1000 || error_ >= 1000) revert PaymentMismatch(id, amount, expectedMilli);

            totals.p2pWh += p2pWh;
            if (gridWh > 0) totals.importWh += uint256(gridWh);
            else totals.exportWh += uint256(-gridWh);
            totals.amount += amount;
            // The grid takes the other side of every payment: the tariffs of the grid
            // energy and, under pay-as-bid, the spread of the P2P trades (zero at one price).
            totals.gridExpectedMilli -= expectedMilli;
        }
    }

    // -- chunked settlement -------------------------------------------------------------
    //
    // An interval too big for one transaction settles in two phases. Verify chunks run
    // every check `settle` runs on their entries and keep the running totals and a hash
    // of each chunk's entries here, moving no money; the last one checks the interval's
    // totals. Apply chunks then move the wallets of exactly the verified chunks, in
    // order, once each; nothing in them can fail but the hash and the sequence, so a
    // verified interval always completes. The interval is settled (nextInterval moves
    // on, IntervalSettled) only when the last apply chunk closes it.

    /// @notice Verifies the next chunk of interval `s.interval` (which must be
    /// `nextInterval`) without moving money. The first chunk opens the pending interval;
    /// every later one must carry the identical header `s`. `entries` (SettlementEntry
    /// words, as for `settle`) continue in ascending participant order after the previous
    /// chunk's; `orders` are the orders of this chunk's order-flagged entries, all used.
    /// With `last`, the interval's totals are checked as `settle` checks them (energy and
    /// money conservation, declared grid flows, capacity); if they fail the chunk reverts
    /// and the pending interval stays open for `abandonPending`.
    function verifyChunk(Settlement calldata s, uint256[] calldata entries, OrderAuth[] calldata orders, bool last)
        external
        onlyRole(ORACLE_ROLE)
    {
        if (s.interval != nextInterval) revert IntervalOutOfOrder(nextInterval, s.interval);
        if (entries.length == 0) revert EmptySettlement(s.interval);
        Pending storage p = _pending;
        bytes32 headerHash = keccak256(abi.encode(s));
        if (p.phase == Phase.None) {
            if (s.p2pPrice < s.sellPrice || s.p2pPrice > s.buyPrice) {
                revert PriceOutOfRange(s.p2pPrice, s.sellPrice, s.buyPrice);
            }
            p.interval = s.interval;
            p.phase = Phase.Verifying;
            p.headerHash = headerHash;
            _pendingHeader = s;
        } else if (p.phase != Phase.Verifying) {
            revert VerificationClosed(s.interval, p.verifiedChunks);
        } else if (p.headerHash != headerHash) {
            revert HeaderMismatch(s.interval, p.headerHash, headerHash);
        }
        Totals memory totals = p.totals;
        uint32 lastParticipant = _checkEntries(s, totals, entries, orders, p.lastParticipant, false);
        if (last) {
            _checkTotals(s, totals);
            p.phase = Phase.Applying;
        }
        p.totals = totals;
        uint32 chunk = p.verifiedChunks;
        bytes32 entriesHash = _hashEntries(entries);
        _chunkHash[chunk] = entriesHash;
        p.verifiedChunks = chunk + 1;
        p.lastParticipant = lastParticipant;
        // Entries are bounded by the gas of a transaction, far below 2^32 per interval.
        p.participants += uint32(entries.length);
        emit ChunkVerified(s.interval, chunk, entries.length, lastParticipant, entriesHash, last);
    }

    /// @notice Applies verified chunk `chunkIndex` of the pending `interval`: moves each
    /// entry's wallet and emits its ParticipantSettled. Chunks apply in order, once each,
    /// and only with exactly the entries that were verified (same hash). The last chunk
    /// pays the grid's amount, advances `nextInterval` and emits IntervalSettled.
    function applyChunk(uint64 interval, uint256 chunkIndex, uint256[] calldata entries)
        external
        onlyRole(ORACLE_ROLE)
    {
        Pending storage p = _pending;
        if (p.phase != Phase.Applying || p.interval != interval) revert NotVerified(interval, p.phase);
        uint32 applied = p.appliedChunks;
        if (chunkIndex != applied) revert ChunkOutOfOrder(interval, applied, chunkIndex);
        bytes32 entriesHash = _hashEntries(entries);
        bytes32 verified = _chunkHash[chunkIndex];
        if (entriesHash != verified) revert ChunkHashMismatch(interval, chunkIndex, verified, entriesHash);
        delete _chunkHash[chunkIndex];
        uint256 count = entries.length;
        for (uint256 i = 0; i < count;) {
            (uint32 id, int256 gridWh, int256 p2pWh, int256 amount) = SettlementEntry.decode(entries[i]);
            _update(id, amount);
            emit ParticipantSettled(interval, id, gridWh, p2pWh, amount);
            unchecked {
                ++i;
            }
        }
        emit ChunkApplied(interval, chunkIndex, count);
        if (applied + 1 < p.verifiedChunks) {
            p.appliedChunks = applied + 1;
            return;
        }
        Settlement memory s = _pendingHeader;
        uint256 participants = p.participants;
        delete _pending;
        delete _pendingHeader;
        nextInterval = s.interval + 1;
        _update(GRID, s.gridAmount);
        _emitIntervalSettled(
            s.interval,
            s.inputsHash,
            s.buyPrice,
            s.sellPrice,
            s.p2pPrice,
            s.gridImportWh,
            s.gridExportWh,
            s.gridAmount,
            participants,
            s.payAsBid
        );
    }

    /// @notice Discards the pending interval, e.g. one whose last chunk failed the
    /// totals. Allowed only before any chunk was applied, so no money has moved; the
    /// interval can then be settled again from its first chunk.
    function abandonPending() external onlyRole(ORACLE_ROLE) {
        Pending storage p = _pending;
        if (p.phase == Phase.None) revert NoPendingInterval();
        if (p.appliedChunks != 0) revert PendingPartlyApplied(p.interval, p.appliedChunks, p.verifiedChunks);
        emit PendingAbandoned(p.interval, p.headerHash, p.verifiedChunks);
        delete _pending;
        delete _pendingHeader;
    }

    /// @notice Where the pending chunked settlement stands, for an oracle resuming after
    /// a crash: its interval and phase, chunks verified and applied, the chunk count once
    /// verification completed (0 before), the last verified participant and the header
    /// hash every chunk must match. Phase None: no interval pending.
    function pending()
        external
        view
        returns (
            uint64 interval,
            Phase phase,
            uint32 verifiedChunks,
            uint32 appliedChunks,
            uint32 totalChunks,
            uint32 lastParticipant,
            bytes32 headerHash
        )
    {
        Pending storage p = _pending;
        totalChunks = p.phase == Phase.Applying ? p.verifiedChunks : 0;
        return (p.interval, p.phase, p.verifiedChunks, p.appliedChunks, totalChunks, p.lastParticipant, p.headerHash);
    }

    /// @notice The hash of verified chunk `chunk` of the pending interval not yet applied
    /// (keccak256 of its packed entry words); zero otherwise.
    function chunkHash(uint256 chunk) external view returns (bytes32) {
        return chunk < _pending.verifiedChunks ? _chunkHash[chunk] : bytes32(0);
    }

    /// @dev keccak256 of the entry words back to back, hashed in scratch memory above the
    /// free memory pointer without moving it (as PackedOrder.digest).
    function _hashEntries(uint256[] calldata entries) private pure returns (bytes32 result) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            let size := mul(entries.length, 0x20)
            calldatacopy(ptr, entries.offset, size)
            result := keccak256(ptr, size)
        }
    }

    /// @dev The participant's mandate in force allows paying `-amount` for `netWh` into
    /// (or being paid `amount` for `-netWh` out of) its home. Amounts are rounded to
    /// whole units, so limits are compared in thousandths with 999 of slack.
    function _checkMandate(uint32 id, int256 netWh, int256 amount) private view {
        // A storage pointer, not a memory copy: copying allocates memory per entry.
        MandateLimits storage m = _mandates[id];
        if (block.timestamp > m.validUntil) {
            if (m.nonce == 0) revert NoMandate(id);
            if (m.validUntil == 0) revert RevokedMandate(id, m.nonce);
            revert MandateExpired(id, m.validUntil, block.timestamp);
        }
        // |netWh| < 2^49, prices < 2^64, |amount| < 2^128: no product overflows int256.
        unchecked {
            if (netWh >= 0) {
                int256 limitMilli = netWh * int256(uint256(m.maxBuyPrice));
                if (-amount * 1000 > limitMilli + 999) revert MandatePriceExceeded(id, -amount * 1000, limitMilli);
            } else {
                int256 limitMilli = -netWh * int256(uint256(m.minSellPrice));
                if (amount * 1000 < limitMilli - 999) revert MandatePriceBelowMinimum(id, amount * 1000, limitMilli);
            }
        }
    }

    /// @dev The order was signed by the participant's owner for this interval, is not
    /// expired, and the entry stays on its side, within its energy and its limit price.
    /// Returns the price of the entry's P2P energy: under pay-as-bid the order's limit
    /// clipped to the tariff of its side (a buyer never pays more than the grid's import
    /// tariff, a seller never gets less than its export tariff), else `prices.p2p`.
    function _checkOrder(
        bytes32 domainSeparator,
        uint64 interval,
        uint32 id,
        address owner,
        OrderAuth calldata order,
        int256 netWh,
        int256 amount,
        Prices memory prices
    ) private view returns (uint256 price) {
        uint256 word = order.packed;
        address signer = PackedOrder.recover(PackedOrder.digest(domainSeparator, id, interval, word), order.r, order.vs);
        if (signer != owner) revert BadOrderSignature(id, signer);
        // The nonce only makes each signed order distinct; an order cannot be replayed
        // because it is signed for one interval, which is settled once.
        // slither-disable-next-line unused-return
        (uint8 side, uint64 energyWh, uint64 limitPrice, uint64 expiry,) = PackedOrder.decode(word);
        if (block.timestamp > expiry) revert OrderExpired(id, expiry, block.timestamp);
        price = prices.p2p;
        // Same bounds as in _checkMandate.
        unchecked {
            if (side == PackedOrder.BUY && netWh >= 0) {
                if (prices.payAsBid) price = limitPrice < prices.buy ? limitPrice : prices.buy;
                if (uint256(netWh) > energyWh) revert OrderQuantityExceeded(id, uint256(netWh), energyWh);
                int256 limitMilli = netWh * int256(uint256(limitPrice));
                if (-amount * 1000 > limitMilli + 999) revert OrderPriceExceeded(id, -amount * 1000, limitMilli);
            } else if (side == PackedOrder.SELL && netWh <= 0) {
                if (prices.payAsBid) price = limitPrice > prices.sell ? limitPrice : prices.sell;
                if (uint256(-netWh) > energyWh) revert OrderQuantityExceeded(id, uint256(-netWh), energyWh);
                int256 limitMilli = -netWh * int256(uint256(limitPrice));
                if (amount * 1000 < limitMilli - 999) revert OrderPriceBelowLimit(id, amount * 1000, limitMilli);
            } else {
                revert OrderSideMismatch(id, side, netWh);
            }
        }
    }

    /// @dev The one IntervalSettled of `settle` and of a chunked interval's last apply chunk.
    function _emitIntervalSettled(
        uint64 interval,
        bytes32 inputsHash,
        uint64 buyPrice,
        uint64 sellPrice,
        uint64 p2pPrice,
        uint64 gridImportWh,
        uint64 gridExportWh,
        int128 gridAmount,
        uint256 participants,
        bool payAsBid
    ) private {
        emit IntervalSettled(
            interval,
            inputsHash,
            buyPrice,
            sellPrice,
            p2pPrice,
            gridImportWh,
            gridExportWh,
            gridAmount,
            participants,
            payAsBid
        );
    }

    /// @dev Conservation of energy and money over the whole interval, and capacity.
    function _checkTotals(Settlement calldata s, Totals memory totals) internal view {
        if (totals.p2pWh != 0) revert P2PEnergyNotConserved(s.interval, totals.p2pWh);
        if (totals.importWh != s.gridImportWh || totals.exportWh != s.gridExportWh) {
            revert GridEnergyMismatch(s.interval, totals.importWh, totals.exportWh, s.gridImportWh, s.gridExportWh);
        }
        if (totals.amount + s.gridAmount != 0) revert MoneyNotConserved(s.interval, totals.amount, s.gridAmount);
        int256 gridError = int256(s.gridAmount) * 1000 - totals.gridExpectedMilli;
        if (gridError <= -1000 || gridError >= 1000) {
            revert PaymentMismatch(GRID, s.gridAmount, totals.gridExpectedMilli);
        }
        // What the grid is owed beyond the tariffs of its energy is what P2P buyers paid
        // minus what P2P sellers got: zero at one price, the spread under pay-as-bid. A
        // negative spread is a bid matched below an ask, paid out of the grid's wallet.
        // Sums of int48 x uint64 products: no overflow.
        unchecked {
            int256 spreadMilli = totals.gridExpectedMilli - int256(totals.importWh) * int256(uint256(s.buyPrice))
                + int256(totals.exportWh) * int256(uint256(s.sellPrice));
            if (spreadMilli < 0) revert NegativeSpread(s.interval, spreadMilli);
        }
        (uint64 importCap, uint64 exportCap) = capacityOf(s.interval);
        if (s.gridImportWh > importCap) revert ImportCapacityExceeded(s.interval, s.gridImportWh, importCap);
        if (s.gridExportWh > exportCap) revert ExportCapacityExceeded(s.interval, s.gridExportWh, exportCap);
    }
}
