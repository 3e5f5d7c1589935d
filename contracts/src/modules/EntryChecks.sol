// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccountWord} from "../lib/AccountWord.sol";
import {MandateWord, OwnerWord} from "../lib/MandateWord.sol";
import {PackedOrder} from "../lib/PackedOrder.sol";
import {SettlementEntry} from "../lib/SettlementEntry.sol";
import {SharedBatteryFees} from "./SharedBatteryFees.sol";

/// @dev SharedBatteryModule's check of a share entry and its close of a chunked
/// interval's share entries, called back through the market.
interface ShareEntryCheck {
    function checkShareEntry(uint64 k, uint32 id, int256 netWh) external returns (int256 storageFee);
    function applyPendingShareEntries() external;
}

/// @title EntryChecks
/// @notice What a settlement checks of each entry: the participant may be settled, the
/// entry is authorised by its owner's order or mandate, and its wallet change is its
/// energy priced at the interval's terms. Used by SettlementModule only.
abstract contract EntryChecks is SharedBatteryFees {
    using AccountWord for uint256;
    using MandateWord for uint256;

    /// @notice A signed order riding in a settlement: the PackedOrder word and an
    /// EIP-2098 compact signature. It belongs to the next entry flagged as authorised by
    /// an order; that entry's participant and the settlement's interval complete the
    /// signed message.
    struct OrderAuth {
        uint256 packed;
        bytes32 r;
        bytes32 vs;
    }

    /// @dev An interval's prices and clock, resolved once per transaction.
    struct Context {
        Clock clock;
        uint64 interval;
        uint256 startsAt; // the interval's time on the market's clock: [startsAt, endsAt)
        uint256 endsAt;
        uint256 importPrice;
        uint256 exportPrice;
        uint256 p2pPrice;
        uint256 p2pFee;
        bool payAsBid;
        uint256 bucket; // the lock bucket of now
        uint256 storageFee; // per kWh a share participant takes in (SharedBatteryFees)
        uint32 storageOperator; // who the storage fees go to
        uint64[] zonePrices; // a zonal settlement's P2P price per zone; empty: uniform
        uint256[] zoneWh; // per zone, grid import Wh << 128 | export Wh so far
    }

    /// @dev Checks `entries` (ascending after `previous`) against their authorisations
    /// and the prices, adding them to `t`; with `move`, also moves each wallet. Every
    /// order must be used. Returns the last participant. An entry's authorisation is
    /// checked before its payment because under pay-as-bid its order sets its price.
    function _checkEntries(
        Context memory c,
        Totals memory t,
        uint256[] calldata entries,
        OrderAuth[] calldata orders,
        uint32 previous,
        bool move
    ) internal returns (uint32) {
        bytes32 domainSeparator = orders.length == 0 ? bytes32(0) : _domainSeparator();
        uint256 nextOrder = 0;
        uint256 count = entries.length;
        for (uint256 i = 0; i < count;) {
            uint256 word = entries[i];
            (uint32 id, int256 gridWh, int256 p2pWh, int256 amount) = SettlementEntry.decode(word);
            if (id <= previous) revert ParticipantsNotAscending(previous, id);
            previous = id;
            uint256 account = _settleable(id);
            // int48 + int48 cannot overflow.
            int256 netWh;
            unchecked {
                netWh = gridWh + p2pWh;
            }
            if (SettlementEntry.excluded(word)) {
                _checkExclusion(c, id, account, gridWh, p2pWh, amount);
            } else {
                uint256 p2pPrice = c.p2pPrice;
                if (c.zonePrices.length != 0) p2pPrice = _zoneEntry(c, id, account, gridWh);
                if (SettlementEntry.byOrder(word)) {
                    if (nextOrder == orders.length) revert MissingOrder(id);
                    p2pPrice = _checkOrder(c, domainSeparator, id, orders[nextOrder], netWh, amount, p2pPrice);
                    unchecked {
                        ++nextOrder;
                    }
                } else {
                    _checkMandate(c, id, netWh, amount);
                }
                // A share's wallet change is its energy's price less its storage fee: the
                // energy is checked as anyone's (a mismatch names amount + fee); its
                // account stays within its share (SharedBatteryFees).
                int256 storageFee = account.isShare() ? _shareEntry(c, id, netWh) : int256(0);
                t.storageFee += storageFee;
                _checkPayment(c, t, id, gridWh, p2pWh, amount + storageFee, p2pPrice);
                if (move) _update(id, account, amount, Move.Settle, c.bucket);
                // slither-disable-next-line unused-return
                else _moved(id, account, amount, Move.Settle, c.bucket);
            }
            unchecked {
                ++i;
            }
        }
        if (nextOrder != orders.length) revert UnusedOrders(orders.length - nextOrder);
        return previous;
    }

    /// @dev A share entry's storage fee; its account checked (and moved, unless a chunked
    /// interval is being verified) in SharedBatteryModule, through the market: a call
    /// only share entries make.
    function _shareEntry(Context memory c, uint32 id, int256 netWh) private returns (int256 storageFee) {
        bytes4 selector = ShareEntryCheck.checkShareEntry.selector;
        // A plain call, its revert passed on as it is: smaller than the high-level call,
        // which kept the settlement modules over their size target. Scratch memory above
        // the free pointer, not moved. c.interval is Context's second word.
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, selector)
            mstore(add(ptr, 4), mload(add(c, 0x20)))
            mstore(add(ptr, 36), id)
            mstore(add(ptr, 68), netWh)
            if iszero(call(gas(), address(), 0, ptr, 100, ptr, 32)) {
                returndatacopy(ptr, 0, returndatasize())
                revert(ptr, returndatasize())
            }
            storageFee := mload(ptr)
        }
    }

    /// @dev The account word of participant `id`, which must be registered, active and
    /// not frozen.
    function _settleable(uint32 id) internal view returns (uint256 account) {
        account = _accounts[id];
        if (!account.active()) {
            if (id >= _state.participantCount) revert UnknownParticipant(id);
            revert InactiveParticipant(id);
        }
        if (account.frozen()) revert FrozenParticipant(id);
    }

    /// @dev The participant's mandate in force covers the interval and allows paying
    /// `-amount` for `netWh` into (or being paid `amount` for `-netWh` out of) its home.
    /// Amounts are rounded to whole units, so limits are compared in thousandths with
    /// 999 of slack.
    function _checkMandate(Context memory c, uint32 id, int256 netWh, int256 amount) internal view {
        uint256 m = _mandates[id];
        if (!m.covers(c.startsAt, c.endsAt)) {
            if (m == 0) revert NoMandate(id);
            if (m.isRevoked()) revert RevokedMandate(id, m.nonce());
            revert MandateNotInForce(id, c.interval, m.validFrom(), m.validUntil());
        }
        // |netWh| < 2^49, prices < 2^40, |amount| < 2^128: no product overflows int256.
        unchecked {
            uint256 energy = uint256(netWh >= 0 ? netWh : -netWh);
            if (energy > m.maxEnergyWh()) revert MandateEnergyExceeded(id, energy, m.maxEnergyWh());
            if (netWh >= 0) {
                int256 limitMilli = netWh * int256(m.maxBuyPrice());
                if (-amount * 1000 > limitMilli + 999) revert MandatePriceExceeded(id, -amount * 1000, limitMilli);
            } else {
                int256 limitMilli = -netWh * int256(m.minSellPrice());
                if (amount * 1000 < limitMilli - 999) revert MandatePriceBelowMinimum(id, amount * 1000, limitMilli);
            }
        }
    }

    /// @dev The order was signed by the participant's owner for this interval, is not
    /// cancelled or expired, and the entry stays on its side, within its energy and its
    /// limit price. Returns the price of the entry's P2P energy: under pay-as-bid the
    /// order's limit clipped to the tariff of its side (a buyer never pays more, fee
    /// included, than the import tariff, a seller never gets less than the export
    /// tariff), else `price` (the interval's uniform P2P price or its zone's).
    function _checkOrder(
        Context memory c,
        bytes32 domainSeparator,
        uint32 id,
        OrderAuth calldata order,
        int256 netWh,
        int256 amount,
        uint256 price
    ) internal view returns (uint256) {
        uint256 word = order.packed;
        uint256 owner = _owners[id];
        address signer = PackedOrder.recover(PackedOrder.digest(domainSeparator, id, c.interval, word), order.r, order.vs);
        if (signer != OwnerWord.owner(owner)) revert BadOrderSignature(id, signer);
        (uint8 side, uint64 energyWh, uint64 limitPrice, uint64 expiry, uint64 nonce) = PackedOrder.decode(word);
        // A cancelled order is one below the floor its owner set; an order cannot be
        // replayed, as it is signed for one interval, which is settled once.
        uint64 floor = OwnerWord.orderFloor(owner);
        if (nonce < floor) revert OrderCancelled(id, nonce, floor);
        if (block.timestamp > expiry) revert OrderExpired(id, expiry, block.timestamp);
        // Same bounds as in _checkMandate.
        unchecked {
            if (side == PackedOrder.BUY && netWh >= 0) {
                if (c.payAsBid) {
                    uint256 allIn = limitPrice < c.importPrice ? limitPrice : c.importPrice;
                    price = allIn > c.p2pFee ? allIn - c.p2pFee : 0;
                }
                if (uint256(netWh) > energyWh) revert OrderQuantityExceeded(id, uint256(netWh), energyWh);
                int256 limitMilli = netWh * int256(uint256(limitPrice));
                if (-amount * 1000 > limitMilli + 999) revert OrderPriceExceeded(id, -amount * 1000, limitMilli);
            } else if (side == PackedOrder.SELL && netWh <= 0) {
                if (c.payAsBid) price = limitPrice > c.exportPrice ? limitPrice : c.exportPrice;
                if (uint256(-netWh) > energyWh) revert OrderQuantityExceeded(id, uint256(-netWh), energyWh);
                int256 limitMilli = -netWh * int256(uint256(limitPrice));
                if (amount * 1000 < limitMilli - 999) revert OrderPriceBelowLimit(id, amount * 1000, limitMilli);
            } else {
                revert OrderSideMismatch(id, side, netWh);
            }
        }
        return price;
    }

    /// @dev In a zonal settlement: the P2P price of participant `id`'s zone (the zone
    /// stored on chain, which must have a price), its grid energy added to the zone's.
    function _zoneEntry(Context memory c, uint32 id, uint256 account, int256 gridWh) internal pure returns (uint256) {
        uint16 zone = account.zone();
        uint256 zones = c.zonePrices.length;
        if (zone >= zones) revert ZoneWithoutPrice(id, zone, zones);
        // |gridWh| < 2^47 and at most MAX_ENTRIES entries: neither half overflows 128 bits.
        unchecked {
            c.zoneWh[zone] += gridWh > 0 ? uint256(gridWh) << 128 : uint256(-gridWh);
        }
        return c.zonePrices[zone];
    }

    /// @dev Checks one participant's wallet change against its grid energy at the tariff
    /// of its direction, its P2P energy at `p2pPrice` and, bought, at the P2P fee, to
    /// within one unit, and adds the entry to `t`.
    function _checkPayment(
        Context memory c,
        Totals memory t,
        uint32 id,
        int256 gridWh,
        int256 p2pWh,
        int256 amount,
        uint256 p2pPrice
    ) internal pure {
        // Entries are int48 energies and int128 amounts and prices are below 2^64, so no
        // product or running sum below can overflow int256.
        unchecked {
            int256 gridMilli = gridWh * int256(gridWh > 0 ? c.importPrice : c.exportPrice);
            int256 feeMilli = p2pWh > 0 ? p2pWh * int256(c.p2pFee) : int256(0);
            int256 expectedMilli = -gridMilli - p2pWh * int256(p2pPrice) - feeMilli;
            int256 error_ = amount * 1000 - expectedMilli;
            if (error_ <= -1000 || error_ >= 1000) revert PaymentMismatch(id, amount, expectedMilli);
            t.p2pWh += p2pWh;
            if (gridWh > 0) t.importWh += uint256(gridWh);
            else t.exportWh += uint256(-gridWh);
            t.amount += amount;
            t.gridExpectedMilli -= expectedMilli;
            t.feeMilli += feeMilli;
        }
    }

    /// @dev An excluded entry moves nothing and declares the participant's metered net
    /// energy (its grid field). It is allowed only if settling that energy with the grid
    /// at the interval's tariff is ruled out by the participant's mandate in force
    /// (price or energy limit) or, for an import, by its credit; a participant without
    /// a mandate for the interval may simply be left out. Its energy is disputable like
    /// any entry's.
    function _checkExclusion(Context memory c, uint32 id, uint256 account, int256 gridWh, int256 p2pWh, int256 amount)
        internal
        view
    {
        if (p2pWh != 0 || amount != 0) revert BadExclusion(id);
        uint256 m = _mandates[id];
        if (!m.covers(c.startsAt, c.endsAt)) return;
        // |gridWh| < 2^47 and prices < 2^40: no overflow.
        unchecked {
            uint256 energy = uint256(gridWh >= 0 ? gridWh : -gridWh);
            if (energy > m.maxEnergyWh()) return;
            if (gridWh > 0) {
                if (m.maxBuyPrice() < c.importPrice) return;
                int256 costUnits = int256((energy * c.importPrice + 999) / 1000);
                if (account.spendable(c.bucket) + int256(account.creditLimit()) < costUnits) return;
            } else if (gridWh < 0 && m.minSellPrice() > c.exportPrice) {
                return;
            }
        }
        revert NotExcludable(id, c.interval);
    }
}
