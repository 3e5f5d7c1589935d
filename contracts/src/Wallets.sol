// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ParticipantRegistry} from "./ParticipantRegistry.sol";

/// @title Wallets
/// @notice Each participant's market wallet, denominated in the settlement token. Tokens
/// deposited here back the wallets; settlements move balances between wallets. A
/// balance may go negative (energy already consumed is owed); it can only be
/// withdrawn while positive. Every balance change goes through `_update`.
abstract contract Wallets is ParticipantRegistry, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice The settlement token backing every wallet.
    IERC20 public immutable token;

    /// @notice `from` paid `amount` tokens into `participant`'s wallet.
    event Deposited(uint32 indexed participant, address indexed from, uint256 amount);
    /// @notice `participant`'s owner took `amount` tokens out of its wallet.
    event Withdrawn(uint32 indexed participant, address indexed to, uint256 amount);

    error InsufficientBalance(uint32 participant, int256 balance, uint256 needed);
    /// @dev Balances may be negative, so the positive ones can add up to more tokens
    /// than the market holds: `needed` cannot be paid out of the `available` tokens.
    error InsufficientLiquidity(uint256 available, uint256 needed);
    error ZeroAmount();

    constructor(IERC20 token_) {
        if (address(token_) == address(0)) revert ZeroAddress();
        token = token_;
    }

    /// @notice Pays `amount` of the caller's tokens into `participant`'s wallet (the
    /// caller must have approved this contract). Anyone may fund any wallet.
    function deposit(uint32 participant, uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        _existing(participant);
        _update(participant, SafeCast.toInt256(amount));
        emit Deposited(participant, msg.sender, amount);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Withdraws `amount` tokens from the caller's own wallet, as far as the
    /// tokens the market holds allow (wallets of participants in debt back none).
    function withdraw(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint32 id = participantOf(msg.sender);
        int256 balance = _accounts[id].balance;
        if (balance < SafeCast.toInt256(amount)) revert InsufficientBalance(id, balance, amount);
        uint256 available = token.balanceOf(address(this));
        if (available < amount) revert InsufficientLiquidity(available, amount);
        _update(id, -SafeCast.toInt256(amount));
        emit Withdrawn(id, msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /// @notice A participant's wallet balance in minor units (negative when owing).
    function balanceOf(uint32 participant) external view returns (int256) {
        return _existing(participant).balance;
    }

    /// @dev The one place balances change. Reverts (SafeCast) if a balance would leave
    /// the int72 range, about +-2.4e15 tokens.
    function _update(uint32 participant, int256 delta) internal {
        Account storage account = _accounts[participant];
        account.balance = SafeCast.toInt72(int256(account.balance) + delta);
    }
}
