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
    struct Settlement {
        uint64 interval;
        bytes32 inputsHash; // keccak256 of the canonical clearing inputs
        uint64 buyPrice; // grid import tariff
        uint64 sellPrice; // grid export tariff
        uint64 p2pPrice; // price of energy traded between participants
        uint64 gridImportWh; // energy the community imported this interval
        uint64 gridExportWh; // energy the community exported this interval
        int128 gridAmount; // change of the grid's wallet (participant 0)
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
        uint256 participants
    );
    /// @notice One participant's energy and wallet change in a settled interval.
    event ParticipantSettled(
        uint64 indexed interval, uint32 indexed participant, int256 gridWh, int256 p2pWh, int256 amount
    );
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
    /// authorised by the participant's mandate. Every order must be used.
    function settle(Settlement calldata s, uint256[] calldata entries, OrderAuth[] calldata orders)
        external
        onlyRole(ORACLE_ROLE)
    {
        if (s.interval != nextInterval) revert IntervalOutOfOrder(nextInterval, s.interval);
        if (entries.length == 0) revert EmptySettlement(s.interval);
        if (s.p2pPrice < s.sellPrice || s.p2pPrice > s.buyPrice) {
            revert PriceOutOfRange(s.p2pPrice, s.sellPrice, s.buyPrice);
        }
        nextInterval = s.interval + 1;
        emit IntervalSettled(
            s.interval,
            s.inputsHash,
            s.buyPrice,
            s.sellPrice,
            s.p2pPrice,
            s.gridImportWh,
            s.gridExportWh,
            s.gridAmount,
            entries.length
        );

        // Memory structs start zeroed: the running sums begin at 0 on purpose.
        // slither-disable-next-line uninitialized-local
        Totals memory totals;
        bytes32 domainSeparator = orders.length == 0 ? bytes32(0) : _domainSeparatorV4();
        uint256 nextOrder = 0;
        uint32 previous = GRID;
        uint256 count = entries.length;
        for (uint256 i = 0; i < count;) {
            uint256 word = entries[i];
            (uint32 id, int256 gridWh, int256 p2pWh, int256 amount) = SettlementEntry.decode(word);
            if (id <= previous) revert ParticipantsNotAscending(previous, id);
            previous = id;
            address owner = _settleEntry(s, totals, id, gridWh, p2pWh, amount);
            // int48 + int48 cannot overflow.
            int256 netWh;
            unchecked {
                netWh = gridWh + p2pWh;
            }
            if (SettlementEntry.byOrder(word)) {
                if (nextOrder == orders.length) revert MissingOrder(id);
                _checkOrder(domainSeparator, s.interval, id, owner, orders[nextOrder], netWh, amount);
                unchecked {
                    ++nextOrder;
                }
            } else {
                _checkMandate(id, netWh, amount);
            }
            unchecked {
                ++i;
            }
        }
        if (nextOrder != orders.length) revert UnusedOrders(orders.length - nextOrder);
        _checkTotals(s, totals);
        _update(GRID, s.gridAmount);
    }

    /// @dev Checks one participant's entry against the prices and moves its wallet;
    /// returns the owner, whose signature or mandate the caller then checks.
    function _settleEntry(
        Settlement calldata s,
        Totals memory totals,
        uint32 id,
        int256 gridWh,
        int256 p2pWh,
        int256 amount
    ) internal returns (address owner) {
        Account storage account = _accounts[id];
        if (!account.active) {
            if (account.owner == address(0)) revert UnknownParticipant(id);
            revert InactiveParticipant(id);
        }
        // Entries are int48 energies and int128 amounts and prices are uint64, so no
        // product or running sum below can overflow int256 (checked math costs ~1k gas
        // per participant here).
        unchecked {
            // Grid energy is paid at the tariff of its direction, P2P energy at the P2P price.
            int256 gridMilli = gridWh * int256(uint256(gridWh > 0 ? s.buyPrice : s.sellPrice));
            int256 expectedMilli = -gridMilli - p2pWh * int256(uint256(s.p2pPrice));
            int256 error_ = amount * 1000 - expectedMilli;
            if (error_ <= -1000 || error_ >= 1000) revert PaymentMismatch(id, amount, expectedMilli);

            totals.p2pWh += p2pWh;
            if (gridWh > 0) totals.importWh += uint256(gridWh);
            else totals.exportWh += uint256(-gridWh);
            totals.amount += amount;
            totals.gridExpectedMilli += gridMilli;
        }
        _update(id, amount);
        emit ParticipantSettled(s.interval, id, gridWh, p2pWh, amount);
        return account.owner;
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
    function _checkOrder(
        bytes32 domainSeparator,
        uint64 interval,
        uint32 id,
        address owner,
        OrderAuth calldata order,
        int256 netWh,
        int256 amount
    ) private view {
        uint256 word = order.packed;
        address signer = PackedOrder.recover(PackedOrder.digest(domainSeparator, id, interval, word), order.r, order.vs);
        if (signer != owner) revert BadOrderSignature(id, signer);
        // The nonce only makes each signed order distinct; an order cannot be replayed
        // because it is signed for one interval, which is settled once.
        // slither-disable-next-line unused-return
        (uint8 side, uint64 energyWh, uint64 limitPrice, uint64 expiry,) = PackedOrder.decode(word);
        if (block.timestamp > expiry) revert OrderExpired(id, expiry, block.timestamp);
        // Same bounds as in _checkMandate.
        unchecked {
            if (side == PackedOrder.BUY && netWh >= 0) {
                if (uint256(netWh) > energyWh) revert OrderQuantityExceeded(id, uint256(netWh), energyWh);
                int256 limitMilli = netWh * int256(uint256(limitPrice));
                if (-amount * 1000 > limitMilli + 999) revert OrderPriceExceeded(id, -amount * 1000, limitMilli);
            } else if (side == PackedOrder.SELL && netWh <= 0) {
                if (uint256(-netWh) > energyWh) revert OrderQuantityExceeded(id, uint256(-netWh), energyWh);
                int256 limitMilli = -netWh * int256(uint256(limitPrice));
                if (amount * 1000 < limitMilli - 999) revert OrderPriceBelowLimit(id, amount * 1000, limitMilli);
            } else {
                revert OrderSideMismatch(id, side, netWh);
            }
        }
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
        (uint64 importCap, uint64 exportCap) = capacityOf(s.interval);
        if (s.gridImportWh > importCap) revert ImportCapacityExceeded(s.interval, s.gridImportWh, importCap);
        if (s.gridExportWh > exportCap) revert ExportCapacityExceeded(s.interval, s.gridExportWh, exportCap);
    }
}
