// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketEvents} from "../src/MarketEvents.sol";
import {AccountWord} from "../src/lib/AccountWord.sol";
import {SettlementEntry} from "../src/lib/SettlementEntry.sol";
import {EntryChecks} from "../src/modules/EntryChecks.sol";
import {MarketFixture} from "./MarketFixture.sol";
import {SettlementBuilder} from "./SettlementBuilder.sol";
import {Signing} from "./Signing.sol";
import {vm} from "./Vm.sol";

/// @notice Fuzz tests of the packed words and of the pricing boundary.
contract FuzzTest is MarketFixture {
    error Mismatch(string what, int256 expected, int256 actual);

    function setUp() public {
        _deployMarket(_tariffs(7_000, true), type(uint64).max, type(uint64).max);
        _registerHomes(2);
        _fund(0, 1e12);
        _fund(1, 1e12);
        _fund(2, 1e12);
        _bond(REWARD);
    }

    /// decode inverts the encoder for every field value, signs and flags included.
    function testFuzz_entryDecodeInvertsEncode(uint32 id, int48 gridWh, int48 p2pWh, int128 amount, bool byOrder, bool excluded)
        public
        pure
    {
        id &= 0x3fffffff;
        uint256 word = SettlementBuilder.encode(id, gridWh, p2pWh, amount);
        if (byOrder) word |= SettlementBuilder.BY_ORDER;
        if (excluded) word |= SettlementBuilder.EXCLUDED;
        (uint32 id_, int256 g, int256 p, int256 a) = SettlementEntry.decode(word);
        _equal("participant", int256(uint256(id)), int256(uint256(id_)));
        _equal("grid", gridWh, g);
        _equal("p2p", p2pWh, p);
        _equal("amount", amount, a);
        _equal("byOrder", byOrder ? int256(1) : int256(0), SettlementEntry.byOrder(word) ? int256(1) : int256(0));
        _equal("excluded", excluded ? int256(1) : int256(0), SettlementEntry.excluded(word) ? int256(1) : int256(0));
        _equal("net", int256(gridWh) + int256(p2pWh), SettlementEntry.netWh(word));
    }

    /// Credits locked bucket by bucket are released exactly two buckets on: against a
    /// model that keeps every credit with its bucket, whatever the gaps between them,
    /// and a reversal takes back exactly what it locked.
    function testFuzz_lockedCreditIsReleasedExactlyWhenFinal(uint256 seed) public pure {
        uint256 w = AccountWord.create(0);
        uint256[8] memory buckets;
        uint256[8] memory amounts;
        uint256 current = 1 + seed % 1000;
        for (uint256 i = 0; i < 8; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            current += r % 3; // same bucket, the next, or two on
            buckets[i] = current;
            amounts[i] = (r >> 8) % 1e9;
            bool ok;
            (w, ok) = AccountWord.lock(w, amounts[i], current);
            if (!ok) revert Mismatch("lock", 1, 0);
            for (uint256 later = current; later < current + 3; ++later) {
                int256 expected;
                for (uint256 j = 0; j <= i; ++j) {
                    if (buckets[j] + 1 >= later) expected += int256(amounts[j]);
                }
                _equal("locked", expected, int256(AccountWord.locked(w, later)));
            }
            if ((r >> 100) % 4 == 0) {
                // A dispute reverses this credit before it is final.
                (w, ok) = AccountWord.unlock(w, amounts[i], current);
                if (!ok) revert Mismatch("unlock", 1, 0);
                amounts[i] = 0;
                int256 expected;
                for (uint256 j = 0; j <= i; ++j) {
                    if (buckets[j] + 1 >= current) expected += int256(amounts[j]);
                }
                _equal("locked after a reversal", expected, int256(AccountWord.locked(w, current)));
            }
        }
    }

    /// Pay-as-bid with a P2P fee: the buyer pays its bid clipped to the import tariff,
    /// fee included; the seller gets its ask clipped to the export tariff; the grid's
    /// wallet takes the fee and the spread. A bid below the ask is refused.
    function testFuzz_payAsBidWithFee(uint32 energyWh, uint64 bid, uint64 ask, uint256 seed) public {
        // At least 2 kWh: a bid short of the fee by 1 unit/kWh then breaks its limit by more
        // than the unit of rounding slack.
        int256 energy = 2_000 + int256(uint256(energyWh % 1e7));
        (bid, ask) = (uint64(bid % 500_000), uint64(ask % 500_000));
        _warpPast(0);
        SettlementBuilder.Draft memory d = _draft(0, _ids(1, 2), _wh(0, 0), _wh(energy, -energy));
        (d.byOrder[0], d.byOrder[1]) = (true, true);
        (d.limits[0], d.limits[1]) = (bid, ask);
        SettlementBuilder.price(d, seed);
        d.orders = new EntryChecks.OrderAuth[](2);
        uint64 e = uint64(uint256(energy));
        d.orders[0] = Signing.signOrder(ownerKey(1), address(market), 1, 0, Signing.Order(Signing.BUY, e, bid, type(uint64).max, 1));
        d.orders[1] = Signing.signOrder(ownerKey(2), address(market), 2, 0, Signing.Order(Signing.SELL, e, ask, type(uint64).max, 1));
        uint256 paidAllIn = bid < IMPORT ? bid : IMPORT;
        uint256 buyerPrice = paidAllIn > 7_000 ? paidAllIn - 7_000 : 0;
        uint256 sellerPrice = ask > EXPORT ? ask : EXPORT;
        int256[3] memory before = [wallets.balanceOf(0), wallets.balanceOf(1), wallets.balanceOf(2)];
        if (paidAllIn < 7_000) {
            // A bid below the fee cannot pay it: the buyer's cost is above its limit.
            vm.expectPartialRevert(MarketEvents.OrderPriceExceeded.selector);
            _submit(d);
            return;
        }
        if (buyerPrice < sellerPrice) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    MarketEvents.NegativeSpread.selector, uint64(0), energy * (int256(buyerPrice) - int256(sellerPrice))
                )
            );
        }
        _submit(d);
        if (buyerPrice < sellerPrice) return;
        int256 paid = before[1] - wallets.balanceOf(1);
        int256 received = wallets.balanceOf(2) - before[2];
        _withinOneUnit("buyer pays its bid, fee included", energy * int256(paidAllIn), paid);
        _withinOneUnit("seller gets its ask", energy * int256(sellerPrice), received);
        _equal("grid takes fee and spread", paid - received, wallets.balanceOf(0) - before[0]);
    }

    function _withinOneUnit(string memory what, int256 exactMilli, int256 amount) internal pure {
        int256 error_ = amount * 1000 - exactMilli;
        if (error_ <= -1000 || error_ >= 1000) revert Mismatch(what, exactMilli, amount * 1000);
    }

    function _equal(string memory what, int256 expected, int256 actual) internal pure {
        if (expected != actual) revert Mismatch(what, expected, actual);
    }
}
