// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketStorage} from "../MarketStorage.sol";

/// @title SharedBatteryFees
/// @notice How the storage fee of a shared battery moves (issue 12). A home's account in
/// a shared battery is a participant of its own, flagged as a share (SharedBatteryModule);
/// its entries are priced like anyone's, and on the energy it takes in it also pays the
/// storage fee of the terms in force, in whole units per entry (Wh x fee / 1000, rounded
/// half up). The fees of an interval go to the terms' storage operator in one credit when
/// the interval closes, and come back out of it if a dispute reverses the interval.
/// Used by the settlement (EntryChecks, SettlementModule) and DisputeModule.
abstract contract SharedBatteryFees is MarketStorage {
    /// @dev The storage fee of a share entry whose net energy is `netWh` (+ into the
    /// account) at `feePerKwh`: whole units, rounded half up; nothing on energy out.
    function _storageFeeOf(uint256 feePerKwh, int256 netWh) internal pure returns (int256) {
        if (netWh <= 0) return 0;
        // netWh < 2^49 and feePerKwh < 2^32: no overflow.
        unchecked {
            return (netWh * int256(feePerKwh) + 500) / 1000;
        }
    }

    /// @dev Credits `amount` of storage fees to `operator` (a registered participant) for
    /// interval `k`, locked in `bucket` like every settlement credit, and records it for
    /// a dispute. Nothing when no share paid a fee.
    function _payStorageFees(uint64 k, uint32 operator, int256 amount, uint256 bucket) internal {
        if (amount == 0) return;
        _update(operator, _existing(operator), amount, Move.Settle, bucket);
        // 0 < amount < 2^128: it fits above the operator's 32 bits.
        _storageFeesPaid[k] = (uint256(amount) << 32) | operator;
        emit StorageFeesPaid(k, operator, uint256(amount));
    }

    /// @dev Takes back the storage fees interval `k` paid (settled in `bucket`) and
    /// returns their amount: the grid's side of the interval held them too.
    function _reverseStorageFees(uint64 k, uint256 bucket) internal returns (int256 amount) {
        uint256 paid = _storageFeesPaid[k];
        // No amount above the operator's 32 bits: nothing was paid.
        if (paid < 1 << 32) return 0;
        delete _storageFeesPaid[k];
        uint32 operator = uint32(paid);
        amount = int256(paid >> 32);
        _update(operator, _accounts[operator], -amount, Move.Reverse, bucket);
        emit StorageFeesReversed(k, operator, uint256(amount));
    }
}
