// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title GridToken
/// @notice The settlement currency of a GridLedger community: an ERC-20 token in
/// integer minor units (6 decimals, so 1 token = 1,000,000 units), minted by the
/// community's treasurer. Participants hold it and deposit it into their market wallet.
contract GridToken is ERC20, AccessControl {
    /// @notice Role allowed to issue new tokens (the community treasurer).
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @param admin Account that holds the admin and minter roles.
    constructor(address admin) ERC20("GridLedger Euro", "gEUR") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    /// @notice Six decimals: prices of fractions of a cent per kWh stay exact integers.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Issues `amount` new units to `to`.
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }
}
