// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnergyMarket} from "../src/EnergyMarket.sol";
import {MarketEvents} from "../src/MarketEvents.sol";
import {MarketStorage} from "../src/MarketStorage.sol";
import {DisputeModule} from "../src/modules/DisputeModule.sol";
import {EntryChecks} from "../src/modules/EntryChecks.sol";
import {MandatesModule} from "../src/modules/MandatesModule.sol";
import {SettlementModule} from "../src/modules/SettlementModule.sol";
import {MarketFixture} from "./MarketFixture.sol";
import {SettlementBuilder} from "./SettlementBuilder.sol";
import {Signing} from "./Signing.sol";
import {vm} from "./Vm.sol";

/// @notice Every revert path the attack, fuzz and invariant tests do not reach, each
/// with the evidence the error carries.
contract RevertsTest is MarketFixture {
    uint256 internal constant FUNDS = 100_000_000;

    error Mismatch(string what, int256 expected, int256 actual);

    function setUp() public {
        _deployMarket(_tariffs(0, false), 100_000, 100_000);
        _registerHomes(3);
        for (uint32 id = 0; id <= 3; ++id) {
            _fund(id, FUNDS);
        }
        _standingMandates(1, 3, type(uint32).max);
        _bond(REWARD);
        _warpPast(0);
    }

    function _expect(bytes memory revertData) internal {
        vm.expectRevert(revertData);
    }

    function _trade(uint64 k, int256 wh) internal view returns (SettlementBuilder.Draft memory) {
        return _draft(k, _ids(1, 2), _wh(0, 0), _wh(wh, -wh));
    }

    // ------------------------------------------------------------ router, roles, registry

    function test_routerRefusesUnknownSelectorsAndClashingModules() public {
        (bool ok, bytes memory got) = address(market).call(abi.encodeWithSignature("nothing()"));
        _equal("unknown call", 0, ok ? int256(1) : int256(0));
        _equalBytes(abi.encodeWithSelector(MarketEvents.UnknownSelector.selector, bytes4(keccak256("nothing()"))), got);
        address[] memory modules = new address[](2);
        modules[0] = address(new SettlementModule());
        modules[1] = address(new SettlementModule());
        EnergyMarket.Setup memory setup = EnergyMarket.Setup(
            ADMIN, ORACLE, GRID_OPERATOR, token, 1, 1, 0, EPOCH, LENGTH, WINDOW, NOTICE, REWARD, _tariffs(0, false), 0, 0
        );
        _expect(
            abi.encodeWithSelector(
                MarketEvents.SelectorClash.selector, SettlementModule.settle.selector, modules[0], modules[1]
            )
        );
        new EnergyMarket(setup, modules);
    }

    function test_rolesRefuseStrangersAndBadConfirmation() public {
        bytes32 role = roles.ORACLE_ROLE();
        _expect(abi.encodeWithSelector(MarketEvents.AccessControlBadConfirmation.selector));
        vm.prank(ORACLE);
        roles.renounceRole(role, ADMIN);
        _expect(abi.encodeWithSelector(MarketEvents.AccessControlUnauthorizedAccount.selector, ORACLE, bytes32(0)));
        vm.prank(ORACLE);
        roles.grantRole(role, ORACLE);
    }

    function test_registryRefusesZeroAddressesAndMismatchedBatches() public {
        vm.startPrank(ADMIN);
        _expect(abi.encodeWithSelector(MarketEvents.ZeroAddress.selector));
        participants.register(address(0), address(1), 0, "x");
        _expect(abi.encodeWithSelector(MarketEvents.ZeroAddress.selector));
        participants.register(address(0xE1), address(0), 0, "no meter");
        _expect(abi.encodeWithSelector(MarketEvents.LengthMismatch.selector, uint256(1), uint256(0)));
        participants.registerBatch(new address[](1), new address[](0), new uint16[](1), new string[](1));
        vm.stopPrank();
        _expect(abi.encodeWithSelector(MarketEvents.NotParticipantOwner.selector, uint32(1), address(this)));
        participants.setMeterKey(1, address(0xE2));
    }

    function test_inactiveParticipantIsNotSettled() public {
        vm.prank(ADMIN);
        participants.updateParticipant(2, 0, false);
        SettlementBuilder.Draft memory d = _trade(0, 1_000);
        _expect(abi.encodeWithSelector(MarketEvents.InactiveParticipant.selector, uint32(2)));
        _submit(d);
    }

    function test_meterKeyRotationSignsOnlyLaterIntervals() public {
        vm.prank(vm.addr(ownerKey(1)));
        participants.setMeterKey(1, vm.addr(0x5EED));
        // Interval 1 has started (the clock is at the end of interval 0): the new key signs from 2.
        _equal("old key for interval 1", int256(uint256(uint160(vm.addr(meterKey(1))))), int256(uint256(uint160(participants.meterKeyOf(1, 1)))));
        _equal("new key from interval 2", int256(uint256(uint160(vm.addr(0x5EED)))), int256(uint256(uint160(participants.meterKeyOf(1, 2)))));
        // A reading of interval 0 signed by the new key proves nothing.
        SettlementBuilder.Draft memory d = _trade(0, 1_000);
        _submit(d);
        DisputeModule.Reading memory r = DisputeModule.Reading(1, 0, 0, 0);
        bytes memory sig = Signing.signReading(0x5EED, address(market), r);
        _expect(abi.encodeWithSelector(MarketEvents.BadMeterSignature.selector, uint32(1), vm.addr(0x5EED), vm.addr(meterKey(1))));
        disputes.dispute(0, _oneChunkHash(SettlementBuilder.entries(d)), 0, _oneChunk(SettlementBuilder.entries(d)), r, sig);
    }

    // ------------------------------------------------------------ terms and capacity

    function test_termsRefuseBadTariffsOrderAndIndex() public {
        uint64 from = 200;
        MarketStorage.Tariffs memory bad = MarketStorage.Tariffs(100_000, 100_000, 90_000, 20_000, 0, false);
        vm.startPrank(GRID_OPERATOR);
        _expect(abi.encodeWithSelector(MarketEvents.InvalidTariffs.selector, uint256(100_000), uint256(90_000), uint256(20_000)));
        terms.scheduleTerms(from, bad);
        terms.scheduleTerms(from, _tariffs(0, true));
        // A later version may replace one not yet within its notice period, never the first.
        terms.scheduleTerms(from, _tariffs(1_000, true));
        _equal("replaced, not added", 2, int256(terms.termsCount()));
        vm.stopPrank();
        _submit(_trade(0, 1_000));
        vm.prank(GRID_OPERATOR);
        _expect(abi.encodeWithSelector(MarketEvents.CapacityForPastInterval.selector, uint64(0), uint64(1)));
        terms.setCapacity(0, 1, 1);
        _warpPast(1);
        SettlementBuilder.Draft memory d = _trade(1, 1_000);
        d.h.termsIndex = 1;
        _expect(abi.encodeWithSelector(MarketEvents.WrongTermsIndex.selector, uint64(1), uint256(1)));
        _submit(d);
    }

    function test_timeOfUseTariffPricesPeakHours() public {
        MarketStorage.Tariffs memory tou = MarketStorage.Tariffs(IMPORT, PEAK_IMPORT, EXPORT, 0, 1 << 23, false); // 23:00 UTC
        uint64 from = 300;
        vm.prank(GRID_OPERATOR);
        terms.scheduleTerms(from, tou);
        for (uint64 k = from; k < from + 96; ++k) {
            (, uint256 imp,,,) = terms.termsAt(k);
            uint256 hour = (uint256(_startOf(k)) / 3600) % 24;
            _equal("peak at 23h only", int256(uint256(hour == 23 ? PEAK_IMPORT : IMPORT)), int256(imp));
        }
    }

    // ------------------------------------------------------------ mandates and orders

    function test_mandatesRefuseBadBoundsSignaturesAndRanges() public {
        MandatesModule.Mandate memory m = _mandateOf(1, 300_000, 60_000, 0, 10, 5);
        (m.minSocPpm, m.maxSocPpm) = (600_000, 500_000);
        bytes memory sig = Signing.signMandate(ownerKey(1), address(market), m);
        _expect(abi.encodeWithSelector(MarketEvents.InvalidSocBounds.selector, uint32(1), uint32(600_000), uint32(500_000)));
        mandates.submitMandate(m, sig);
        m = _mandateOf(1, 300_000, 1 << 33, 0, 10, 5);
        sig = Signing.signMandate(ownerKey(1), address(market), m);
        _expect(abi.encodeWithSelector(MarketEvents.ValueOutOfRange.selector, "minSellPrice", uint256(1 << 33), (uint256(1) << 32) - 1));
        mandates.submitMandate(m, sig);
        MandatesModule.Mandate[] memory list = new MandatesModule.Mandate[](1);
        _expect(abi.encodeWithSelector(MarketEvents.LengthMismatch.selector, uint256(1), uint256(0)));
        mandates.submitMandates(list, new bytes[](0));
        bytes memory cancellation = Signing.signCancellation(ownerKey(2), address(market), 1, 4);
        _expect(abi.encodeWithSelector(MarketEvents.BadCancellationSignature.selector, uint32(1), vm.addr(ownerKey(2))));
        mandates.cancelOrders(1, 4, cancellation);
        mandates.cancelOrders(1, 4, Signing.signCancellation(ownerKey(1), address(market), 1, 4));
        (uint64 orderFloor,) = mandates.nonceFloors(1);
        _equal("order floor", 5, int256(uint256(orderFloor)));
    }

    function test_mandatePriceLimitsBindBothWays() public {
        _submitMandate(_mandateOf(1, 100_000, 60_000, 0, type(uint32).max, 2));
        SettlementBuilder.Draft memory d = _trade(0, 1_000);
        _expect(abi.encodeWithSelector(MarketEvents.MandatePriceExceeded.selector, uint32(1), -d.amount[0] * 1000, int256(100_000_000)));
        _submit(d);
        _submitMandate(_mandateOf(2, 300_000, 250_000, 0, type(uint32).max, 2));
        _submitMandate(_mandateOf(1, 300_000, 60_000, 0, type(uint32).max, 3));
        d = _trade(0, 1_000);
        _expect(abi.encodeWithSelector(MarketEvents.MandatePriceBelowMinimum.selector, uint32(2), d.amount[1] * 1000, int256(250_000_000)));
        _submit(d);
    }

    function _byOrder(SettlementBuilder.Draft memory d, Signing.Order memory o) internal view {
        d.byOrder[0] = true;
        d.orders = new EntryChecks.OrderAuth[](1);
        d.orders[0] = Signing.signOrder(ownerKey(1), address(market), 1, d.h.interval, o);
    }

    function test_ordersRefuseExpirySideLimitAndCount() public {
        SettlementBuilder.Draft memory d = _trade(0, 1_000);
        _byOrder(d, Signing.Order(Signing.BUY, 1_000, 300_000, uint64(block.timestamp - 1), 1));
        _expect(abi.encodeWithSelector(MarketEvents.OrderExpired.selector, uint32(1), uint64(block.timestamp - 1), block.timestamp));
        _submit(d);
        _byOrder(d, Signing.Order(Signing.SELL, 1_000, 0, type(uint64).max, 1));
        _expect(abi.encodeWithSelector(MarketEvents.OrderSideMismatch.selector, uint32(1), uint8(1), int256(1_000)));
        _submit(d);
        d = _draft(0, _ids(1, 2), _wh(0, 0), _wh(-1_000, 1_000));
        _byOrder(d, Signing.Order(Signing.SELL, 1_000, 200_000, type(uint64).max, 1));
        _expect(abi.encodeWithSelector(MarketEvents.OrderPriceBelowLimit.selector, uint32(1), d.amount[0] * 1000, int256(200_000_000)));
        _submit(d);
        d = _trade(0, 1_000);
        d.byOrder[0] = true;
        _expect(abi.encodeWithSelector(MarketEvents.MissingOrder.selector, uint32(1)));
        _submit(d);
        d = _trade(0, 1_000);
        d.orders = new EntryChecks.OrderAuth[](1);
        _expect(abi.encodeWithSelector(MarketEvents.UnusedOrders.selector, uint256(1)));
        _submit(d);
    }

    // ------------------------------------------------------------ settlement shape

    function test_settlementRefusesShapeAndPriceErrors() public {
        SettlementBuilder.Draft memory d = _trade(0, 1_000);
        d.h.interval = 1;
        _expect(abi.encodeWithSelector(MarketEvents.IntervalOutOfOrder.selector, uint64(0), uint64(1)));
        _submit(d);
        d = _draft(0, _ids(2, 1), _wh(0, 0), _wh(1_000, -1_000));
        _expect(abi.encodeWithSelector(MarketEvents.ParticipantsNotAscending.selector, uint32(2), uint32(1)));
        _submit(d);
        d = _trade(0, 1_000);
        d.h.p2pPrice = uint64(IMPORT + 1);
        _expect(abi.encodeWithSelector(MarketEvents.PriceOutOfRange.selector, uint256(IMPORT + 1), uint256(EXPORT), uint256(IMPORT)));
        _submit(d);
        d = _draft(0, _ids(1, 2), _wh(0, 0), _wh(1_000, -999));
        _expect(abi.encodeWithSelector(MarketEvents.P2PEnergyNotConserved.selector, uint64(0), int256(1)));
        _submit(d);
        d = _draft(0, _ids(1, 2), _wh(0, 0), _wh(0, 0));
        d.excluded[0] = true;
        d.amount[0] = 5;
        _expect(abi.encodeWithSelector(MarketEvents.BadExclusion.selector, uint32(1)));
        _submit(d);
        // A verify chunk whose reversal might not fit one transaction.
        _expect(abi.encodeWithSelector(MarketEvents.ChunkTooLarge.selector, uint64(0), uint256(1_251), uint256(1_250)));
        vm.prank(ORACLE);
        settlement.verifyChunk(d.h, new uint256[](1_251), new EntryChecks.OrderAuth[](0), false);
        uint256[] memory words = new uint256[](10_001);
        _expect(abi.encodeWithSelector(MarketEvents.TooManyEntries.selector, uint64(0), uint256(10_001), uint256(10_000)));
        vm.prank(ORACLE);
        settlement.settle(d.h, words, new EntryChecks.OrderAuth[](0));
    }

    function test_balanceAndLockedCreditRanges() public {
        vm.prank(ADMIN);
        _expect(abi.encodeWithSelector(MarketEvents.ValueOutOfRange.selector, "limit", uint256(1) << 40, (uint256(1) << 40) - 1));
        wallets.setCreditLimit(1, uint256(1) << 40);
        // A balance beyond int72 (some 2.4e15 tokens).
        uint256 huge = uint256(1) << 71;
        token.mint(ADMIN, huge);
        vm.prank(ADMIN);
        token.approve(address(market), huge);
        vm.prank(ADMIN);
        _expect(abi.encodeWithSelector(MarketEvents.BalanceOutOfRange.selector, uint32(1), int256(FUNDS + huge)));
        wallets.deposit(1, huge);
    }

    // ------------------------------------------------------------ chunked settlement

    function _chunks(SettlementBuilder.Draft memory d) internal pure returns (uint256[] memory a, uint256[] memory b) {
        uint256[] memory words = SettlementBuilder.entries(d);
        (a, b) = (new uint256[](1), new uint256[](words.length - 1));
        a[0] = words[0];
        for (uint256 i = 1; i < words.length; ++i) b[i - 1] = words[i];
    }

    function _three(uint64 k) internal view returns (SettlementBuilder.Draft memory) {
        uint32[] memory ids = new uint32[](3);
        (ids[0], ids[1], ids[2]) = (1, 2, 3);
        int256[] memory g = new int256[](3);
        int256[] memory p = new int256[](3);
        (g[0], p[0], p[1], g[2]) = (500, 1_000, -1_000, -300);
        return _draft(k, ids, g, p);
    }

    function test_chunkedSettlementVerifiesThenApplies() public {
        SettlementBuilder.Draft memory d = _three(0);
        (uint256[] memory a, uint256[] memory b) = _chunks(d);
        EntryChecks.OrderAuth[] memory none = new EntryChecks.OrderAuth[](0);
        vm.startPrank(ORACLE);
        _expect(abi.encodeWithSelector(MarketEvents.EmptySettlement.selector, uint64(0)));
        settlement.verifyChunk(d.h, new uint256[](0), none, false);
        settlement.verifyChunk(d.h, a, none, false);
        _expect(abi.encodeWithSelector(MarketEvents.PendingIntervalOpen.selector, uint64(0), uint8(1)));
        settlement.settle(d.h, a, none);
        MarketStorage.Header memory other = MarketStorage.Header(d.h.interval, bytes32(uint256(1)), d.h.p2pPrice, d.h.termsIndex);
        _expect(abi.encodeWithSelector(MarketEvents.HeaderMismatch.selector, uint64(0), keccak256(abi.encode(d.h)), keccak256(abi.encode(other))));
        settlement.verifyChunk(other, b, none, true);
        _expect(abi.encodeWithSelector(MarketEvents.NotVerified.selector, uint64(0), uint8(1)));
        settlement.applyChunk(0, 0, a);
        settlement.verifyChunk(d.h, b, none, true);
        _expect(abi.encodeWithSelector(MarketEvents.VerificationClosed.selector, uint64(0), uint32(2)));
        settlement.verifyChunk(d.h, b, none, true);
        vm.stopPrank();
        // Withdrawals wait while an interval is pending.
        vm.prank(vm.addr(ownerKey(1)));
        _expect(abi.encodeWithSelector(MarketEvents.PendingIntervalOpen.selector, uint64(0), uint8(2)));
        wallets.withdraw(1);
        // Anyone applies, in order, with exactly the verified entries.
        _expect(abi.encodeWithSelector(MarketEvents.ChunkOutOfOrder.selector, uint64(0), uint256(0), uint256(1)));
        settlement.applyChunk(0, 1, b);
        _expect(abi.encodeWithSelector(MarketEvents.ChunkHashMismatch.selector, uint64(0), uint256(0), keccak256(abi.encodePacked(a)), keccak256(abi.encodePacked(b))));
        settlement.applyChunk(0, 0, b);
        settlement.applyChunk(0, 0, a);
        vm.prank(ORACLE);
        _expect(abi.encodeWithSelector(MarketEvents.PendingPartlyApplied.selector, uint64(0), uint32(1), uint32(2)));
        settlement.abandonPending();
        settlement.applyChunk(0, 1, b);
        _equal("next interval", 1, int256(uint256(terms.nextInterval())));
        _equal("home 1 paid", int256(FUNDS) + d.amount[0], wallets.balanceOf(1));
        // A chunked interval is disputed with its chunks' hashes and the chunk that shows it.
        uint256[] memory all = SettlementBuilder.entries(d);
        (DisputeModule.Reading memory r, bytes memory sig) = _signedReading(3, 0, 0, 300);
        _expect(abi.encodeWithSelector(MarketEvents.NoContradiction.selector, uint32(3), int256(-300), int256(-300)));
        disputes.dispute(0, _hashes(a, b), 1, _oneChunk(b), r, sig);
        _expect(abi.encodeWithSelector(MarketEvents.EntriesMismatch.selector, uint64(0), keccak256(abi.encodePacked(bytes32(0), keccak256(abi.encodePacked(all))))));
        disputes.dispute(0, _oneChunkHash(all), 0, _oneChunk(all), r, sig);
    }

    function test_pendingIntervalIsAbandonedByTheOracleOrOnceStale() public {
        SettlementBuilder.Draft memory d = _three(0);
        (uint256[] memory a,) = _chunks(d);
        _expect(abi.encodeWithSelector(MarketEvents.NoPendingInterval.selector));
        settlement.abandonPending();
        vm.prank(ORACLE);
        settlement.verifyChunk(d.h, a, new EntryChecks.OrderAuth[](0), false);
        _expect(abi.encodeWithSelector(MarketEvents.PendingNotStale.selector, uint64(0), block.timestamp + WINDOW));
        settlement.abandonPending();
        vm.warp(block.timestamp + WINDOW);
        settlement.abandonPending();
        _submit(d);
    }

    function test_disputeOfAChunkedIntervalBeingAppliedReversesTheAppliedChunks() public {
        SettlementBuilder.Draft memory d = _three(0);
        (uint256[] memory a, uint256[] memory b) = _chunks(d);
        vm.startPrank(ORACLE);
        settlement.verifyChunk(d.h, a, new EntryChecks.OrderAuth[](0), false);
        settlement.verifyChunk(d.h, b, new EntryChecks.OrderAuth[](0), true);
        vm.stopPrank();
        settlement.applyChunk(0, 0, a);
        // Home 1 really imported nothing. Its chunk is the one applied: reversed at once.
        (DisputeModule.Reading memory r, bytes memory sig) = _signedReading(1, 0, 0, 0);
        disputes.dispute(0, _hashes(a, b), 0, _oneChunk(a), r, sig);
        _equal("home 1 restored", int256(FUNDS), wallets.balanceOf(1));
        (, uint8 phase,,,,,) = disputes.pending();
        _equal("pending dropped", 0, int256(uint256(phase)));
        _equal("interval 0 is next again", 0, int256(uint256(terms.nextInterval())));
    }

    // ------------------------------------------------------------ disputes and the bond

    function test_disputeRefusesWhatIsNoEvidence() public {
        (DisputeModule.Reading memory r, bytes memory sig) = _signedReading(1, 0, 1_000, 0);
        _expect(abi.encodeWithSelector(MarketEvents.NotDisputable.selector, uint64(0)));
        disputes.dispute(0, _oneChunkHash(new uint256[](0)), 0, _oneChunk(new uint256[](0)), r, sig);
        SettlementBuilder.Draft memory d = _trade(0, 1_000);
        _submit(d);
        uint256[] memory words = SettlementBuilder.entries(d);
        _expect(abi.encodeWithSelector(MarketEvents.BadChunkProof.selector, uint64(0), uint256(0), uint256(0), uint256(1)));
        disputes.dispute(0, _oneChunkHash(words), 0, new uint256[][](0), r, sig);
        (r, sig) = _signedReading(1, 1, 1_000, 0);
        _expect(abi.encodeWithSelector(MarketEvents.ReadingForOtherInterval.selector, uint64(0), uint64(1)));
        disputes.dispute(0, _oneChunkHash(words), 0, _oneChunk(words), r, sig);
        (DisputeModule.Reading memory a, bytes memory sigA) = _signedReading(1, 0, 1_000, 0);
        _expect(abi.encodeWithSelector(MarketEvents.NotEquivocation.selector, uint32(1)));
        disputes.reportEquivocation(a, sigA, a, sigA);
        // Two different readings of one interval from one meter freeze its participant.
        (DisputeModule.Reading memory b, bytes memory sigB) = _signedReading(1, 0, 2_000, 0);
        disputes.reportEquivocation(a, sigA, b, sigB);
        (,,, bool frozen,,,) = participants.accountOf(1);
        _equal("frozen", 1, frozen ? int256(1) : int256(0));
        vm.warp(block.timestamp + 2 * WINDOW);
        _expect(abi.encodeWithSelector(MarketEvents.IntervalFinal.selector, uint64(0), (block.timestamp - 2 * WINDOW) / WINDOW * WINDOW + 2 * WINDOW));
        disputes.dispute(0, _oneChunkHash(words), 0, _oneChunk(words), a, sigA);
    }

    function test_bondIsLockedUntilEverySettlementIsFinal() public {
        _submit(_trade(0, 1_000));
        (,, uint256 withdrawableAt) = disputes.bond();
        vm.prank(ORACLE);
        _expect(abi.encodeWithSelector(MarketEvents.BondLocked.selector, withdrawableAt));
        disputes.withdrawBond(1);
        vm.warp(withdrawableAt);
        vm.prank(ORACLE);
        _expect(abi.encodeWithSelector(MarketEvents.InsufficientBond.selector, uint256(REWARD), uint256(REWARD) + 1));
        disputes.withdrawBond(uint256(REWARD) + 1);
        vm.prank(ORACLE);
        disputes.withdrawBond(REWARD);
        _warpPast(1);
        SettlementBuilder.Draft memory d = _trade(1, 1_000);
        _expect(abi.encodeWithSelector(MarketEvents.BondTooLow.selector, uint256(0), uint256(REWARD)));
        _submit(d);
    }

    function _equal(string memory what, int256 expected, int256 actual) internal pure {
        if (expected != actual) revert Mismatch(what, expected, actual);
    }

    function _equalBytes(bytes memory expected, bytes memory actual) internal pure {
        if (keccak256(expected) != keccak256(actual)) revert Mismatch("bytes", int256(expected.length), int256(actual.length));
    }
}
