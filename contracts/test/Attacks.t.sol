// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {MarketEvents} from "../src/MarketEvents.sol";
import {MarketStorage} from "../src/MarketStorage.sol";
import {DisputeModule} from "../src/modules/DisputeModule.sol";
import {EntryChecks} from "../src/modules/EntryChecks.sol";
import {MandatesModule} from "../src/modules/MandatesModule.sol";
import {MarketFixture} from "./MarketFixture.sol";
import {SettlementBuilder} from "./SettlementBuilder.sol";
import {Signing} from "./Signing.sol";
import {vm} from "./Vm.sol";

/// @notice Issue 9's attacks by someone holding only the oracle key, on a 4-home market
/// with standing mandates (buy at most 0.30/kWh, sell at least 0.06/kWh) and 10 tokens
/// in each wallet. Each test tries the attack and shows how it fails: refused on
/// chain, or reversed by a dispute with the meter-signed reading (the oracle's bond
/// paying the disputer).
contract AttacksTest is MarketFixture {
    uint256 internal constant TEN = 10_000_000; // 10 tokens in units
    address internal constant AUDITOR = address(0xA0D1);

    error Mismatch(string what, int256 expected, int256 actual);

    function setUp() public {
        _deployMarket(_tariffs(0, false), type(uint64).max, type(uint64).max);
        _registerHomes(4);
        for (uint32 id = 0; id <= 4; ++id) {
            _fund(id, TEN);
        }
        _standingMandates(1, 4, type(uint32).max);
        _bond(5 * uint256(REWARD));
    }

    function _one(uint32 id, int256 gridWh, int256 p2pWh) internal pure returns (uint32[] memory, int256[] memory, int256[] memory) {
        uint32[] memory ids = new uint32[](1);
        int256[] memory g = new int256[](1);
        int256[] memory p = new int256[](1);
        (ids[0], g[0], p[0]) = (id, gridWh, p2pWh);
        return (ids, g, p);
    }

    // ------------------------------------------------------------- 1. tariffs are free

    /// Home 4 exports 1 Wh and the oracle credits it 30 tokens: the contract prices the
    /// entry at the export tariff in its terms (60 milli-units) and refuses.
    function test_attack1_tariffFromTheOracleIsRefused() public {
        _warpPast(0);
        (uint32[] memory ids, int256[] memory g, int256[] memory p) = _one(4, -1, 0);
        SettlementBuilder.Draft memory d = _draft(0, ids, g, p);
        d.amount[0] = 30_000_000;
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.PaymentMismatch.selector, uint32(4), int256(30_000_000), int256(60_000)));
        _submit(d);
    }

    /// The tariffs change only by the grid operator's or admin's scheduled terms, and
    /// only for intervals that start after the notice period: not by the oracle, not
    /// for the interval being settled.
    function test_attack1_tariffsChangeOnlyWithNotice() public {
        MarketStorage.Tariffs memory t = MarketStorage.Tariffs(3e10, 3e10, 3e10, 0, 0, false);
        vm.prank(ORACLE);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.AccessControlUnauthorizedAccount.selector, ORACLE, bytes32(0)));
        terms.scheduleTerms(1, t);
        t = MarketStorage.Tariffs(600_000, 600_000, 60_000, 0, 0, false);
        uint256 earliest = block.timestamp + NOTICE;
        vm.prank(GRID_OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.NoticeTooShort.selector, uint64(1), uint256(EPOCH) + LENGTH, earliest));
        terms.scheduleTerms(1, t);
        vm.prank(GRID_OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.NoticeTooShort.selector, uint64(2), uint256(EPOCH) + 2 * LENGTH, earliest));
        terms.setIntervalPrices(2, 600_000, 1_200_000 / 20);
        // With notice, the new tariff applies from its interval on, and only there.
        uint64 from = uint64(NOTICE / LENGTH);
        vm.prank(GRID_OPERATOR);
        terms.scheduleTerms(from, t);
        (, uint256 before,,,) = terms.termsAt(from - 1);
        (, uint256 after_,,,) = terms.termsAt(from);
        _equal("import before", int256(uint256(IMPORT)), int256(before));
        _equal("import after", 600_000, int256(after_));
    }

    /// The grid's wallet signs nothing, so it moves only by the terms: an export the
    /// grid pays beyond its tariff is refused even when the entries sum to zero.
    function test_attack1_gridWalletMovesOnlyByTerms() public {
        _warpPast(0);
        (uint32[] memory ids, int256[] memory g, int256[] memory p) = _one(4, -1000, 0);
        SettlementBuilder.Draft memory d = _draft(0, ids, g, p);
        d.amount[0] = 60_000 * 20; // export tariff x20
        vm.expectRevert(
            abi.encodeWithSelector(MarketEvents.PaymentMismatch.selector, uint32(4), int256(1_200_000), int256(60_000_000))
        );
        _submit(d);
    }

    // ------------------------------------------------------------- 2. quantities are free

    /// Home 1 "buys" 1 GWh from home 4: far beyond what home 1 has, refused by its
    /// prepaid wallet; home 4 could not have withdrawn the credit anyway until final.
    function test_attack2_oneGigawattHourIsRefusedByTheBuyersCredit() public {
        _warpPast(0);
        SettlementBuilder.Draft memory d = _draft(0, _ids(1, 4), _wh(0, 0), _wh(1e9, -1e9));
        vm.expectRevert(
            abi.encodeWithSelector(MarketEvents.CreditLimitExceeded.selector, uint32(1), int256(TEN), -d.amount[0])
        );
        _submit(d);
    }

    /// A mandate's energy bound caps what the oracle may settle per interval.
    function test_attack2_mandateEnergyBound() public {
        MandatesModule.Mandate memory m = _mandateOf(1, 300_000, 60_000, 0, type(uint32).max, 2);
        m.maxEnergyWh = 5_000;
        _submitMandate(m);
        _warpPast(0);
        SettlementBuilder.Draft memory d = _draft(0, _ids(1, 4), _wh(0, 0), _wh(5_001, -5_001));
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.MandateEnergyExceeded.selector, uint32(1), uint256(5_001), uint256(5_000)));
        _submit(d);
    }

    /// Without an accomplice: home 1 is charged 30 kWh of import it never used, within
    /// its wallet, so the contract accepts it; the meter-signed reading (nothing used)
    /// disputes it, the interval is reversed, the disputer is paid from the bond, and
    /// the oracle settles it again honestly.
    function test_attack2_chargedImportIsReversedByTheMeterReading() public {
        _warpPast(0);
        (uint32[] memory ids, int256[] memory g, int256[] memory p) = _one(1, 30_000, 0);
        SettlementBuilder.Draft memory d = _draft(0, ids, g, p);
        _submit(d);
        _equal("charged", int256(TEN) - 9_000_000, wallets.balanceOf(1));
        (DisputeModule.Reading memory r, bytes memory sig) = _signedReading(1, 0, 0, 0);
        uint256[] memory words = SettlementBuilder.entries(d);
        vm.prank(AUDITOR);
        disputes.dispute(0, _oneChunkHash(words), 0, _oneChunk(words), r, sig);
        _equal("home 1 restored", int256(TEN), wallets.balanceOf(1));
        _equal("grid restored", int256(TEN), wallets.balanceOf(0));
        _equal("disputer paid from the bond", int256(uint256(REWARD)), int256(token.balanceOf(AUDITOR)));
        // The interval can be settled again, honestly this time: an empty interval.
        SettlementBuilder.Draft memory honest = _draft(0, new uint32[](0), new int256[](0), new int256[](0));
        _submit(honest);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.NotEligible.selector, uint32(1), uint64(0)));
        disputes.dispute(0, _oneChunkHash(new uint256[](0)), 0, _oneChunk(new uint256[](0)), r, sig);
    }

    // ------------------------------------------------------------- 3. meter data is the oracle's word

    /// 5 kWh added to home 1's reading charge it 1.50 more (0.30/kWh); accepted on
    /// chain, then reversed by the meter-signed reading; the honest settlement stands.
    function test_attack3_inflatedReadingIsReversed() public {
        _warpPast(0);
        // Home 1 really imported 2 kWh; the oracle settles 7.
        (uint32[] memory ids, int256[] memory g, int256[] memory p) = _one(1, 7_000, 0);
        SettlementBuilder.Draft memory d = _draft(0, ids, g, p);
        _submit(d);
        (DisputeModule.Reading memory r, bytes memory sig) = _signedReading(1, 0, 2_000, 0);
        // A reading signed by anyone but home 1's meter proves nothing.
        bytes memory forged = Signing.signReading(ownerKey(1), address(market), r);
        vm.expectRevert(
            abi.encodeWithSelector(MarketEvents.BadMeterSignature.selector, uint32(1), vm.addr(ownerKey(1)), vm.addr(meterKey(1)))
        );
        disputes.dispute(0, _oneChunkHash(SettlementBuilder.entries(d)), 0, _oneChunk(SettlementBuilder.entries(d)), r, forged);
        disputes.dispute(0, _oneChunkHash(SettlementBuilder.entries(d)), 0, _oneChunk(SettlementBuilder.entries(d)), r, sig);
        _equal("home 1 restored", int256(TEN), wallets.balanceOf(1));
        (ids, g, p) = _one(1, 2_000, 0);
        SettlementBuilder.Draft memory honest = _draft(0, ids, g, p);
        _submit(honest);
        _equal("home 1 pays 0.60", int256(TEN) - 600_000, wallets.balanceOf(1));
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.NoContradiction.selector, uint32(1), int256(2_000), int256(2_000)));
        disputes.dispute(0, _oneChunkHash(SettlementBuilder.entries(honest)), 0, _oneChunk(SettlementBuilder.entries(honest)), r, sig);
    }

    // ------------------------------------------------------------- 4. intervals are not tied to time

    function test_attack4_intervalSettlesOnlyAfterItEnded() public {
        vm.warp(_endOf(0) - 1);
        SettlementBuilder.Draft memory d = _draft(0, new uint32[](0), new int256[](0), new int256[](0));
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.IntervalNotEnded.selector, uint64(0), _endOf(0), _endOf(0) - 1));
        _submit(d);
    }

    /// A mandate valid for one hour (intervals 0..3) does not cover interval 199, however
    /// fast the oracle settles.
    function test_attack4_mandateCoversOnlyItsIntervals() public {
        _submitMandate(_mandateOf(1, 300_000, 60_000, 0, 3, 2));
        for (uint64 k = 0; k < 199; ++k) {
            _warpPast(k);
            _submit(_draft(k, new uint32[](0), new int256[](0), new int256[](0)));
        }
        _warpPast(199);
        (uint32[] memory ids, int256[] memory g, int256[] memory p) = _one(1, 1_000, 0);
        SettlementBuilder.Draft memory d = _draft(199, ids, g, p);
        vm.expectRevert(
            abi.encodeWithSelector(
                MarketEvents.MandateNotInForce.selector, uint32(1), uint64(199), uint64(EPOCH), uint64(EPOCH) + 4 * LENGTH - 1
            )
        );
        _submit(d);
    }

    /// Closing an interval empty while a home with a mandate metered energy is an
    /// omission: its meter-signed reading reverses it.
    function test_attack4_emptyIntervalNeedsEvidence() public {
        _warpPast(0);
        SettlementBuilder.Draft memory d = _draft(0, new uint32[](0), new int256[](0), new int256[](0));
        _submit(d);
        (DisputeModule.Reading memory r, bytes memory sig) = _signedReading(4, 0, 0, 3_000);
        vm.recordLogs();
        disputes.dispute(0, _oneChunkHash(new uint256[](0)), 0, _oneChunk(new uint256[](0)), r, sig);
        (,,, bool reversed) = disputes.recordOf(0);
        _equal("reversed", 1, reversed ? int256(1) : int256(0));
        // A home that metered nothing, or one without a mandate, is no evidence.
        _submit(d);
        (r, sig) = _signedReading(4, 0, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.NotEligible.selector, uint32(4), uint64(0)));
        disputes.dispute(0, _oneChunkHash(new uint256[](0)), 0, _oneChunk(new uint256[](0)), r, sig);
    }

    /// An exclusion is accepted only with a reason the contract can check: here home 1's
    /// mandate does not allow the import tariff.
    function test_attack4_exclusionNeedsACheckableReason() public {
        _warpPast(0);
        (uint32[] memory ids, int256[] memory g, int256[] memory p) = _one(1, 3_000, 0);
        SettlementBuilder.Draft memory d = _draft(0, ids, g, p);
        d.excluded[0] = true;
        SettlementBuilder.price(d, 0);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.NotExcludable.selector, uint32(1), uint64(0)));
        _submit(d);
        _submitMandate(_mandateOf(1, 250_000, 60_000, 0, type(uint32).max, 2));
        _submit(d);
        _equal("home 1 untouched", int256(TEN), wallets.balanceOf(1));
    }

    // ------------------------------------------------------------- 5. no cancellation

    /// The owner amends its order (0.29 -> 0.10) and cancels the old nonce on chain: the
    /// oracle can no longer settle the superseded order.
    function test_attack5_cancelledOrderIsRefused() public {
        _warpPast(0);
        uint32 id = 1;
        vm.prank(vm.addr(ownerKey(id)));
        mandates.cancelOrders(id, 1);
        SettlementBuilder.Draft memory d = _draft(0, _ids(1, 4), _wh(0, 0), _wh(5_000, -5_000));
        d.byOrder[0] = true;
        SettlementBuilder.price(d, 0);
        d.orders = new EntryChecks.OrderAuth[](1);
        d.orders[0] = Signing.signOrder(ownerKey(id), address(market), id, 0, Signing.Order(Signing.BUY, 5_000, 290_000, type(uint64).max, 1));
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.OrderCancelled.selector, id, uint64(1), uint64(2)));
        _submit(d);
    }

    /// A revocation reaches a mandate signed but never submitted: nonce 2 cannot be put
    /// in force after the owner revoked up to 2.
    function test_attack5_revocationReachesUnsubmittedMandates() public {
        MandatesModule.Mandate memory m2 = _mandateOf(1, 300_000, 60_000, 0, type(uint32).max, 2);
        bytes memory sig2 = Signing.signMandate(ownerKey(1), address(market), m2);
        bytes memory revocation = Signing.signRevocation(ownerKey(1), address(market), 1, 2);
        mandates.revokeMandate(1, 2, revocation);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.StaleMandateNonce.selector, uint32(1), uint64(3), uint64(2)));
        mandates.submitMandate(m2, sig2);
        _warpPast(0);
        (uint32[] memory ids, int256[] memory g, int256[] memory p) = _one(1, 1_000, 0);
        SettlementBuilder.Draft memory d = _draft(0, ids, g, p);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.RevokedMandate.selector, uint32(1), uint64(1)));
        _submit(d);
    }

    // ------------------------------------------------------------- 6. unbacked balances

    /// A home that never deposited cannot go negative without a credit limit, and a
    /// credit limit needs a reserve behind it.
    function test_attack6_noCreditWithoutReserve() public {
        _registerHomes(1); // home 5, no deposit
        _submitMandate(_mandateOf(5, 300_000, 60_000, 0, type(uint32).max, 1));
        _warpPast(0);
        (uint32[] memory ids, int256[] memory g, int256[] memory p) = _one(5, 500_000, 0);
        SettlementBuilder.Draft memory d = _draft(0, ids, g, p);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.CreditLimitExceeded.selector, uint32(5), int256(0), int256(150_000_000)));
        _submit(d);
        vm.prank(ADMIN);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ReserveTooSmall.selector, uint256(0), uint256(150_000_000)));
        wallets.setCreditLimit(5, 150_000_000);
        _reserve(150_000_000);
        vm.prank(ADMIN);
        wallets.setCreditLimit(5, 150_000_000);
        _submit(d);
        _equal("home 5 owes", -150_000_000, wallets.balanceOf(5));
        _solvent();
    }

    /// A credit is withdrawable only once final; positive balances stay backed.
    function test_attack6_creditNotFinalCannotBeWithdrawn() public {
        _warpPast(0);
        SettlementBuilder.Draft memory d = _draft(0, _ids(1, 4), _wh(0, 0), _wh(5_000, -5_000));
        _submit(d);
        int256 credit = d.amount[1];
        address home4 = vm.addr(ownerKey(4));
        vm.prank(home4);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.InsufficientBalance.selector, uint32(4), int256(TEN), uint256(TEN) + uint256(credit)));
        wallets.withdraw(TEN + uint256(credit));
        vm.warp(block.timestamp + 2 * WINDOW);
        vm.prank(home4);
        wallets.withdraw(TEN + uint256(credit));
        _solvent();
    }

    // ------------------------------------------------------------- 7. pricing rule, freeze, keys

    /// The pricing rule is a stored term: a uniform market's order entries are priced at
    /// the P2P price, and pricing one at its own limit (pay-as-bid) is refused.
    function test_attack7_payAsBidIsATermNotTheOraclesChoice() public {
        _warpPast(0);
        SettlementBuilder.Draft memory d = _draft(0, _ids(1, 4), _wh(0, 0), _wh(5_000, -5_000));
        d.byOrder[0] = true;
        d.limits[0] = 290_000;
        d.payAsBid = true; // what the oracle would like
        SettlementBuilder.price(d, 0);
        d.orders = new EntryChecks.OrderAuth[](1);
        d.orders[0] = Signing.signOrder(ownerKey(1), address(market), 1, 0, Signing.Order(Signing.BUY, 5_000, 290_000, type(uint64).max, 1));
        d.payAsBid = false;
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.PaymentMismatch.selector, uint32(1), d.amount[0], SettlementBuilder.exactMilliOf(d, 0)));
        _submit(d);
    }

    /// A frozen participant (say, a stolen key) cannot withdraw, is not settled and
    /// cannot hand itself to another key.
    function test_attack7_frozenParticipantCannotWithdraw() public {
        vm.prank(ADMIN);
        participants.setFrozen(2, true);
        address home2 = vm.addr(ownerKey(2));
        vm.prank(home2);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.FrozenParticipant.selector, uint32(2)));
        wallets.withdraw(1);
        vm.prank(home2);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.FrozenParticipant.selector, uint32(2)));
        participants.rotateOwner(2, address(0xBEEF));
        _warpPast(0);
        (uint32[] memory ids, int256[] memory g, int256[] memory p) = _one(2, 1_000, 0);
        SettlementBuilder.Draft memory d = _draft(0, ids, g, p);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.FrozenParticipant.selector, uint32(2)));
        _submit(d);
    }

    /// The owner rotates its key: the old key can no longer withdraw or sign orders.
    function test_attack7_ownerRotatesItsKey() public {
        address oldKey = vm.addr(ownerKey(3));
        address newKey = vm.addr(0x7E3);
        vm.prank(oldKey);
        participants.rotateOwner(3, newKey);
        vm.prank(oldKey);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.UnknownAccount.selector, oldKey));
        wallets.withdraw(1);
        vm.prank(newKey);
        wallets.withdraw(1);
        _warpPast(0);
        SettlementBuilder.Draft memory d = _draft(0, _ids(3, 4), _wh(0, 0), _wh(1_000, -1_000));
        d.byOrder[0] = true;
        d.orders = new EntryChecks.OrderAuth[](1);
        d.orders[0] = Signing.signOrder(ownerKey(3), address(market), 3, 0, Signing.Order(Signing.BUY, 1_000, 300_000, type(uint64).max, 1));
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.BadOrderSignature.selector, uint32(3), oldKey));
        _submit(d);
    }

    // ------------------------------------------------------------- helpers

    /// The tokens the market holds are every balance plus the reserve and the bond, and
    /// cover every positive balance and the bond: debts are backed by the reserve.
    function _solvent() internal view {
        int256 positive;
        int256 sum;
        for (uint32 id = 0; id < participants.participantCount(); ++id) {
            int256 b = wallets.balanceOf(id);
            sum += b;
            if (b > 0) positive += b;
        }
        (uint256 bond,,) = disputes.bond();
        (uint256 reserve,) = wallets.reserve();
        int256 held = int256(token.balanceOf(address(market)));
        _equal("tokens held == balances + reserve + bond", sum + int256(reserve + bond), held);
        if (held < positive + int256(bond)) revert Mismatch("solvency", positive + int256(bond), held);
    }

    /// The grid operator tightens the limits of intervals that already ran (their flows
    /// metered, not yet settled), to make them bind after the fact: an interval's own
    /// limit is refused once it started, and a new default reaches only intervals that
    /// start from then on. (Intervals before FIRST_LIVE are history: see MarketFixture.)
    function test_attack_capacityAfterTheIntervalStarted() public {
        uint64 k = FIRST_LIVE;
        vm.prank(GRID_OPERATOR);
        terms.setCapacity(k, 1_000, 1_000); // before it starts: fine
        vm.warp(_endOf(k) + 1); // k ran, k + 1 runs
        vm.prank(GRID_OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.CapacityAfterStart.selector, k, uint256(_startOf(k)), block.timestamp));
        terms.setCapacity(k, 1, 1);
        vm.prank(GRID_OPERATOR);
        vm.expectRevert(
            abi.encodeWithSelector(MarketEvents.CapacityAfterStart.selector, k + 1, uint256(_startOf(k + 1)), block.timestamp)
        );
        terms.setZoneCapacity(k + 1, 0, 1, 1);

        (uint64 before,) = terms.capacityOf(k + 1);
        vm.prank(GRID_OPERATOR);
        terms.setDefaultCapacity(7, 7);
        (uint64 own,) = terms.capacityOf(k);
        (uint64 running,) = terms.capacityOf(k + 1);
        (uint64 next,) = terms.capacityOf(k + 2);
        _equal("own limit kept", 1_000, int256(uint256(own)));
        _equal("a running interval keeps its default", int256(uint256(before)), int256(uint256(running)));
        _equal("the next interval takes the new default", 7, int256(uint256(next)));
        // The word keeps one default before the current: a second change waits until every
        // live interval that started before the first is settled (here FIRST_LIVE on).
        uint256 changedAt = block.timestamp;
        vm.warp(block.timestamp + 1);
        vm.prank(GRID_OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.DefaultCapacityInUse.selector, k, changedAt));
        terms.setDefaultCapacity(8, 8);
        // A zone's first default has nothing before it: intervals that started earlier keep no limit.
        vm.prank(GRID_OPERATOR);
        terms.setDefaultZoneCapacity(2, 5, 5);
        (uint64 zoneRunning,) = terms.zoneCapacityOf(k + 1, 2);
        (uint64 zoneNext,) = terms.zoneCapacityOf(k + 2, 2);
        _equal("no zone limit for the running interval", int256((1 << 48) - 1), int256(uint256(zoneRunning)));
        _equal("the zone limit from the next interval", 5, int256(uint256(zoneNext)));
    }

    function _equal(string memory what, int256 expected, int256 actual) internal pure {
        if (expected != actual) revert Mismatch(what, expected, actual);
    }
}
