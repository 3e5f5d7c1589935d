// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketEvents} from "../src/MarketEvents.sol";
import {MarketStorage} from "../src/MarketStorage.sol";
import {EntryChecks} from "../src/modules/EntryChecks.sol";
import {MarketFixture} from "./MarketFixture.sol";
import {SettlementBuilder} from "./SettlementBuilder.sol";
import {Signing} from "./Signing.sol";
import {vm, Vm} from "./Vm.sol";

/// @notice Issue 11: zonal settlements (one P2P price per zone) as an attacker holding
/// the oracle key sees them. Homes 1 and 2 are in zone 0, homes 3 and 4 in zone 1 (the
/// zone stored on chain at registration); standing mandates buy at most 0.30/kWh and
/// sell at least 0.06/kWh, the tariffs are 0.30 import and 0.06 export.
contract ZonesTest is MarketFixture {
    int256 internal constant TEN = 10_000_000;
    uint64 internal constant CHEAP = 100_000; // zone 0's price when the line binds
    uint64 internal constant DEAR = 200_000; // zone 1's

    error Mismatch(string what, int256 expected, int256 actual);

    function setUp() public {
        _deployMarket(_tariffs(0, false), type(uint64).max, type(uint64).max);
        vm.startPrank(ADMIN);
        for (uint32 id = 1; id <= 4; ++id) {
            participants.register(vm.addr(ownerKey(id)), vm.addr(meterKey(id)), id <= 2 ? 0 : 1, "home");
        }
        vm.stopPrank();
        for (uint32 id = 0; id <= 4; ++id) {
            _fund(id, uint256(TEN));
        }
        _standingMandates(1, 4, type(uint32).max);
        _bond(5 * uint256(REWARD));
    }

    function _prices(uint64 a, uint64 b) internal pure returns (uint64[] memory p) {
        p = new uint64[](2);
        (p[0], p[1]) = (a, b);
    }

    /// @dev Interval `k`: home 1 (zone 0) sells `wh` to home 3 (zone 1) over the line,
    /// home 2 imports 100 Wh and home 4 exports 50 Wh, at zone prices `zp`.
    function _zonalDraft(uint64 k, int256 wh, uint64[] memory zp) internal view returns (SettlementBuilder.Draft memory d) {
        uint32[] memory ids = new uint32[](4);
        int256[] memory g = new int256[](4);
        int256[] memory p = new int256[](4);
        (ids[0], ids[1], ids[2], ids[3]) = (1, 2, 3, 4);
        (g[0], g[1], g[2], g[3]) = (int256(0), int256(100), int256(0), int256(-50));
        (p[0], p[1], p[2], p[3]) = (-wh, int256(0), wh, int256(0));
        d = _draft(k, ids, g, p);
        d.zonePrices = zp;
        d.zones = new uint16[](4);
        (d.zones[0], d.zones[1], d.zones[2], d.zones[3]) = (0, 0, 1, 1);
        d.h.p2pPrice = zp.length == 0 ? d.h.p2pPrice : zp[0];
        SettlementBuilder.price(d, 0);
    }

    function _submitZonal(SettlementBuilder.Draft memory d) internal {
        uint256[] memory words = SettlementBuilder.entries(d);
        vm.prank(ORACLE);
        zonal.settleZonal(d.h, d.zonePrices, words, d.orders);
    }

    // ------------------------------------------------------------- what settles

    /// Each entry at its zone's price; the grid's wallet gets minus the entries' sum,
    /// which is the tariffs of the grid energy plus the congestion rent; the event
    /// states the zone prices and the rent.
    function test_zonal_eachZoneAtItsPriceAndTheRentGoesToTheGrid() public {
        _warpPast(0);
        SettlementBuilder.Draft memory d = _zonalDraft(0, 1_000, _prices(CHEAP, DEAR));
        int256 gridBefore = wallets.balanceOf(0);
        vm.recordLogs();
        _submitZonal(d);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bytes32 topic = keccak256("ZonePricesSettled(uint64,uint64[],int256)");
        bool seen;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].topics[0] != topic) continue;
            (uint64[] memory prices, int256 rent) = abi.decode(logs[i].data, (uint64[], int256));
            _equal("zone 0 price", int256(uint256(CHEAP)), int256(uint256(prices[0])));
            _equal("zone 1 price", int256(uint256(DEAR)), int256(uint256(prices[1])));
            _equal("rent", 1_000 * int256(uint256(DEAR - CHEAP)), rent);
            _equal("rent as the builder has it", SettlementBuilder.rentMilli(d), rent);
            seen = true;
        }
        if (!seen) revert Mismatch("ZonePricesSettled emitted", 1, 0);
        _equal("seller paid at zone 0's price", TEN + 100_000, wallets.balanceOf(1));
        _equal("buyer paid at zone 1's price", TEN - 200_000, wallets.balanceOf(3));
        // 100 Wh imported at 0.30, 50 Wh exported at 0.06, rent 0.10/kWh x 1 kWh.
        _equal("grid", gridBefore + 30_000 - 3_000 + 100_000, wallets.balanceOf(0));
        _equal("grid = minus the entries", -(d.amount[0] + d.amount[1] + d.amount[2] + d.amount[3]), wallets.balanceOf(0) - gridBefore);
    }

    /// An order-authorised entry is priced at its zone's price too, and its limit binds.
    function test_zonal_orderEntryAtItsZonesPriceWithinItsLimit() public {
        _warpPast(0);
        SettlementBuilder.Draft memory d = _zonalDraft(0, 1_000, _prices(CHEAP, DEAR));
        d.byOrder[2] = true;
        d.orders = new EntryChecks.OrderAuth[](1);
        d.orders[0] = Signing.signOrder(ownerKey(3), address(market), 3, 0, Signing.Order(Signing.BUY, 1_000, DEAR - 1, type(uint64).max, 1));
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.OrderPriceExceeded.selector, uint32(3), int256(200_000_000), int256(199_999_000)));
        _submitZonal(d);
        d.orders[0] = Signing.signOrder(ownerKey(3), address(market), 3, 0, Signing.Order(Signing.BUY, 1_000, DEAR, type(uint64).max, 2));
        _submitZonal(d);
        _equal("buyer by order", TEN - 200_000, wallets.balanceOf(3));
    }

    // ------------------------------------------------------------- attacks

    /// The oracle prices home 3 (zone 1) at zone 0's cheaper price: refused.
    function test_attack_entryPricedAtAnotherZonesPrice() public {
        _warpPast(0);
        SettlementBuilder.Draft memory d = _zonalDraft(0, 1_000, _prices(CHEAP, DEAR));
        d.amount[2] = -100_000; // 1 kWh at zone 0's 0.10 instead of zone 1's 0.20
        d.amount[3] -= 100_000; // keep the sum, so only the entry's price is wrong
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.PaymentMismatch.selector, uint32(3), int256(-100_000), int256(-200_000_000)));
        _submitZonal(d);
    }

    /// A zone priced above the import tariff less the fee, or below the export tariff.
    function test_attack_zonePriceOutsideTheTariffs() public {
        _warpPast(0);
        SettlementBuilder.Draft memory d = _zonalDraft(0, 1_000, _prices(CHEAP, IMPORT + 1));
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ZonePriceOutOfRange.selector, uint16(1), uint256(IMPORT + 1), uint256(EXPORT), uint256(IMPORT)));
        _submitZonal(d);
        d = _zonalDraft(0, 1_000, _prices(EXPORT - 1, DEAR));
        d.h.p2pPrice = CHEAP;
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ZonePriceOutOfRange.selector, uint16(0), uint256(EXPORT - 1), uint256(EXPORT), uint256(IMPORT)));
        _submitZonal(d);
    }

    /// Zone 1 imports 1 kWh over a line its feeder is rated 0.5 kWh for: refused by the
    /// default zone capacity and by one interval's own.
    function test_attack_zoneOverItsCapacity() public {
        _warpPast(1);
        SettlementBuilder.Draft memory d = _zonalDraft(0, 1_000, _prices(CHEAP, DEAR));
        // Home 3's 1 kWh comes from the grid this time, in zone 1.
        (d.gridWh[2], d.p2pWh[2], d.gridWh[0], d.p2pWh[0]) = (1_000, 0, 0, 0);
        SettlementBuilder.price(d, 0);
        vm.prank(GRID_OPERATOR);
        terms.setDefaultZoneCapacity(1, 500, type(uint64).max);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ZoneImportCapacityExceeded.selector, uint64(0), uint16(1), uint256(1_000), uint256(500)));
        _submitZonal(d);
        // Interval 0's own capacity replaces the default: room to import, not to export.
        vm.prank(GRID_OPERATOR);
        terms.setZoneCapacity(0, 1, 1_000, 10);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ZoneExportCapacityExceeded.selector, uint64(0), uint16(1), uint256(50), uint256(10)));
        _submitZonal(d);
        vm.prank(GRID_OPERATOR);
        terms.setZoneCapacity(0, 1, 1_000, 50);
        _submitZonal(d);
        (uint64 imp, uint64 exp) = terms.zoneCapacityOf(1, 1);
        _equal("interval 1 falls back to the zone's default", 500, int256(uint256(imp)));
        _equal("export unlimited by default", int256((1 << 48) - 1), int256(uint256(exp)));
    }

    /// Zone prices that make P2P sellers get more than buyers pay (energy flowing from
    /// the dear zone to the cheap one) would be paid out of the grid's wallet: refused.
    function test_attack_negativeRentIsRefused() public {
        _warpPast(0);
        SettlementBuilder.Draft memory d = _zonalDraft(0, 1_000, _prices(DEAR, CHEAP));
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.NegativeSpread.selector, uint64(0), -1_000 * int256(uint256(DEAR - CHEAP))));
        _submitZonal(d);
    }

    /// One price for two zones, none, or more than MAX_ZONES: refused.
    function test_attack_mismatchedZonePriceCount() public {
        _warpPast(0);
        uint64[] memory one = new uint64[](1);
        one[0] = CHEAP;
        SettlementBuilder.Draft memory d = _zonalDraft(0, 1_000, _prices(CHEAP, CHEAP));
        d.zonePrices = one;
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ZoneWithoutPrice.selector, uint32(3), uint16(1), uint256(1)));
        _submitZonal(d);
        d.zonePrices = new uint64[](0);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ZoneCountOutOfRange.selector, uint256(0), uint256(64)));
        _submitZonal(d);
        d.zonePrices = new uint64[](65);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ZoneCountOutOfRange.selector, uint256(65), uint256(64)));
        _submitZonal(d);
    }

    /// Zones price uniformly: under pay-as-bid terms a zonal settlement is refused.
    function test_attack_zonalUnderPayAsBidIsRefused() public {
        _deployMarket(_tariffs(0, true), type(uint64).max, type(uint64).max);
        _registerHomes(4);
        _bond(5 * uint256(REWARD));
        _warpPast(0);
        SettlementBuilder.Draft memory d = _zonalDraft(0, 0, _prices(CHEAP, DEAR));
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ZonalUnderPayAsBid.selector, uint64(0)));
        _submitZonal(d);
    }

    // ------------------------------------------------------------- chunks

    function _chunk(SettlementBuilder.Draft memory d, uint256 from, uint256 to) internal pure returns (uint256[] memory w) {
        uint256[] memory all = SettlementBuilder.entries(d);
        w = new uint256[](to - from);
        for (uint256 i = from; i < to; ++i) {
            w[i - from] = all[i];
        }
    }

    /// A zonal interval in two chunks settles like one transaction and the last apply
    /// states the zone prices and rent.
    function test_chunked_zonalSettlesAcrossChunks() public {
        _warpPast(0);
        SettlementBuilder.Draft memory d = _zonalDraft(0, 1_000, _prices(CHEAP, DEAR));
        EntryChecks.OrderAuth[] memory none = new EntryChecks.OrderAuth[](0);
        vm.startPrank(ORACLE);
        zonal.verifyChunkZonal(d.h, d.zonePrices, _chunk(d, 0, 2), none, false);
        zonal.verifyChunkZonal(d.h, d.zonePrices, _chunk(d, 2, 4), none, true);
        vm.stopPrank();
        settlement.applyChunk(0, 0, _chunk(d, 0, 2));
        vm.recordLogs();
        settlement.applyChunk(0, 1, _chunk(d, 2, 4));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bytes32 topic = keccak256("ZonePricesSettled(uint64,uint64[],int256)");
        bool seen;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].topics[0] != topic) continue;
            (, int256 rent) = abi.decode(logs[i].data, (uint64[], int256));
            _equal("rent", SettlementBuilder.rentMilli(d), rent);
            seen = true;
        }
        if (!seen) revert Mismatch("ZonePricesSettled emitted", 1, 0);
        _equal("buyer", TEN - 200_000, wallets.balanceOf(3));
    }

    /// The zone prices a chunked interval keeps in storage between its first verify and
    /// its last apply (written word by word, four a word) come back exactly, for any
    /// count of zones, and a longer earlier interval's leave nothing behind.
    function testFuzz_chunkedZonePricesComeBackExactly(uint8 extra, uint64 seed) public {
        uint256 zones = 2 + uint256(extra) % 10;
        uint64[] memory first = new uint64[](zones);
        for (uint256 z = 0; z < zones; ++z) {
            first[z] = z == 0 ? CHEAP : z == 1 ? DEAR : 60_000 + uint64(uint256(keccak256(abi.encode(seed, z))) % 240_001);
        }
        _warpPast(1);
        _equalPrices(first, _settleInChunks(_zonalDraft(0, 1_000, first)));
        _equalPrices(_prices(CHEAP, DEAR), _settleInChunks(_zonalDraft(1, 500, _prices(CHEAP, DEAR))));
    }

    function _settleInChunks(SettlementBuilder.Draft memory d) internal returns (uint64[] memory emitted) {
        EntryChecks.OrderAuth[] memory none = new EntryChecks.OrderAuth[](0);
        vm.startPrank(ORACLE);
        zonal.verifyChunkZonal(d.h, d.zonePrices, _chunk(d, 0, 2), none, false);
        zonal.verifyChunkZonal(d.h, d.zonePrices, _chunk(d, 2, 4), none, true);
        vm.stopPrank();
        settlement.applyChunk(d.h.interval, 0, _chunk(d, 0, 2));
        vm.recordLogs();
        settlement.applyChunk(d.h.interval, 1, _chunk(d, 2, 4));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bytes32 topic = keccak256("ZonePricesSettled(uint64,uint64[],int256)");
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].topics[0] == topic) (emitted,) = abi.decode(logs[i].data, (uint64[], int256));
        }
    }

    function _equalPrices(uint64[] memory expected, uint64[] memory actual) internal pure {
        _equal("zone count", int256(expected.length), int256(actual.length));
        for (uint256 z = 0; z < expected.length; ++z) {
            _equal("zone price", int256(uint256(expected[z])), int256(uint256(actual[z])));
        }
    }

    /// Chunks of one interval that disagree on a zone price, or a uniform chunk after a
    /// zonal one: the header hash (which covers the zone prices) differs, refused.
    function test_attack_chunksDisagreeOnZonePrices() public {
        _warpPast(0);
        SettlementBuilder.Draft memory d = _zonalDraft(0, 1_000, _prices(CHEAP, DEAR));
        EntryChecks.OrderAuth[] memory none = new EntryChecks.OrderAuth[](0);
        vm.startPrank(ORACLE);
        zonal.verifyChunkZonal(d.h, d.zonePrices, _chunk(d, 0, 2), none, false);
        bytes32 expected = keccak256(abi.encode(d.h, d.zonePrices));
        uint64[] memory other = _prices(CHEAP, DEAR + 1);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.HeaderMismatch.selector, uint64(0), expected, keccak256(abi.encode(d.h, other))));
        zonal.verifyChunkZonal(d.h, other, _chunk(d, 2, 4), none, true);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.HeaderMismatch.selector, uint64(0), expected, keccak256(abi.encode(d.h))));
        settlement.verifyChunk(d.h, _chunk(d, 2, 4), none, true);
        vm.stopPrank();
    }

    /// Per-zone sums carry across chunks: each chunk alone is within zone 1's import
    /// capacity, both together are not, and the last chunk is refused.
    function test_attack_zoneCapacityCountsEveryChunk() public {
        _warpPast(0);
        SettlementBuilder.Draft memory d = _zonalDraft(0, 0, _prices(CHEAP, DEAR));
        (d.gridWh[2], d.gridWh[3]) = (600, 600);
        SettlementBuilder.price(d, 0);
        vm.prank(GRID_OPERATOR);
        terms.setDefaultZoneCapacity(1, 1_000, 1_000);
        EntryChecks.OrderAuth[] memory none = new EntryChecks.OrderAuth[](0);
        vm.startPrank(ORACLE);
        zonal.verifyChunkZonal(d.h, d.zonePrices, _chunk(d, 0, 3), none, false);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ZoneImportCapacityExceeded.selector, uint64(0), uint16(1), uint256(1_200), uint256(1_000)));
        zonal.verifyChunkZonal(d.h, d.zonePrices, _chunk(d, 3, 4), none, true);
        vm.stopPrank();
    }

    // ------------------------------------------------------------- fuzz

    /// Any energies over two zones at any zone prices within the tariffs: either the
    /// settlement is refused as a negative rent, or money is conserved to the unit and
    /// the grid's wallet moves by the tariffs of its energy plus the rent.
    function testFuzz_zonalMoneyIsConserved(int32 tradeWh, int16 g2, int16 g4, uint64 p0, uint64 p1, uint256 seed) public {
        (p0, p1) = (EXPORT + p0 % (IMPORT - EXPORT + 1), EXPORT + p1 % (IMPORT - EXPORT + 1));
        int256 wh = int256(tradeWh) % 30_000; // within every wallet at the import tariff
        _warpPast(0);
        SettlementBuilder.Draft memory d = _zonalDraft(0, wh, _prices(p0, p1));
        (d.gridWh[1], d.gridWh[3]) = (int256(g2), int256(g4));
        SettlementBuilder.price(d, seed);
        int256 rent = SettlementBuilder.rentMilli(d);
        int256 before = _total();
        int256 gridBefore = wallets.balanceOf(0);
        if (rent < 0) {
            vm.expectRevert(abi.encodeWithSelector(MarketEvents.NegativeSpread.selector, uint64(0), rent));
            _submitZonal(d);
            return;
        }
        _submitZonal(d);
        _equal("money conserved", before, _total());
        int256 gridExact = SettlementBuilder.gridExactMilli(d);
        int256 gridDelta = wallets.balanceOf(0) - gridBefore;
        if (gridDelta * 1000 - gridExact <= -1000 || gridDelta * 1000 - gridExact >= 1000) {
            revert Mismatch("grid within a unit of tariffs + rent", gridExact, gridDelta * 1000);
        }
    }

    function _total() internal view returns (int256 sum) {
        for (uint32 id = 0; id <= 4; ++id) {
            sum += wallets.balanceOf(id);
        }
    }

    function _equal(string memory what, int256 expected, int256 actual) internal pure {
        if (expected != actual) revert Mismatch(what, expected, actual);
    }
}
