// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnergyMarket} from "../src/EnergyMarket.sol";
import {GridToken} from "../src/GridToken.sol";
import {SettlementEntry} from "../src/SettlementEntry.sol";
import {SettlementBuilder} from "./SettlementBuilder.sol";
import {Signing} from "./Signing.sol";
import {vm} from "./Vm.sol";

/// @notice Fuzz tests of the settlement encoding and of the payment check's boundary.
contract SettlementFuzzTest {
    address internal constant ADMIN = address(0xAD);
    address internal constant ORACLE = address(0x0AC1E);
    address internal constant GRID_OPERATOR = address(0x6D);

    EnergyMarket internal market;

    error Mismatch(string what, int256 expected, int256 actual);
    error WrongOutcome(bool expectedAccepted, bytes got);

    function setUp() public {
        GridToken token = new GridToken(address(this));
        market = new EnergyMarket(ADMIN, ORACLE, GRID_OPERATOR, token, type(uint64).max, type(uint64).max, 0);
        vm.startPrank(ADMIN);
        market.register(vm.addr(0xB1), 0, "one");
        market.register(vm.addr(0xB2), 0, "two");
        vm.stopPrank();
        // Mandates without price limits, so that only the payment check can reject.
        for (uint32 id = 1; id <= 2; ++id) {
            EnergyMarket.Mandate memory m =
                EnergyMarket.Mandate(id, type(uint64).max, 0, 0, 1_000_000, type(uint64).max, 1);
            market.submitMandate(m, Signing.signMandate(0xB0 + id, address(market), m));
        }
    }

    /// decode inverts the encoder for every field value, signs and flag included.
    function testFuzz_decodeInvertsEncode(uint32 id, int48 gridWh, int48 p2pWh, int128 amount, bool byOrder)
        public
        pure
    {
        id &= 0x7fffffff; // ids are 31 bits: the top bit is the byOrder flag
        uint256 word = SettlementBuilder.encode(id, gridWh, p2pWh, amount);
        if (byOrder) word |= SettlementBuilder.BY_ORDER;
        (uint32 id_, int256 gridWh_, int256 p2pWh_, int256 amount_) = SettlementEntry.decode(word);
        _equal("byOrder", byOrder ? int256(1) : int256(0), SettlementEntry.byOrder(word) ? int256(1) : int256(0));
        _equal("participant", int256(uint256(id)), int256(uint256(id_)));
        _equal("gridWh", gridWh, gridWh_);
        _equal("p2pWh", p2pWh, p2pWh_);
        _equal("amount", amount, amount_);
    }

    /// Every word is some entry: encoding what decode returns gives the word back, so
    /// no bit is ignored or read twice.
    function testFuzz_encodeInvertsDecode(uint256 word) public pure {
        (uint32 id, int256 gridWh, int256 p2pWh, int256 amount) = SettlementEntry.decode(word);
        uint256 flag = SettlementEntry.byOrder(word) ? SettlementBuilder.BY_ORDER : 0;
        if (SettlementBuilder.encode(id, gridWh, p2pWh, amount) | flag != word) revert Mismatch("word", 0, 1);
    }

    /// The same words as the Python encoder (node/settlement.py) produces.
    function test_decodesWordsFromThePythonEncoder() public pure {
        (uint32 id, int256 gridWh, int256 p2pWh, int256 amount) =
            SettlementEntry.decode(0x7fffffffffb5000000000012cfffffffffffffffffffffffffff92230);
        _equal("participant", 7, int256(uint256(id)));
        _equal("gridWh", -1200, gridWh);
        _equal("p2pWh", 300, p2pWh);
        _equal("amount", -450_000, amount);
        (id, gridWh, p2pWh, amount) =
            SettlementEntry.decode(0xffffffff7fffffffffff80000000000080000000000000000000000000000000);
        _equal("participant", int256(uint256(type(uint32).max >> 1)), int256(uint256(id)));
        _equal("byOrder", 1, SettlementEntry.byOrder(0xffffffff7fffffffffff80000000000080000000000000000000000000000000) ? int256(1) : int256(0));
        _equal("gridWh", type(int48).max, gridWh);
        _equal("p2pWh", type(int48).min, p2pWh);
        _equal("amount", type(int128).min, amount);
    }

    /// A wallet change is accepted iff it is the exact price rounded down or up
    /// (|amount - exact| < 1 unit) and authorised; off by a unit or more it is rejected. Participant 1
    /// trades `energyWh` with the grid (import at the buy tariff, export at the sell
    /// tariff) or with participant 2 at the P2P price; the counterparty takes the
    /// opposite amount, so money is conserved and only the payment check (or, for a
    /// participant charged for energy it sold, its mandate) can fail.
    function testFuzz_paymentAcceptedWithinRoundingRejectedOffByAUnit(
        int48 energyWh,
        uint64 price,
        bool p2p,
        int8 offset,
        bool wholeUnits
    ) public {
        price = uint64(price % 2_000_001);
        // Half the cases price in whole units per Wh, so the exact amount is an integer
        // and one unit off lands exactly on the check's boundary (|error| = 1000).
        if (wholeUnits) price -= price % 1000;
        int256 energy = int256(energyWh) % 1e12; // keeps amounts well inside a wallet
        int256 exactMilli = -energy * int256(uint256(price));
        // Candidates around the exact value: floor(x) + offset with offset in [-3, 3].
        int256 amount = SettlementBuilder.floorDiv(exactMilli, 1000) + int256(offset % 4);
        bool accepted = _withinOneUnit(amount, exactMilli);
        bytes memory rejection =
            abi.encodeWithSelector(EnergyMarket.PaymentMismatch.selector, uint32(1), amount, exactMilli);
        // The mandates set no price limits, yet none lets participant 1 pay for energy it
        // sold or never got; the contract checks that authorisation before the payment.
        if (energy == 0 && amount < 0) {
            accepted = false;
            rejection = abi.encodeWithSelector(EnergyMarket.MandatePriceExceeded.selector, uint32(1), -amount * 1000, 0);
        } else if (energy < 0 && amount < 0) {
            accepted = false;
            rejection =
                abi.encodeWithSelector(EnergyMarket.MandatePriceBelowMinimum.selector, uint32(1), amount * 1000, 0);
        }

        EnergyMarket.Settlement memory s;
        uint256[] memory entries;
        s.buyPrice = price;
        s.sellPrice = price;
        s.p2pPrice = price;
        if (p2p) {
            entries = new uint256[](2);
            entries[0] = SettlementBuilder.encode(1, 0, energy, amount);
            entries[1] = SettlementBuilder.encode(2, 0, -energy, -amount);
        } else {
            entries = new uint256[](1);
            entries[0] = SettlementBuilder.encode(1, energy, 0, amount);
            s.gridImportWh = energy > 0 ? uint64(uint256(energy)) : 0;
            s.gridExportWh = energy < 0 ? uint64(uint256(-energy)) : 0;
            s.gridAmount = int128(-amount);
        }
        vm.prank(ORACLE);
        try market.settle(s, entries, new EnergyMarket.OrderAuth[](0)) {
            if (!accepted) revert WrongOutcome(false, "");
        } catch (bytes memory got) {
            if (accepted || keccak256(got) != keccak256(rejection)) revert WrongOutcome(accepted, got);
        }
    }

    /// Pay-as-bid: participant 1 buys `energyWh` from participant 2, both by signed
    /// orders; the buyer pays its bid clipped to the import tariff, the seller gets its
    /// ask clipped to the export tariff, each within a unit, and the grid's wallet takes
    /// the spread, so money is conserved. A bid priced below the ask it is matched with
    /// (after clipping) is refused as a negative spread, which the grid would pay.
    function testFuzz_payAsBidPaysEachOrderItsOwnLimitClippedToTheTariffs(
        uint32 energyWh,
        uint64 bid,
        uint64 ask,
        uint64 buyPrice,
        uint64 sellPrice,
        uint256 seed
    ) public {
        int256 energy = 1 + int256(uint256(energyWh % 1e9));
        (bid, ask) = (bid % 3_000_000, ask % 3_000_000);
        buyPrice = buyPrice % 2_000_001;
        sellPrice = sellPrice % (buyPrice + 1);
        SettlementBuilder.Draft memory d;
        d.s.interval = market.nextInterval();
        d.s.buyPrice = buyPrice;
        d.s.sellPrice = sellPrice;
        d.s.p2pPrice = sellPrice + (buyPrice - sellPrice) / 2;
        d.s.payAsBid = true;
        d.ids = new uint32[](2);
        (d.ids[0], d.ids[1]) = (1, 2);
        d.gridWh = new int256[](2);
        d.p2pWh = new int256[](2);
        (d.p2pWh[0], d.p2pWh[1]) = (energy, -energy);
        d.byOrder = new bool[](2);
        (d.byOrder[0], d.byOrder[1]) = (true, true);
        d.limits = new uint64[](2);
        (d.limits[0], d.limits[1]) = (bid, ask);
        SettlementBuilder.price(d, seed);
        EnergyMarket.OrderAuth[] memory orders = new EnergyMarket.OrderAuth[](2);
        uint64 e = uint64(uint256(energy));
        Signing.Order memory buyOrder = Signing.Order(Signing.BUY, e, bid, type(uint64).max, 1);
        Signing.Order memory sellOrder = Signing.Order(Signing.SELL, e, ask, type(uint64).max, 2);
        orders[0] = Signing.signOrder(0xB1, address(market), 1, d.s.interval, buyOrder);
        orders[1] = Signing.signOrder(0xB2, address(market), 2, d.s.interval, sellOrder);

        int256[3] memory before = [market.balanceOf(0), market.balanceOf(1), market.balanceOf(2)];
        int256 bidMilli = energy * int256(uint256(bid < buyPrice ? bid : buyPrice));
        int256 askMilli = energy * int256(uint256(ask > sellPrice ? ask : sellPrice));
        uint256[] memory entries = SettlementBuilder.entries(d);
        if (bidMilli < askMilli) {
            vm.expectRevert(
                abi.encodeWithSelector(EnergyMarket.NegativeSpread.selector, d.s.interval, bidMilli - askMilli)
            );
        }
        vm.prank(ORACLE);
        market.settle(d.s, entries, orders);
        if (bidMilli < askMilli) return;
        int256 paid = before[1] - market.balanceOf(1);
        int256 received = market.balanceOf(2) - before[2];
        int256 spread = market.balanceOf(0) - before[0];
        if (paid * 1000 - bidMilli <= -1000 || paid * 1000 - bidMilli >= 1000) revert Mismatch("paid", bidMilli, paid);
        if (received * 1000 - askMilli <= -1000 || received * 1000 - askMilli >= 1000) {
            revert Mismatch("received", askMilli, received);
        }
        _equal("grid takes the spread", paid - received, spread);
    }

    /// Written as "the amount is floor or ceil of the exact value", independently of
    /// the contract's "|1000 * amount - exact| < 1000".
    function _withinOneUnit(int256 amount, int256 exactMilli) internal pure returns (bool) {
        int256 floor = SettlementBuilder.floorDiv(exactMilli, 1000);
        int256 ceil = floor * 1000 == exactMilli ? floor : floor + 1;
        return amount == floor || amount == ceil;
    }

    function _equal(string memory what, int256 expected, int256 actual) internal pure {
        if (expected != actual) revert Mismatch(what, expected, actual);
    }
}
