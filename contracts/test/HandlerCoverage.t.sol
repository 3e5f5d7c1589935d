// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnergyMarket} from "../src/EnergyMarket.sol";
import {ParticipantRegistry} from "../src/ParticipantRegistry.sol";
import {MarketHandler} from "./MarketHandler.sol";
import {console} from "./Vm.sol";

/// @notice The invariant runs prove something only if the handler reaches every
/// outcome. This drives it through a fixed pseudo-random sequence and fails if any
/// kind of settlement (accepted by order, by mandate, or rejected by each check) never
/// happened, e.g. after a contract change made every generated settlement invalid.
contract HandlerCoverageTest {
    error NeverReached(string outcome);
    error CheckNeverReached(bytes4 errorSelector);

    function test_handlerReachesEveryOutcome() public {
        MarketHandler handler = new MarketHandler();
        for (uint256 i = 0; i < 8000; ++i) {
            uint256 r = uint256(keccak256(abi.encode(i)));
            uint256 action = r % 12;
            if (action == 0) handler.deposit(r >> 8, r >> 16, (r >> 24) | 1, r % 5 != 0);
            else if (action == 1) handler.withdraw(r >> 8, r >> 16);
            else if (action == 2 && i % 7 == 0) handler.register(r >> 8);
            else if (action == 3 && i % 5 == 0) handler.updateParticipant(r >> 8, 0, r % 3 != 0);
            else if (action == 4) handler.setCapacity(r >> 8, uint64(r >> 16), uint64(r >> 80));
            else if (action == 5) handler.submitMandate(r >> 8, uint64(r >> 16), uint64(r >> 80), uint64(r >> 144), uint8(r >> 208));
            else if (action == 6 && i % 3 == 0) handler.revokeMandate(r >> 8, r % 2 == 0);
            else if (action == 7 && i % 4 == 0) handler.warp(r >> 8);
            else if (action == 8) handler.settleAsStranger(r >> 8, r >> 16);
            else if (action == 9) handler.strangerAction(r >> 8, uint8(r >> 16));
            else if (action == 10) handler.settleInvalid(r >> 8, uint8(r >> 16));
            else handler.settle(r >> 8);
        }
        console.log("settlements accepted", handler.settledCount());
        console.log("settlements rejected", handler.rejectedSettlements());
        console.log("entries authorised by a signed order", handler.ordersSettled());
        console.log("entries authorised by a mandate", handler.mandateEntriesSettled());
        console.log("pay-as-bid settlements accepted", handler.payAsBidSettled());
        console.log("intervals settled without entries", handler.emptySettled());
        console.log("withdrawals beyond the tokens held", handler.illiquidWithdrawals());
        _reached("an accepted settlement", handler.settledCount());
        _reached("an entry settled by order", handler.ordersSettled());
        _reached("an entry settled by mandate", handler.mandateEntriesSettled());
        _reached("an accepted pay-as-bid settlement with an order", handler.payAsBidSettled());
        _reached("an accepted settlement without entries", handler.emptySettled());
        _reached("a withdrawal beyond the tokens held", handler.illiquidWithdrawals());
        _reached("a pay-as-bid order entry sent at the P2P price", handler.payAsBidMispriced());
        bytes4[23] memory checks = [
            EnergyMarket.IntervalOutOfOrder.selector,
            EnergyMarket.PriceOutOfRange.selector,
            EnergyMarket.ParticipantsNotAscending.selector,
            EnergyMarket.PaymentMismatch.selector,
            EnergyMarket.P2PEnergyNotConserved.selector,
            EnergyMarket.GridEnergyMismatch.selector,
            EnergyMarket.MoneyNotConserved.selector,
            EnergyMarket.ImportCapacityExceeded.selector,
            EnergyMarket.ExportCapacityExceeded.selector,
            ParticipantRegistry.InactiveParticipant.selector,
            EnergyMarket.NoMandate.selector,
            EnergyMarket.RevokedMandate.selector,
            EnergyMarket.MandateExpired.selector,
            EnergyMarket.MandatePriceExceeded.selector,
            EnergyMarket.MandatePriceBelowMinimum.selector,
            EnergyMarket.BadOrderSignature.selector,
            EnergyMarket.OrderExpired.selector,
            EnergyMarket.OrderQuantityExceeded.selector,
            EnergyMarket.OrderSideMismatch.selector,
            EnergyMarket.OrderPriceExceeded.selector,
            EnergyMarket.OrderPriceBelowLimit.selector,
            EnergyMarket.UnusedOrders.selector,
            EnergyMarket.MissingOrder.selector
        ];
        for (uint256 i = 0; i < checks.length; ++i) {
            if (handler.rejections(checks[i]) == 0) revert CheckNeverReached(checks[i]);
        }
    }

    function _reached(string memory outcome, uint256 count) internal pure {
        if (count == 0) revert NeverReached(outcome);
    }
}
