// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketEvents} from "../src/MarketEvents.sol";
import {MarketStorage} from "../src/MarketStorage.sol";
import {DisputeModule} from "../src/modules/DisputeModule.sol";
import {EntryChecks} from "../src/modules/EntryChecks.sol";
import {MandatesModule} from "../src/modules/MandatesModule.sol";
import {MarketFixture} from "./MarketFixture.sol";
import {SettlementBuilder} from "./SettlementBuilder.sol";
import {console, vm} from "./Vm.sol";

/// @notice Shared batteries (issue 12): participant 1 is the community (the storage
/// operator), 2 and 3 are homes, 4 and 5 are home 2's and home 3's accounts in shared
/// battery 7 (10 kWh each). The terms charge 0.02 per kWh a share takes in. Each test is
/// an attack by someone holding the oracle key (or a stranger) on the fee, and shows it
/// refused or undone.
contract SharedBatteriesTest is MarketFixture {
    uint256 internal constant TEN = 10_000_000; // 10 tokens in units
    uint32 internal constant FEE = 20_000; // 0.02 per kWh
    uint32 internal constant OPERATOR = 1;
    uint32 internal constant BATTERY = 7;
    uint64 internal constant SHARE_WH = 10_000;
    uint32 internal constant ETA = 950_000; // charge and discharge efficiency, millionths
    int256 internal constant PWH = 1e12;
    address internal constant AUDITOR = address(0xA0D1);

    error Mismatch(string what, int256 expected, int256 actual);

    function setUp() public {
        storageFee = FEE;
        storageOperator = OPERATOR;
        _deployMarket(_tariffs(0, false), type(uint64).max, type(uint64).max);
        _registerHomes(3);
        vm.startPrank(ADMIN);
        // Account 4 starts empty, account 5 with 5 kWh stored.
        for (uint32 id = 4; id <= 5; ++id) {
            sharedBatteries.registerShare(
                vm.addr(ownerKey(id)), vm.addr(meterKey(id)), 0, "share", BATTERY, SHARE_WH, id == 5 ? 5000 : 0, ETA, ETA
            );
        }
        vm.stopPrank();
        for (uint32 id = 0; id <= 5; ++id) {
            _fund(id, TEN);
        }
        _standingMandates(1, 3, type(uint32).max);
        // A share's owner signs for the storage fee on top of the import tariff.
        for (uint32 id = 4; id <= 5; ++id) {
            _submitMandate(_mandateOf(id, 300_000 + FEE, 60_000, 0, type(uint32).max, 1));
        }
        _bond(5 * uint256(REWARD));
    }

    /// Home 2 sells `wh` to its account 4 (P2P); the account pays the storage fee.
    function _chargeAccount(uint64 k, int256 wh) internal returns (SettlementBuilder.Draft memory d) {
        _warpPast(k);
        d = _draft(k, _ids(2, 4), _wh(0, 0), _wh(-wh, wh));
        d.amount[1] -= _fee(wh);
    }

    function _fee(int256 wh) internal pure returns (int256) {
        return wh > 0 ? (wh * int256(uint256(FEE)) + 500) / 1000 : int256(0);
    }

    function _balances() internal view returns (int256[] memory b) {
        b = new int256[](6);
        for (uint32 id = 0; id <= 5; ++id) {
            (,,,, b[id],,) = participants.accountOf(id);
        }
    }

    // ------------------------------------------------------------- what is promised

    /// The account pays the energy's price plus 0.02 x 2 kWh = 40,000 units; the fee, and
    /// only the fee, lands in the operator's wallet; money is conserved to the unit.
    function test_aShareEntryPaysTheStorageFeeIntoTheOperatorsWallet() public {
        int256[] memory before = _balances();
        SettlementBuilder.Draft memory d = _chargeAccount(0, 2000);
        vm.recordLogs();
        _submit(d);
        int256[] memory after_ = _balances();
        _equal("operator", 40_000, after_[1] - before[1]);
        _equal("home 2", d.amount[0], after_[2] - before[2]);
        _equal("account 4", d.amount[1], after_[4] - before[4]);
        _equal("grid", -(d.amount[0] + d.amount[1] + 40_000), after_[0] - before[0]);
        int256 total;
        for (uint32 id = 0; id <= 5; ++id) {
            total += after_[id] - before[id];
        }
        _equal("conserved", 0, total);
        // Summed over the owner's two wallets the energy price cancels: it paid the fee.
        _equal("owner's net", -40_000, d.amount[0] + d.amount[1]);
        (, uint256 fee, uint32 operator) = sharedBatteries.storageTermsAt(0);
        _equal("terms fee", int256(uint256(FEE)), int256(fee));
        _equal("terms operator", int256(uint256(OPERATOR)), int256(uint256(operator)));
        (uint32 battery, uint64 capacity) = sharedBatteries.shareOf(4);
        _equal("battery", int256(uint256(BATTERY)), int256(uint256(battery)));
        _equal("share", int256(uint256(SHARE_WH)), int256(uint256(capacity)));
    }

    /// Energy out of an account pays no storage fee.
    function test_drawingFromAnAccountPaysNoFee() public {
        _warpPast(0);
        SettlementBuilder.Draft memory d = _draft(0, _ids(3, 5), _wh(0, 0), _wh(1500, -1500));
        int256[] memory before = _balances();
        _submit(d);
        _equal("operator", 0, _balances()[1] - before[1]);
        d = _draft(1, _ids(3, 5), _wh(0, 0), _wh(1500, -1500));
        d.amount[1] -= _fee(1500);
        _warpPast(1);
        vm.expectPartialRevert(MarketEvents.PaymentMismatch.selector);
        _submit(d);
    }

    // ------------------------------------------------------------- attacks

    /// The oracle leaves the fee out of the account's wallet change: refused, naming the
    /// account and its wallet change with the fee added back.
    function test_attack_feeNotChargedIsRefused() public {
        SettlementBuilder.Draft memory d = _chargeAccount(0, 2000);
        d.amount[1] += 40_000;
        vm.expectRevert(
            abi.encodeWithSelector(MarketEvents.PaymentMismatch.selector, uint32(4), d.amount[1] + 40_000, d.exactMilli[1])
        );
        _submit(d);
    }

    /// The oracle charges a storage fee to a home that holds no share: refused.
    function test_attack_feeChargedToANonShareIsRefused() public {
        _warpPast(0);
        SettlementBuilder.Draft memory d = _draft(0, _ids(2, 3), _wh(0, 0), _wh(-2000, 2000));
        d.amount[1] -= 40_000;
        vm.expectRevert(
            abi.encodeWithSelector(MarketEvents.PaymentMismatch.selector, uint32(3), d.amount[1], d.exactMilli[1])
        );
        _submit(d);
    }

    /// The oracle charges the account the fee and hands it to the seller (its accomplice)
    /// instead of the operator: the seller's entry is refused. The settlement names no
    /// operator: the fees go where the terms say, nowhere else.
    function test_attack_feeSentElsewhereIsRefused() public {
        SettlementBuilder.Draft memory d = _chargeAccount(0, 2000);
        d.amount[0] += 40_000;
        vm.expectPartialRevert(MarketEvents.PaymentMismatch.selector);
        _submit(d);
    }

    /// The fee is overcharged by one unit (beyond the entry's rounding): refused.
    function test_attack_feeOverchargedIsRefused() public {
        SettlementBuilder.Draft memory d = _chargeAccount(0, 2000);
        d.amount[1] -= 1000;
        vm.expectPartialRevert(MarketEvents.PaymentMismatch.selector);
        _submit(d);
    }

    /// Only the grid operator or the admin schedules a storage fee, with the terms'
    /// notice, to a registered participant; later tariffs carry the fee over.
    function test_storageFeeChangesOnlyWithNoticeAndCarriesOver() public {
        vm.prank(ORACLE);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.AccessControlUnauthorizedAccount.selector, ORACLE, bytes32(0)));
        sharedBatteries.scheduleStorageFee(500, 1, 2);
        uint256 earliest = block.timestamp + NOTICE;
        vm.prank(GRID_OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.NoticeTooShort.selector, uint64(1), uint256(EPOCH) + LENGTH, earliest));
        sharedBatteries.scheduleStorageFee(1, 1_000_000, 2);
        vm.prank(GRID_OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.UnknownParticipant.selector, uint32(99)));
        sharedBatteries.scheduleStorageFee(500, 1, 99);
        vm.prank(GRID_OPERATOR);
        sharedBatteries.scheduleStorageFee(500, 30_000, 3);
        vm.prank(GRID_OPERATOR);
        terms.scheduleTerms(600, MarketStorage.Tariffs(310_000, 310_000, 60_000, 0, 0, false));
        (, uint256 fee, uint32 operator) = sharedBatteries.storageTermsAt(499);
        _equal("fee before", int256(uint256(FEE)), int256(fee));
        (, fee, operator) = sharedBatteries.storageTermsAt(550);
        _equal("fee after", 30_000, int256(fee));
        _equal("operator after", 3, int256(uint256(operator)));
        (, uint256 importPrice,,,) = terms.termsAt(550);
        _equal("tariffs kept", int256(uint256(IMPORT)), int256(importPrice));
        (, fee, operator) = sharedBatteries.storageTermsAt(700);
        _equal("fee carried over", 30_000, int256(fee));
        _equal("operator carried over", 3, int256(uint256(operator)));
    }

    /// Only the admin registers shares, of a positive size; nobody else is a share.
    function test_onlyTheAdminRegistersShares() public {
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.AccessControlUnauthorizedAccount.selector, ORACLE, bytes32(0)));
        vm.prank(ORACLE);
        sharedBatteries.registerShare(address(0xBEEF), address(0xBEEF), 0, "x", 0, 1000, 0, ETA, ETA);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ShareCapacityOutOfRange.selector, uint64(0), uint64((1 << 48) - 1)));
        vm.prank(ADMIN);
        sharedBatteries.registerShare(address(0xBEEF), address(0xBEEF), 0, "x", 0, 0, 0, ETA, ETA);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ValueOutOfRange.selector, "storedWh", 1001, 1000));
        vm.prank(ADMIN);
        sharedBatteries.registerShare(address(0xBEEF), address(0xBEEF), 0, "x", 0, 1000, 1001, ETA, ETA);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ValueOutOfRange.selector, "chargePpm", 0, 1e6));
        vm.prank(ADMIN);
        sharedBatteries.registerShare(address(0xBEEF), address(0xBEEF), 0, "x", 0, 1000, 0, 0, ETA);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ValueOutOfRange.selector, "dischargePpm", 1e6 + 1, 1e6));
        vm.prank(ADMIN);
        sharedBatteries.registerShare(address(0xBEEF), address(0xBEEF), 0, "x", 0, 1000, 0, ETA, 1e6 + 1);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.NotAShare.selector, uint32(2)));
        sharedBatteries.shareOf(2);
    }

    /// A dispute that reverses the interval takes the fees back out of the operator's
    /// wallet: every balance is as before.
    function test_aDisputeTakesTheFeesBack() public {
        int256[] memory before = _balances();
        SettlementBuilder.Draft memory d = _chargeAccount(0, 2000);
        _submit(d);
        // Home 2's meter says it exported 1,999 Wh, not 2,000.
        (DisputeModule.Reading memory r, bytes memory sig) = _signedReading(2, 0, 0, 1999);
        vm.prank(AUDITOR);
        disputes.dispute(0, _oneChunkHash(SettlementBuilder.entries(d)), 0, _oneChunk(SettlementBuilder.entries(d)), r, sig);
        int256[] memory after_ = _balances();
        for (uint32 id = 0; id <= 5; ++id) {
            _equal("reversed", before[id], after_[id]);
        }
        // Settled again, correctly: the fee is paid once.
        d = _chargeAccount(0, 1999);
        _submit(d);
        _equal("operator", _fee(1999), _balances()[1] - before[1]);
    }

    /// @dev Interval 0 with home 2 selling 3 kWh into its account 4 (which pays the fee),
    /// verified in two chunks of one entry each, not yet applied.
    function _verifiedTwoChunks() internal returns (uint256[] memory a, uint256[] memory b) {
        SettlementBuilder.Draft memory d = _draft(0, _ids(2, 4), _wh(0, 0), _wh(-3000, 3000));
        _warpPast(0);
        d.amount[1] -= _fee(3000);
        uint256[] memory words = SettlementBuilder.entries(d);
        (a, b) = (new uint256[](1), new uint256[](1));
        (a[0], b[0]) = (words[0], words[1]);
        EntryChecks.OrderAuth[] memory none = new EntryChecks.OrderAuth[](0);
        vm.startPrank(ORACLE);
        settlement.verifyChunk(d.h, a, none, false);
        settlement.verifyChunk(d.h, b, none, true);
        vm.stopPrank();
    }

    /// A settlement in chunks pays the operator when its last chunk applies.
    function test_aChunkedSettlementPaysTheFeesOnce() public {
        int256[] memory before = _balances();
        (uint256[] memory a, uint256[] memory b) = _verifiedTwoChunks();
        settlement.applyChunk(0, 0, a);
        _equal("nothing before the last chunk", 0, _balances()[1] - before[1]);
        settlement.applyChunk(0, 1, b);
        _equal("operator", 60_000, _balances()[1] - before[1]);
    }

    /// A dispute of an interval settled in two chunks, home 2 selling into its account 4:
    /// the reversal takes each chunk back in its own call, the account's energy with the
    /// share entry and the operator's fees and the grid's side with the last chunk; every
    /// balance and the account's energy are as before, to the unit and the pWh.
    function test_aChunkedDisputeReversesTheSharesEnergyAndFeesInItsLastChunk() public {
        int256[] memory before = _balances();
        int256 energyBefore = _deliverable(4);
        (uint256[] memory a, uint256[] memory b) = _verifiedTwoChunks();
        settlement.applyChunk(0, 0, a);
        settlement.applyChunk(0, 1, b);
        _equal("account charged", energyBefore + 3000 * int256(uint256(ETA)) * int256(uint256(ETA)), _deliverable(4));
        // Home 2's meter says it exported 2,999 Wh, not 3,000 (chunk 0).
        (DisputeModule.Reading memory r, bytes memory sig) = _signedReading(2, 0, 0, 2999);
        vm.prank(AUDITOR);
        disputes.dispute(0, _hashes(a, b), 0, _oneChunk(a), r, sig);
        disputes.reverseChunk(0, 1, b);
        _equal("the share's energy goes back with its entry", energyBefore, _deliverable(4));
        _equal("the fees stay until the last chunk", 60_000, _balances()[1] - before[1]);
        disputes.reverseChunk(0, 0, a);
        int256[] memory after_ = _balances();
        for (uint32 id = 0; id <= 5; ++id) {
            _equal("reversed", before[id], after_[id]);
        }
    }

    // ------------------------------------------------------------- stored energy

    function _deliverable(uint32 id) internal view returns (int256 pwh) {
        (pwh,,,) = sharedBatteries.shareEnergyOf(id);
    }

    /// Registered energy, then each entry moves the account exactly: 2,000 Wh in at the
    /// meter can give back 2,000 x 0.95 x 0.95 Wh; 1,000 Wh out takes 1,000 Wh.
    function test_anAccountsEnergyFollowsItsEntriesExactly() public {
        _equal("registered empty", 0, _deliverable(4));
        _equal("registered with 5 kWh", 5000 * 950_000 * 1e6, _deliverable(5));
        (, int256 capacity, uint32 c, uint32 dEff) = sharedBatteries.shareEnergyOf(4);
        _equal("capacity", 10_000 * 950_000 * 1e6, capacity);
        _equal("efficiencies", int256(uint256(ETA)) * 2, int256(uint256(c) + dEff));
        _submit(_chargeAccount(0, 2000));
        _equal("after 2 kWh in", 2000 * 950_000 * 950_000, _deliverable(4));
        _warpPast(1);
        _submit(_draft(1, _ids(2, 4), _wh(0, 0), _wh(1000, -1000)));
        _equal("after 1 kWh out", 2000 * 950_000 * 950_000 - 1000 * PWH, _deliverable(4));
    }

    /// Filled to exactly its share, then one Wh more: refused, naming the numbers. (A
    /// 9,500 Wh share at 95 % charge efficiency holds 10,000 Wh taken in at the meter.)
    function test_attack_rogueOracleOverFillsAnAccount() public {
        uint32 id = participants.participantCount();
        vm.prank(ADMIN);
        sharedBatteries.registerShare(vm.addr(ownerKey(id)), vm.addr(meterKey(id)), 0, "s", BATTERY, 9500, 0, ETA, ETA);
        _fund(id, TEN);
        _submitMandate(_mandateOf(id, 300_000 + FEE, 60_000, 0, type(uint32).max, 1));
        _warpPast(0);
        SettlementBuilder.Draft memory d = _draft(0, _ids(2, id), _wh(0, 0), _wh(-10_001, 10_001));
        d.amount[1] -= _fee(10_001);
        int256 capacity = 9500 * 950_000 * 1e6;
        vm.expectRevert(
            abi.encodeWithSelector(
                MarketEvents.ShareEnergyOutOfRange.selector, uint64(0), id, int256(10_001), int256(0),
                int256(10_001) * 950_000 * 950_000, capacity
            )
        );
        _submit(d);
        d = _draft(0, _ids(2, id), _wh(0, 0), _wh(-10_000, 10_000));
        d.amount[1] -= _fee(10_000);
        _submit(d);
        _equal("full", capacity, _deliverable(id));
        // Full: not one Wh more, not even from the grid.
        _warpPast(1);
        d = _draft(1, _ids(2, id), _wh(0, 1), _wh(0, 0));
        d.amount[1] -= _fee(1);
        vm.expectPartialRevert(MarketEvents.ShareEnergyOutOfRange.selector);
        _submit(d);
    }

    /// Account 5 can deliver 4,750 Wh (5 kWh stored at 95 %): 4,751 out is refused,
    /// 4,750 settles, and then not one Wh more.
    function test_attack_rogueOracleOverDrainsAnAccount() public {
        _warpPast(0);
        SettlementBuilder.Draft memory d = _draft(0, _ids(3, 5), _wh(0, 0), _wh(4751, -4751));
        vm.expectRevert(
            abi.encodeWithSelector(
                MarketEvents.ShareEnergyOutOfRange.selector, uint64(0), uint32(5), int256(-4751), 4750 * PWH, -PWH,
                int256(10_000) * 950_000 * 1e6
            )
        );
        _submit(d);
        _submit(_draft(0, _ids(3, 5), _wh(0, 0), _wh(4750, -4750)));
        _equal("empty", 0, _deliverable(5));
        _warpPast(1);
        d = _draft(1, _ids(3, 5), _wh(0, -1), _wh(0, 0));
        vm.expectRevert(
            abi.encodeWithSelector(
                MarketEvents.ShareEnergyOutOfRange.selector, uint64(1), uint32(5), int256(-1), int256(0), -PWH,
                int256(10_000) * 950_000 * 1e6
            )
        );
        _submit(d);
    }

    /// In chunks: an over-drain is refused in its verify chunk; an honest interval moves
    /// the account when it closes, not before; an abandoned one never.
    function test_attack_chunkedOverDrainIsRefusedAndAccountsMoveAtTheClose() public {
        EntryChecks.OrderAuth[] memory none = new EntryChecks.OrderAuth[](0);
        _warpPast(0);
        SettlementBuilder.Draft memory d = _draft(0, _ids(3, 5), _wh(0, 0), _wh(4751, -4751));
        uint256[] memory words = SettlementBuilder.entries(d);
        uint256[] memory a = new uint256[](1);
        uint256[] memory b = new uint256[](1);
        (a[0], b[0]) = (words[0], words[1]);
        vm.startPrank(ORACLE);
        settlement.verifyChunk(d.h, a, none, false);
        vm.expectPartialRevert(MarketEvents.ShareEnergyOutOfRange.selector);
        settlement.verifyChunk(d.h, b, none, true);
        settlement.abandonPending();
        d = _draft(0, _ids(3, 5), _wh(0, 0), _wh(2000, -2000));
        words = SettlementBuilder.entries(d);
        (a[0], b[0]) = (words[0], words[1]);
        settlement.verifyChunk(d.h, a, none, false);
        settlement.verifyChunk(d.h, b, none, true);
        vm.stopPrank();
        settlement.applyChunk(0, 0, a);
        _equal("not before the close", 4750 * PWH, _deliverable(5));
        settlement.applyChunk(0, 1, b);
        _equal("at the close", 2750 * PWH, _deliverable(5));
        // Verified and abandoned: nothing moves.
        _warpPast(1);
        d = _draft(1, _ids(3, 5), _wh(0, 0), _wh(2000, -2000));
        words = SettlementBuilder.entries(d);
        (a[0], b[0]) = (words[0], words[1]);
        vm.startPrank(ORACLE);
        settlement.verifyChunk(d.h, a, none, false);
        settlement.verifyChunk(d.h, b, none, true);
        settlement.abandonPending();
        vm.stopPrank();
        _submit(_draft(1, _ids(3, 5), _wh(0, 0), _wh(2750, -2750)));
        _equal("abandoned moved nothing", 0, _deliverable(5));
    }

    /// A dispute reverses an interval whose energy a later one used: the account is
    /// below zero, nothing may draw on it, and the interval settles again with its
    /// corrected energy (one Wh less in than the later interval drew out: the account
    /// stays just below zero, and takes energy in again).
    function test_aDisputeTakesTheEnergyBackOut() public {
        _submit(_chargeAccount(0, 2000));
        int256 stored = 2000 * 950_000 * 950_000;
        _warpPast(1);
        SettlementBuilder.Draft memory out = _draft(1, _ids(2, 4), _wh(0, 0), _wh(1805, -1805));
        _submit(out);
        _equal("drained", 0, _deliverable(4));
        SettlementBuilder.Draft memory d0 = _draft(0, _ids(2, 4), _wh(0, 0), _wh(-2000, 2000));
        d0.amount[1] -= _fee(2000);
        (DisputeModule.Reading memory r, bytes memory sig) = _signedReading(2, 0, 0, 1999);
        vm.prank(AUDITOR);
        disputes.dispute(0, _oneChunkHash(SettlementBuilder.entries(d0)), 0, _oneChunk(SettlementBuilder.entries(d0)), r, sig);
        _equal("taken back", -stored, _deliverable(4));
        _warpPast(2);
        SettlementBuilder.Draft memory draw = _draft(2, _ids(3, 4), _wh(0, 0), _wh(1, -1));
        vm.expectPartialRevert(MarketEvents.ShareEnergyOutOfRange.selector);
        _submit(draw);
        SettlementBuilder.Draft memory again = _draft(0, _ids(2, 4), _wh(0, 0), _wh(-1999, 1999));
        again.amount[1] -= _fee(1999);
        _submit(again);
        _equal("settled again", 1999 * int256(950_000) * 950_000 - stored, _deliverable(4));
        _warpPast(2);
        draw = _draft(2, _ids(3, 4), _wh(0, 0), _wh(1, -1));
        vm.expectPartialRevert(MarketEvents.ShareEnergyOutOfRange.selector);
        _submit(draw);
        SettlementBuilder.Draft memory refill = _draft(2, _ids(2, 4), _wh(0, 0), _wh(-10, 10));
        refill.amount[1] -= _fee(10);
        _submit(refill);
        _equal("refilled", 2009 * int256(950_000) * 950_000 - stored, _deliverable(4));
    }

    /// Nobody but the market itself may move an account: the oracle calling the check a
    /// settlement makes, to fill account 4 without a settlement, or to apply entries that
    /// were never verified, is refused.
    function test_attack_nobodyButTheMarketMovesAnAccount() public {
        vm.startPrank(ORACLE);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.NotTheMarket.selector, ORACLE));
        sharedBatteries.checkShareEntry(0, 4, 5000);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.NotTheMarket.selector, ORACLE));
        sharedBatteries.applyPendingShareEntries();
        vm.stopPrank();
        _equal("untouched", 0, _deliverable(4));
    }

    /// Gas: a settlement of 20 accounts charging from 20 homes, against 20 homes buying
    /// from 20 other homes (the same energy, no fees), each after a warm-up settlement so
    /// that both find the market's own slots warm: the difference per share entry.
    function test_gasPerShareEntry() public {
        uint32 n = 20;
        uint32 first = participants.participantCount();
        _registerHomes(3 * n);
        vm.startPrank(ADMIN);
        for (uint32 i = 0; i < n; ++i) {
            uint32 id = first + 3 * n + i;
            sharedBatteries.registerShare(vm.addr(ownerKey(id)), vm.addr(meterKey(id)), 0, "s", 0, 10_000, 0, ETA, ETA);
        }
        vm.stopPrank();
        for (uint32 id = first; id < first + 4 * n; ++id) {
            _fund(id, TEN);
            _submitMandate(_mandateOf(id, 300_000 + FEE, 60_000, 0, type(uint32).max, 1));
        }
        _submit(_chargeAccount(0, 1000));
        uint256 plain = _settleGas(1, first, first + n, false);
        uint256 shared = _settleGas(2, first + 2 * n, first + 3 * n, true);
        console.log("gas, 20 sellers + 20 home buyers", plain);
        console.log("gas, 20 sellers + 20 share buyers", shared);
        console.log("extra gas per share entry", (shared - plain) / n);
    }

    function _settleGas(uint64 k, uint32 sellers, uint32 buyers, bool share) internal returns (uint256 used) {
        uint32 n = 20;
        uint32[] memory ids = new uint32[](2 * n);
        int256[] memory g = new int256[](2 * n);
        int256[] memory p = new int256[](2 * n);
        for (uint32 i = 0; i < n; ++i) {
            (ids[i], p[i]) = (sellers + i, -1000);
            (ids[n + i], p[n + i]) = (buyers + i, 1000);
        }
        _warpPast(k);
        SettlementBuilder.Draft memory d = _draft(k, ids, g, p);
        if (share) {
            for (uint32 i = n; i < 2 * n; ++i) {
                d.amount[i] -= _fee(1000);
            }
        }
        uint256[] memory words = SettlementBuilder.entries(d);
        vm.prank(ORACLE);
        uint256 start = gasleft();
        settlement.settle(d.h, words, d.orders);
        used = start - gasleft();
    }

    function _equal(string memory what, int256 expected, int256 actual) internal pure {
        if (expected != actual) revert Mismatch(what, expected, actual);
    }
}
