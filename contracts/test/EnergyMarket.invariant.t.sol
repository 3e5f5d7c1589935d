// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnergyMarket} from "../src/EnergyMarket.sol";
import {GridToken} from "../src/GridToken.sol";
import {MarketHandler} from "./MarketHandler.sol";
import {FuzzSelector} from "./Vm.sol";

/// @notice Stateful fuzzing of the market: forge calls random MarketHandler actions
/// (deposits, withdrawals, registrations, (de)activations, capacity changes, valid and
/// broken settlements, strangers' attempts) and checks every invariant after each call.
contract EnergyMarketInvariantTest {
    MarketHandler internal handler;
    EnergyMarket internal market;
    GridToken internal token;

    error Violated(string invariant, int256 expected, int256 actual);

    function setUp() public {
        handler = new MarketHandler();
        market = handler.market();
        token = handler.token();
    }

    /// @dev Read by forge: fuzz the handler only, never the market directly, so every
    /// call goes through the model.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory selectors) {
        bytes4[] memory actions = new bytes4[](13);
        actions[0] = MarketHandler.deposit.selector;
        actions[1] = MarketHandler.withdraw.selector;
        actions[2] = MarketHandler.register.selector;
        actions[3] = MarketHandler.updateParticipant.selector;
        actions[4] = MarketHandler.setCapacity.selector;
        actions[5] = MarketHandler.setDefaultCapacity.selector;
        actions[6] = MarketHandler.settle.selector;
        actions[7] = MarketHandler.settleInvalid.selector;
        actions[8] = MarketHandler.settleAsStranger.selector;
        actions[9] = MarketHandler.strangerAction.selector;
        actions[10] = MarketHandler.submitMandate.selector;
        actions[11] = MarketHandler.revokeMandate.selector;
        actions[12] = MarketHandler.warp.selector;
        selectors = new FuzzSelector[](1);
        selectors[0] = FuzzSelector(address(handler), actions);
    }

    /// @dev One campaign checks every property after every call: forge runs a separate
    /// campaign per invariant function, so six functions cost six times the calls.
    function invariant_marketProperties() public view {
        _walletsSumToTokensHeld();
        _eachIntervalSettledOnceInOrder();
        _onlyOracleSettles();
        _walletsMoveOnlyByDepositWithdrawOrSettlement();
        _noFundsMovedWithoutSignatureOrMandate();
        _settledWithinCapacity();
    }

    /// (a) Every wallet is backed: the wallets sum to the tokens the market holds,
    /// which are exactly those deposited and not withdrawn.
    function _walletsSumToTokensHeld() internal view {
        int256 sum;
        for (uint32 id = 0; id < market.participantCount(); ++id) {
            sum += market.balanceOf(id);
        }
        uint256 held = token.balanceOf(address(market));
        _check("sum of wallets == tokens held by the market", int256(held), sum);
        _check("tokens held == deposited - withdrawn", int256(handler.ghostBacking()), int256(held));
    }

    /// (b) nextInterval advances by exactly one per accepted settlement and by nothing
    /// else, and no interval is accepted twice.
    function _eachIntervalSettledOnceInOrder() internal view {
        uint256 accepted = handler.settledCount();
        _check(
            "nextInterval == first + accepted settlements",
            int256(uint256(handler.FIRST_INTERVAL()) + accepted),
            int256(uint256(market.nextInterval()))
        );
        for (uint256 i = 0; i < accepted; ++i) {
            MarketHandler.Settled memory s = handler.settled(i);
            _check("settled interval i is first + i", int256(uint256(handler.FIRST_INTERVAL()) + i), int256(uint256(s.interval)));
            _check("times interval settled", 1, int256(handler.timesSettled(s.interval)));
        }
    }

    /// (c) Only the oracle settles: every advance of nextInterval is one of the oracle's
    /// settlements, and nobody else ever gained the role.
    function _onlyOracleSettles() internal view {
        _check(
            "intervals advanced == settlements sent by the oracle",
            int256(handler.oracleSettlements()),
            int256(uint256(market.nextInterval() - handler.FIRST_INTERVAL()))
        );
        bytes32 role = market.ORACLE_ROLE();
        _check("oracle holds the role", 1, market.hasRole(role, handler.oracle()) ? int256(1) : int256(0));
        for (uint256 i = 0; i < handler.poolSize(); ++i) {
            _check("participant holds the oracle role", 0, market.hasRole(role, handler.pool(i)) ? int256(1) : int256(0));
        }
        _check("admin holds the oracle role", 0, market.hasRole(role, handler.admin()) ? int256(1) : int256(0));
        _check("grid operator holds the oracle role", 0, market.hasRole(role, handler.gridOperator()) ? int256(1) : int256(0));
    }

    /// (d) Wallets and token holdings change only by a deposit (payer's tokens in),
    /// a withdrawal (to the owner) or an oracle settlement: the model applies only
    /// those, so any other change shows up as a difference.
    function _walletsMoveOnlyByDepositWithdrawOrSettlement() internal view {
        uint32 count = market.participantCount();
        _check("participant count", int256(uint256(handler.ghostCount())), int256(uint256(count)));
        for (uint32 id = 0; id < count; ++id) {
            _check("wallet balance", handler.ghostBalance(id), market.balanceOf(id));
        }
        for (uint256 i = 0; i < handler.poolSize(); ++i) {
            address holder = handler.pool(i);
            _check("tokens held by a participant", int256(handler.ghostTokens(holder)), int256(token.balanceOf(holder)));
        }
        address operator = handler.gridOperator();
        _check("tokens held by the grid operator", int256(handler.ghostTokens(operator)), int256(token.balanceOf(operator)));
    }

    /// (d') No funds move without the participant's signature: every entry of every
    /// accepted settlement had its owner's signed order in the settlement or a mandate
    /// in force that covers it. (settleInvalid shows the converse: a rogue oracle's
    /// unauthorised, forged, replayed or out-of-limit entries are all rejected.)
    function _noFundsMovedWithoutSignatureOrMandate() internal view {
        for (uint256 i = 0; i < handler.settledCount(); ++i) {
            MarketHandler.Settled memory s = handler.settled(i);
            _check("authorised entries of a settled interval", int256(s.entries), int256(s.authorisedEntries));
        }
    }

    /// (e) Every settled interval's grid import and export, as the contract emitted
    /// them, were within the capacity in force when it was settled; and the contract's
    /// capacity for the next interval is the model's.
    function _settledWithinCapacity() internal view {
        for (uint256 i = 0; i < handler.settledCount(); ++i) {
            MarketHandler.Settled memory s = handler.settled(i);
            if (s.importWh > s.importCapacityWh) _check("import <= capacity", int256(uint256(s.importCapacityWh)), int256(s.importWh));
            if (s.exportWh > s.exportCapacityWh) _check("export <= capacity", int256(uint256(s.exportCapacityWh)), int256(s.exportWh));
        }
        uint64 next = market.nextInterval();
        (uint64 importWh, uint64 exportWh) = market.capacityOf(next);
        (uint64 modelImportWh, uint64 modelExportWh) = handler.ghostCapacity(next);
        _check("import capacity of next interval", int256(uint256(modelImportWh)), int256(uint256(importWh)));
        _check("export capacity of next interval", int256(uint256(modelExportWh)), int256(uint256(exportWh)));
    }

    function _check(string memory invariant, int256 expected, int256 actual) internal pure {
        if (expected != actual) revert Violated(invariant, expected, actual);
    }
}
