// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {GridToken} from "../src/GridToken.sol";
import {EnergyMarket} from "../src/EnergyMarket.sol";
import {ParticipantsModule} from "../src/modules/ParticipantsModule.sol";
import {RolesModule} from "../src/modules/RolesModule.sol";
import {TermsModule} from "../src/modules/TermsModule.sol";
import {WalletsModule} from "../src/modules/WalletsModule.sol";
import {DisputeModule} from "../src/modules/DisputeModule.sol";
import {MarketHandler} from "./MarketHandler.sol";
import {FuzzSelector} from "./Vm.sol";

/// @notice Stateful fuzzing of the market: forge calls random MarketHandler actions
/// (deposits, withdrawals, registrations, freezes, key rotations, terms, capacities,
/// credit limits and the reserve, mandates, revocations and cancellations, honest and
/// fraudulent settlements, disputes, the bond, time) and checks every invariant after
/// each call.
contract MarketInvariantTest {
    MarketHandler internal handler;
    address internal market;
    GridToken internal token;

    error Violated(string invariant, int256 expected, int256 actual);

    function setUp() public {
        handler = new MarketHandler();
        market = handler.marketAddress();
        token = handler.tokenContract();
    }

    /// @dev Read by forge: fuzz the handler only, so every call goes through the model.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory selectors) {
        bytes4[] memory actions = new bytes4[](17);
        actions[0] = MarketHandler.deposit.selector;
        actions[1] = MarketHandler.withdraw.selector;
        actions[2] = MarketHandler.credit.selector;
        actions[3] = MarketHandler.register.selector;
        actions[4] = MarketHandler.flag.selector;
        actions[5] = MarketHandler.scheduleTerms.selector;
        actions[6] = MarketHandler.setInterval.selector;
        actions[7] = MarketHandler.submitMandate.selector;
        actions[8] = MarketHandler.cancel.selector;
        actions[9] = MarketHandler.rotate.selector;
        actions[10] = MarketHandler.warp.selector;
        actions[11] = MarketHandler.settle.selector;
        actions[12] = MarketHandler.settle.selector; // settling is what matters most: twice the weight
        actions[13] = MarketHandler.settleFraud.selector;
        actions[14] = MarketHandler.disputeHonest.selector;
        actions[15] = MarketHandler.bond.selector;
        actions[16] = MarketHandler.settleFraud.selector;
        selectors = new FuzzSelector[](1);
        selectors[0] = FuzzSelector(address(handler), actions);
    }

    /// @dev One campaign checks every property after every call (forge runs a campaign
    /// per invariant function).
    function invariant_marketProperties() public view {
        _everyWalletIsTheModels();
        _solvent();
        _intervalsInOrder();
        _settledEnergyIsMetered();
        _onlyTheOracleSettles();
    }

    /// Every wallet, the grid's included, is what the model says: deposits, withdrawals
    /// and settlements priced at the terms in force, authorised by the owner's order or
    /// mandate, at its meter's reading (frauds reversed). Its balance stays above minus
    /// its credit limit, and what it may withdraw is its balance less credit not final.
    function _everyWalletIsTheModels() internal view {
        uint32 count = ParticipantsModule(market).participantCount();
        _check("participants", int256(uint256(handler.ghostCount())), int256(uint256(count)));
        for (uint32 id = 0; id < count; ++id) {
            int256 balance = WalletsModule(market).balanceOf(id);
            _check("wallet balance", handler.ghostBalance(id), balance);
            _check("withdrawable", handler.withdrawableOf(id), WalletsModule(market).withdrawable(id));
            if (balance < -int256(handler.ghostCredit(id))) {
                _check("balance within the credit limit", -int256(handler.ghostCredit(id)), balance);
            }
        }
    }

    /// The tokens the market holds are every balance plus the reserve and the bond, and
    /// cover every positive balance and the bond; the credit limits stay within the reserve.
    function _solvent() internal view {
        uint32 count = ParticipantsModule(market).participantCount();
        int256 sum;
        int256 positive;
        for (uint32 id = 0; id < count; ++id) {
            int256 b = WalletsModule(market).balanceOf(id);
            sum += b;
            if (b > 0) positive += b;
        }
        (uint256 reserve, uint256 limits) = WalletsModule(market).reserve();
        (uint256 bond,,) = DisputeModule(market).bond();
        int256 held = int256(token.balanceOf(market));
        _check("tokens held == model", int256(handler.ghostBacking()), held);
        _check("tokens held == balances + reserve + bond", sum + int256(reserve + bond), held);
        if (held < positive + int256(bond)) _check("tokens cover positive balances and bond", positive + int256(bond), held);
        if (limits > reserve) _check("credit limits within the reserve", int256(reserve), int256(limits));
    }

    /// Intervals settle in order, each once unless a dispute reversed it.
    function _intervalsInOrder() internal view {
        _check("next interval", int256(uint256(handler.ghostNext())), int256(uint256(TermsModule(market).nextInterval())));
    }

    /// Every settled interval that stands (not reversed) settled each entry at its
    /// meter's reading: the auditor disputed every fraud the contract could not refuse.
    function _settledEnergyIsMetered() internal view {
        for (uint256 i = 0; i < handler.settledCount(); ++i) {
            (uint64 k, uint256[] memory words, bool reversed) = handler.settledAt(i);
            (,,, bool reversedOnChain) = DisputeModule(market).recordOf(k);
            if (reversed) continue;
            _check("record standing", 0, reversedOnChain ? int256(1) : int256(0));
            for (uint256 j = 0; j < words.length; ++j) {
                uint32 id = uint32(words[j] >> 224) & 0x3fffffff;
                int256 net = int256(int48(uint48(words[j] >> 176))) + int256(int48(uint48(words[j] >> 128)));
                _check("settled energy == meter reading", handler.trueReadingWh(k, id), net);
            }
        }
    }

    /// Only the oracle holds the oracle role.
    function _onlyTheOracleSettles() internal view {
        RolesModule roles = RolesModule(market);
        bytes32 role = roles.ORACLE_ROLE();
        _check("oracle holds the role", 1, roles.hasRole(role, handler.oracleAddress()) ? int256(1) : int256(0));
        _check("auditor does not", 0, roles.hasRole(role, handler.AUDITOR()) ? int256(1) : int256(0));
        _check("grid operator does not", 0, roles.hasRole(role, handler.gridOperatorAddress()) ? int256(1) : int256(0));
    }

    function _check(string memory invariant, int256 expected, int256 actual) internal pure {
        if (expected != actual) revert Violated(invariant, expected, actual);
    }
}
