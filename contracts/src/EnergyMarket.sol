// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {MarketStorage} from "./MarketStorage.sol";
import {TermsWord, IntervalWord, DefaultCapacityWord} from "./lib/TermsWord.sol";

/// @notice What every module tells the router at construction: the selectors it serves.
interface IMarketModule {
    function selectors() external pure returns (bytes4[] memory);
}

/// @title EnergyMarket
/// @notice The market's one address. It holds all state (MarketStorage) and routes each
/// call by its selector to the module that implements it (settlement, disputes,
/// participants, wallets, mandates and orders, terms), running the module's code in
/// this contract's context by DELEGATECALL. The table is fixed at construction: nobody
/// can change a module later, so the code that governs the wallets is the code that
/// was deployed. A call costs one delegatecall (and one table read), never a call per
/// settlement entry. Python sees one ABI: the build merges the modules' into this one.
///
/// What the market does and does not trust is stated above SettlementModule.settle.
contract EnergyMarket is MarketStorage {
    /// @notice Everything fixed or first set at deployment.
    /// @param admin Registers participants, grants roles, sets credit limits, freezes.
    /// @param oracle Submits settlements; posts the bond disputes are paid from.
    /// @param gridOperator Sets tariffs and capacities; owns the grid's wallet (participant 0).
    /// @param token Settlement token backing every wallet.
    /// @param importCapacityWh Default community import limit per interval.
    /// @param exportCapacityWh Default community export limit per interval.
    /// @param firstInterval The interval the market's first settlement is for.
    /// @param epoch Unix time at which interval 0 starts.
    /// @param intervalSeconds Length of an interval.
    /// @param disputeWindow Seconds a settlement stays disputable at least (at most twice that).
    /// @param noticeSeconds How far ahead of an interval's start its terms must be known.
    /// @param disputeReward What a successful dispute pays the disputer; the oracle's bond
    /// must hold at least this much for it to settle.
    /// @param terms The first terms version (its fromInterval is `firstInterval`), as TermsWord fields.
    /// @param storageFee The first version's storage fee: minor units per kWh a share
    /// participant takes in (SharedBatteryModule); 0 for none.
    /// @param storageOperator The participant the storage fees go to (registered before
    /// the first fee is paid).
    struct Setup {
        address admin;
        address oracle;
        address gridOperator;
        IERC20 token;
        uint64 importCapacityWh;
        uint64 exportCapacityWh;
        uint64 firstInterval;
        uint40 epoch;
        uint32 intervalSeconds;
        uint32 disputeWindow;
        uint32 noticeSeconds;
        uint128 disputeReward;
        Tariffs terms;
        uint32 storageFee;
        uint32 storageOperator;
    }

    /// @param setup See Setup.
    /// @param modules Deployed modules; each serves the selectors it lists, no two the same.
    constructor(Setup memory setup, address[] memory modules) {
        if (
            setup.admin == address(0) || setup.oracle == address(0) || setup.gridOperator == address(0)
                || address(setup.token) == address(0)
        ) revert ZeroAddress();
        if (setup.intervalSeconds == 0) revert ValueOutOfRange("intervalSeconds", 0, type(uint32).max);
        if (setup.disputeWindow == 0) revert ValueOutOfRange("disputeWindow", 0, type(uint32).max);
        if (setup.firstInterval > type(uint32).max) {
            revert ValueOutOfRange("firstInterval", setup.firstInterval, type(uint32).max);
        }
        for (uint256 m = 0; m < modules.length; ++m) {
            bytes4[] memory served = IMarketModule(modules[m]).selectors();
            for (uint256 i = 0; i < served.length; ++i) {
                address first = _moduleOf[served[i]];
                if (first != address(0)) revert SelectorClash(served[i], first, modules[m]);
                _moduleOf[served[i]] = modules[m];
            }
        }
        _clock = Clock(setup.epoch, setup.intervalSeconds, setup.disputeWindow, setup.noticeSeconds);
        _deployedAt = block.timestamp;
        _state.nextInterval = setup.firstInterval;
        _token = setup.token;
        _bond.reward = setup.disputeReward;
        emit DisputeRewardSet(setup.disputeReward);
        _grantRole(DEFAULT_ADMIN, setup.admin);
        _grantRole(ORACLE, setup.oracle);
        _grantRole(GRID_OPERATOR, setup.gridOperator);
        _register(setup.gridOperator, address(0), 0, "grid");

        uint256 importWh = setup.importCapacityWh > IntervalWord.WH_MAX ? IntervalWord.WH_MAX : setup.importCapacityWh;
        uint256 exportWh = setup.exportCapacityWh > IntervalWord.WH_MAX ? IntervalWord.WH_MAX : setup.exportCapacityWh;
        _defaultCapacity = DefaultCapacityWord.changed(0, importWh, exportWh, block.timestamp);
        emit DefaultCapacitySet(uint64(importWh), uint64(exportWh));

        Tariffs memory t = setup.terms;
        _checkTariffs(t.importPrice, t.exportPrice, t.p2pFee);
        _checkTariffs(t.peakImportPrice, t.exportPrice, t.p2pFee);
        if (t.peakHours > TermsWord.HOURS_MAX) revert ValueOutOfRange("peakHours", t.peakHours, TermsWord.HOURS_MAX);
        _terms[0] = TermsWord.pack(
            setup.firstInterval, t.importPrice, t.peakImportPrice, t.exportPrice, t.p2pFee, t.peakHours, t.payAsBid
        );
        if (setup.storageOperator > TermsWord.OPERATOR_MAX) {
            revert ValueOutOfRange("storageOperator", setup.storageOperator, TermsWord.OPERATOR_MAX);
        }
        _terms[0] = TermsWord.withStorage(_terms[0], setup.storageFee, setup.storageOperator);
        _state.termsCount = 1;
        emit TermsScheduled(
            0, setup.firstInterval, t.importPrice, t.peakImportPrice, t.exportPrice, t.p2pFee, t.peakHours, t.payAsBid
        );
        if (setup.storageFee != 0 || setup.storageOperator != 0) {
            emit StorageFeeScheduled(0, setup.firstInterval, setup.storageFee, setup.storageOperator);
        }
    }

    /// @notice The module that serves `selector` (address(0): none).
    function moduleOf(bytes4 selector) external view returns (address) {
        return _moduleOf[selector];
    }

    /// @notice Runs the module that serves the called function in this contract's context.
    fallback() external {
        address module = _moduleOf[msg.sig];
        if (module == address(0)) revert UnknownSelector(msg.sig);
        // The module is one of those fixed at construction; it runs on this contract's
        // storage, which is what a module is for. The assembly never returns to Solidity,
        // so it may use memory from 0.
        // slither-disable-next-line controlled-delegatecall
        assembly {
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), module, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            if iszero(ok) { revert(0, returndatasize()) }
            return(0, returndatasize())
        }
    }
}
