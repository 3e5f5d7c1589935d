// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {MarketStorage} from "../MarketStorage.sol";
import {AccountWord} from "../lib/AccountWord.sol";

/// @title WalletsModule
/// @notice Each participant's wallet in the settlement token, and what keeps the market
/// solvent. Wallets are prepaid: a balance goes below zero only within the credit limit
/// the admin set, and the credit limits together never exceed the reserve (tokens set
/// aside for them, e.g. by the grid operator). So the tokens the market holds always
/// cover every positive balance, the bond and the reserve. Settlement credits are
/// withdrawable once final (see AccountWord); every balance change goes through `_update`.
contract WalletsModule is MarketStorage {
    using SafeERC20 for IERC20;
    using AccountWord for uint256;

    /// @notice The selectors the router sends here.
    function selectors() external pure returns (bytes4[] memory s) {
        s = new bytes4[](10);
        s[9] = this.depositBatch.selector;
        s[0] = this.deposit.selector;
        s[1] = this.withdraw.selector;
        s[2] = this.balanceOf.selector;
        s[3] = this.withdrawable.selector;
        s[4] = this.setCreditLimit.selector;
        s[5] = this.depositReserve.selector;
        s[6] = this.withdrawReserve.selector;
        s[7] = this.reserve.selector;
        s[8] = this.token.selector;
    }

    /// @notice Pays `amount` of the caller's tokens into `participant`'s wallet (the
    /// caller must have approved this contract). Anyone may fund any wallet.
    function deposit(uint32 participant, uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 account = _existing(participant);
        _update(participant, account, SafeCast.toInt256(amount), Move.Deposit, 0);
        emit Deposited(participant, msg.sender, amount);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice `deposit` into many wallets at once, the caller paying the total in one transfer.
    function depositBatch(uint32[] calldata participants, uint256[] calldata amounts) external nonReentrant {
        if (participants.length != amounts.length) revert LengthMismatch(participants.length, amounts.length);
        uint256 total = 0;
        for (uint256 i = 0; i < participants.length; ++i) {
            uint256 amount = amounts[i];
            if (amount == 0) revert ZeroAmount();
            uint32 id = participants[i];
            _update(id, _existing(id), SafeCast.toInt256(amount), Move.Deposit, 0);
            emit Deposited(id, msg.sender, amount);
            total += amount;
        }
        _token.safeTransferFrom(msg.sender, address(this), total);
    }

    /// @notice Withdraws `amount` tokens from the caller's own wallet, out of its final
    /// funds (never on credit, never a credit that a dispute could still reverse). A
    /// frozen participant cannot withdraw, nor anyone while an interval is being
    /// settled in chunks (its verified debits must stay payable) or a dispute's reversal
    /// is open (what it takes back must still be there).
    function withdraw(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        if (_pending.phase != NONE) revert PendingIntervalOpen(_pending.interval, _pending.phase);
        _requireNoReversal();
        uint32 idPlusOne = _idPlusOne[msg.sender];
        if (idPlusOne == 0) revert UnknownAccount(msg.sender);
        uint32 id = idPlusOne - 1;
        uint256 account = _accounts[id];
        if (account.frozen()) revert FrozenParticipant(id);
        _update(id, account, -SafeCast.toInt256(amount), Move.Withdraw, _bucketOf(_clock, block.timestamp));
        emit Withdrawn(id, msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @notice A participant's wallet balance in minor units (negative when owing).
    function balanceOf(uint32 participant) external view returns (int256) {
        return _existing(participant).balance();
    }

    /// @notice What `participant` could withdraw now: its balance less credits not yet
    /// final (negative: owing even after they are).
    function withdrawable(uint32 participant) external view returns (int256) {
        return _existing(participant).spendable(_bucketOf(_clock, block.timestamp));
    }

    /// @notice Lets `participant`'s balance go down to `-limit` units in settlements. The
    /// credit limits together must stay within the reserve, and a limit cannot be cut
    /// below what the participant already owes.
    function setCreditLimit(uint32 participant, uint256 limit) external onlyRole(DEFAULT_ADMIN) {
        if (_pending.phase != NONE) revert PendingIntervalOpen(_pending.interval, _pending.phase);
        if (limit > AccountWord.CREDIT_MAX) revert ValueOutOfRange("limit", limit, AccountWord.CREDIT_MAX);
        uint256 account = _existing(participant);
        int256 spendable = account.spendable(_bucketOf(_clock, block.timestamp));
        if (spendable < 0 && uint256(-spendable) > limit) {
            revert CreditLimitBelowDebt(participant, limit, uint256(-spendable));
        }
        Reserve memory r = _reserve;
        uint256 limits = uint256(r.creditLimits) - account.creditLimit() + limit;
        if (limits > r.amount) revert ReserveTooSmall(r.amount, limits);
        // limits <= r.amount < 2^128.
        _reserve.creditLimits = uint128(limits);
        _accounts[participant] = account.withCreditLimit(limit);
        emit CreditLimitSet(participant, limit);
    }

    /// @notice Pays `amount` of the caller's tokens into the reserve that backs credit limits.
    function depositReserve(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 total = _reserve.amount + amount;
        if (total > type(uint128).max) revert ValueOutOfRange("reserve", total, type(uint128).max);
        _reserve.amount = uint128(total);
        emit ReserveChanged(msg.sender, int256(amount), total);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice The admin takes `amount` of the reserve back, as far as the credit limits allow.
    function withdrawReserve(uint256 amount) external onlyRole(DEFAULT_ADMIN) nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Reserve memory r = _reserve;
        if (amount > r.amount || r.amount - amount < r.creditLimits) {
            revert ReserveTooSmall(amount > r.amount ? 0 : r.amount - amount, r.creditLimits);
        }
        _reserve.amount = uint128(r.amount - amount);
        emit ReserveChanged(msg.sender, -int256(amount), r.amount - amount);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @notice The reserve and the sum of the credit limits it backs, in minor units.
    function reserve() external view returns (uint256 amount, uint256 creditLimits) {
        return (_reserve.amount, _reserve.creditLimits);
    }

    /// @notice The settlement token backing every wallet.
    function token() external view returns (IERC20) {
        return _token;
    }
}
