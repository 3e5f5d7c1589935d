// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketEvents} from "../src/MarketEvents.sol";
import {MarketHandler} from "./MarketHandler.sol";
import {console} from "./Vm.sol";

/// @notice The invariant runs prove something only if the handler reaches every
/// outcome. This drives it through a fixed pseudo-random sequence and fails if any
/// kind of settlement (by order, by mandate, excluded, empty, pay-as-bid, a fraud
/// accepted and reversed, or rejected by each check) never happened, e.g. after a
/// contract change made every generated settlement invalid.
contract HandlerCoverageTest {
    error NeverReached(string outcome);
    error CheckNeverReached(bytes4 errorSelector);

    function test_handlerReachesEveryOutcome() public {
        MarketHandler handler = new MarketHandler();
        for (uint256 i = 0; i < 5000; ++i) {
            uint256 r = uint256(keccak256(abi.encode(i)));
            uint256 action = r % 16;
            if (action == 0) handler.deposit(r >> 8, r >> 16);
            else if (action == 1) handler.withdraw(r >> 8, r >> 16);
            else if (action == 2) handler.credit(r >> 8, r >> 16);
            else if (action == 3 && i % 9 == 0) handler.register(r >> 8);
            else if (action == 4 && i % 3 == 0) handler.flag(r >> 8, uint8(r >> 16));
            else if (action == 5) handler.scheduleTerms(r >> 8, uint64(r >> 16), uint64(r >> 80), uint64(r >> 144));
            else if (action == 6) handler.setInterval(r >> 8, uint64(r >> 16), uint64(r >> 80));
            else if (action == 7) handler.submitMandate(r >> 8, uint64(r >> 16), uint64(r >> 80), uint8(r >> 144));
            else if (action == 8) handler.cancel(r >> 8, r % 2 == 0);
            else if (action == 9 && i % 5 == 0) handler.rotate(r >> 8);
            else if (action == 10) handler.warp(r >> 8);
            else if (action == 11) handler.settleFraud(r >> 8, uint8(r >> 16));
            else if (action == 12) handler.disputeHonest(r >> 8, uint32(r >> 16), r % 5 == 0);
            else if (action == 13) handler.bond(r >> 8, r >> 16);
            else handler.settle(r >> 8);
        }
        console.log("settlements accepted", handler.accepted());
        console.log("settlements rejected", handler.rejected());
        console.log("entries by order", handler.orderEntries());
        console.log("entries by mandate", handler.mandateEntries());
        console.log("entries excluded", handler.excludedEntries());
        console.log("frauds tried", handler.frauds());
        console.log("frauds accepted, then reversed by a dispute", handler.fraudsReversed());
        _reached("an accepted settlement", handler.accepted());
        _reached("an entry by order", handler.orderEntries());
        _reached("an entry by mandate", handler.mandateEntries());
        _reached("an excluded entry", handler.excludedEntries());
        _reached("an empty interval", handler.emptySettled());
        _reached("a pay-as-bid settlement with orders", handler.payAsBidSettled());
        _reached("a fraud reversed by a dispute", handler.fraudsReversed());
        _reached("a withdrawal", handler.withdrawals());
        // RevokedMandate is rare here (a revoked home is soon given a new mandate); the
        // attack tests reach it (test_attack5_revocationReachesUnsubmittedMandates).
        bytes4[14] memory checks = [
            MarketEvents.IntervalNotEnded.selector,
            MarketEvents.BondTooLow.selector,
            MarketEvents.PaymentMismatch.selector,
            MarketEvents.ImportCapacityExceeded.selector,
            MarketEvents.ExportCapacityExceeded.selector,
            MarketEvents.CreditLimitExceeded.selector,
            MarketEvents.NoMandate.selector,
            MarketEvents.MandateNotInForce.selector,
            MarketEvents.MandateEnergyExceeded.selector,
            MarketEvents.OrderQuantityExceeded.selector,
            MarketEvents.OrderCancelled.selector,
            MarketEvents.BadOrderSignature.selector,
            MarketEvents.NotExcludable.selector,
            MarketEvents.AccessControlUnauthorizedAccount.selector
        ];
        for (uint256 i = 0; i < checks.length; ++i) {
            if (handler.rejections(checks[i]) == 0) revert CheckNeverReached(checks[i]);
        }
    }

    function _reached(string memory outcome, uint256 count) internal pure {
        if (count == 0) revert NeverReached(outcome);
    }
}
